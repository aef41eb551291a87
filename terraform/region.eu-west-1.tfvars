# terraform workspace select eu-west-1
# terraform plan -var-file=region.eu-west-1.tfvars -var image_tag=<tag>
region           = "eu-west-1"
domain_name      = "bot.example.com"
hosted_zone_name = "example.com"
vpc_cidr         = "10.20.0.0/16"

detector_min_size                    = 1
detector_max_size                    = 4
detector_target_backlog_per_instance = 100
