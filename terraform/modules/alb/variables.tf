variable "name" {
  description = "Name prefix for every resource."
  type        = string
}

variable "vpc_id" {
  type = string
}

variable "vpc_cidr" {
  description = "The load balancer may only send traffic into the VPC."
  type        = string
}

variable "public_subnet_ids" {
  description = "Public subnets in two availability zones."
  type        = list(string)
}

variable "domain_name" {
  description = "Public name of the webhook, e.g. bot.example.com."
  type        = string
}

variable "hosted_zone_name" {
  description = "Existing public Route 53 hosted zone that holds domain_name, e.g. example.com."
  type        = string
}

variable "allowed_cidrs" {
  description = "Sources allowed on port 443: Telegram's webhook ranges."
  type        = list(string)
}

variable "target_port" {
  description = "Port of the gateway's HTTP server (webhook, /healthz and /readyz)."
  type        = number
  default     = 8080
}

variable "health_check_path" {
  description = "What the load balancer checks: /readyz (the gateway can serve), so a gateway that lost its table, queue or bucket stops getting webhook deliveries; /healthz (alive) decides replacement instead (modules/gateway)."
  type        = string
  default     = "/readyz"
}

variable "webhook_path" {
  description = "The only path forwarded to the gateway; anything else gets 404 at the load balancer."
  type        = string
  default     = "/telegram/webhook"
}

variable "logs_bucket" {
  description = "Bucket for access logs (prefix alb/)."
  type        = string
}

variable "deletion_protection" {
  type    = bool
  default = true
}
