output "vpc_id" {
  value = aws_vpc.this.id
}

output "vpc_cidr" {
  value = aws_vpc.this.cidr_block
}

output "availability_zones" {
  value = local.azs
}

output "public_subnet_ids" {
  value = aws_subnet.public[*].id
}

output "private_subnet_ids" {
  value = aws_subnet.private[*].id
}

output "gateway_endpoint_prefix_list_ids" {
  description = "Prefix lists of the S3 and DynamoDB gateway endpoints: a security group that may not reach the internet allows HTTPS to these."
  value       = [for e in aws_vpc_endpoint.gateway : e.prefix_list_id]
}

output "interface_endpoints" {
  description = "The AWS services reached through interface endpoints."
  value       = sort(keys(aws_vpc_endpoint.interface))
}
