data "aws_availability_zones" "available" {
  state = "available"
}

locals {
  azs       = slice(data.aws_availability_zones.available.names, 0, var.az_count)
  nat_count = var.single_nat_gateway ? 1 : var.az_count
}

resource "aws_vpc" "main" {
  # checkov:skip=CKV2_AWS_11: the flow log (aws_flow_log.vpc, all traffic) is in the security unit, which owns the logs KMS key
  cidr_block           = var.vpc_cidr
  enable_dns_support   = true
  enable_dns_hostnames = true

  tags = {
    Name = "${local.name.prefix}-vpc-${local.name.suffix}"
  }
}

# Nothing may use the default security group.
resource "aws_default_security_group" "default" {
  vpc_id = aws_vpc.main.id

  tags = {
    Name = "${local.name.prefix}-default-sg-${local.name.suffix}"
  }
}

resource "aws_internet_gateway" "main" {
  vpc_id = aws_vpc.main.id

  tags = {
    Name = "${local.name.prefix}-igw-${local.name.suffix}"
  }
}

resource "aws_subnet" "public" {
  count = var.az_count

  vpc_id                  = aws_vpc.main.id
  availability_zone       = local.azs[count.index]
  cidr_block              = cidrsubnet(var.vpc_cidr, 8, count.index)
  map_public_ip_on_launch = false

  tags = {
    Name = "${local.name.prefix}-public-${local.azs[count.index]}-${local.name.suffix}"
    Tier = "public"
  }
}

resource "aws_subnet" "private" {
  count = var.az_count

  vpc_id            = aws_vpc.main.id
  availability_zone = local.azs[count.index]
  cidr_block        = cidrsubnet(var.vpc_cidr, 8, count.index + 10)

  tags = {
    Name = "${local.name.prefix}-private-${local.azs[count.index]}-${local.name.suffix}"
    Tier = "private"
  }
}

resource "aws_route_table" "public" {
  # checkov:skip=CKV2_PAY_1: the public route table routes 0.0.0.0/0 through the internet gateway by design
  vpc_id = aws_vpc.main.id

  tags = {
    Name = "${local.name.prefix}-public-rt-${local.name.suffix}"
  }
}

resource "aws_route" "public_internet" {
  route_table_id         = aws_route_table.public.id
  destination_cidr_block = "0.0.0.0/0"
  gateway_id             = aws_internet_gateway.main.id
}

resource "aws_route_table_association" "public" {
  count = var.az_count

  subnet_id      = aws_subnet.public[count.index].id
  route_table_id = aws_route_table.public.id
}

resource "aws_eip" "nat" {
  count  = local.nat_count
  domain = "vpc"

  tags = {
    Name = "${local.name.prefix}-nat-eip-${local.azs[count.index]}-${local.name.suffix}"
  }

  depends_on = [aws_internet_gateway.main]
}

# One NAT gateway per AZ (or one in all when single_nat_gateway), each in the
# public subnet of its AZ.
resource "aws_nat_gateway" "main" {
  count = local.nat_count

  allocation_id = aws_eip.nat[count.index].id
  subnet_id     = aws_subnet.public[count.index].id

  tags = {
    Name = "${local.name.prefix}-nat-${local.azs[count.index]}-${local.name.suffix}"
  }

  depends_on = [aws_internet_gateway.main]
}

resource "aws_route_table" "private" {
  count  = var.az_count
  vpc_id = aws_vpc.main.id

  tags = {
    Name = "${local.name.prefix}-private-rt-${local.azs[count.index]}-${local.name.suffix}"
  }
}

# Every private route table sends 0.0.0.0/0 through the NAT of its own AZ.
resource "aws_route" "private_nat" {
  count = var.az_count

  route_table_id         = aws_route_table.private[count.index].id
  destination_cidr_block = "0.0.0.0/0"
  nat_gateway_id         = aws_nat_gateway.main[var.single_nat_gateway ? 0 : count.index].id
}

resource "aws_route_table_association" "private" {
  count = var.az_count

  subnet_id      = aws_subnet.private[count.index].id
  route_table_id = aws_route_table.private[count.index].id
}
