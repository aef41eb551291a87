# terraform workspace select us-east-1
# terraform plan -var-file=region.us-east-1.tfvars -var image_tag=<tag>
# A Telegram bot has exactly one webhook: a second region serves a second bot
# (its own token in its own secret), e.g. a staging bot.
region           = "us-east-1"
domain_name      = "bot-us.example.com"
hosted_zone_name = "example.com"
vpc_cidr         = "10.30.0.0/16"

detector_min_size = 1
detector_max_size = 2
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
