terraform {
  # The syntax is kept to what Terraform 1.0 parses (the offline `terraform
  # fmt` check uses 1.0.3); the deploy workflow plans and applies with a newer
  # 1.x.
  required_version = ">= 1.0.3"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.40, < 6.0"
    }
  }

  # Remote state in S3, configured at `terraform init` time with
  # -backend-config (docs/deploy.md). Each region is its own workspace, so
  # its state lives under env:/<region>/.
  backend "s3" {}
}
