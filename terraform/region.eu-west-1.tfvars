# terraform workspace select eu-west-1
# terraform plan -var-file=region.eu-west-1.tfvars -var image_tag=<tag>
region           = "eu-west-1"
domain_name      = "bot.example.com"
hosted_zone_name = "example.com"
vpc_cidr         = "10.20.0.0/16"

detector_min_size = 1
detector_max_size = 4
# Scaling target = floor(acceptable latency / seconds per job) = 10 / 0.1 = 100.
detector_acceptable_latency = 10
detector_seconds_per_job    = 0.1

# The one retention clock: days images (every version) and records are kept;
# the services get it as POLYBOT_RETENTION_DAYS and the gateway's /privacy
# states it.
retention_days = 30

# Operators reach the gateways' gRPC (grpcurl with the operator token)
# through Session Manager port forwarding; off by default (docs/RUNBOOK.md,
# "Reaching the gateway's gRPC").
# operator_ssm_access = true
