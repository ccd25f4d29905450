# The database: a MongoDB Atlas cluster in the same region, reachable only from our VPC through
# VPC peering. The project's access list holds nothing but the VPC's CIDR.

resource "mongodbatlas_project" "main" {
  name   = local.name
  org_id = var.atlas_org_id
}

resource "mongodbatlas_network_container" "main" {
  project_id       = mongodbatlas_project.main.id
  atlas_cidr_block = var.atlas_cidr_block
  provider_name    = "AWS"
  region_name      = local.atlas_region
}

resource "mongodbatlas_network_peering" "main" {
  project_id             = mongodbatlas_project.main.id
  container_id           = mongodbatlas_network_container.main.container_id
  provider_name          = "AWS"
  accepter_region_name   = var.aws_region
  aws_account_id         = local.account_id
  vpc_id                 = aws_vpc.main.id
  route_table_cidr_block = var.vpc_cidr
}

resource "aws_vpc_peering_connection_accepter" "atlas" {
  vpc_peering_connection_id = mongodbatlas_network_peering.main.connection_id
  auto_accept               = true

  tags = { Name = "${local.name}-atlas" }
}

resource "aws_route" "private_to_atlas" {
  count = local.az_count

  route_table_id            = aws_route_table.private[count.index].id
  destination_cidr_block    = var.atlas_cidr_block
  vpc_peering_connection_id = aws_vpc_peering_connection_accepter.atlas.vpc_peering_connection_id
}

# Network access: the VPC and nothing else.
resource "mongodbatlas_project_ip_access_list" "vpc" {
  project_id = mongodbatlas_project.main.id
  cidr_block = var.vpc_cidr
  comment    = "Fragmenty VPC (peered)"

  depends_on = [mongodbatlas_network_peering.main]
}

resource "mongodbatlas_advanced_cluster" "main" {
  project_id     = mongodbatlas_project.main.id
  name           = local.name
  cluster_type   = "REPLICASET"
  backup_enabled = true

  replication_specs {
    region_configs {
      provider_name = "AWS"
      region_name   = local.atlas_region
      priority      = 7

      electable_specs {
        instance_size = var.atlas_instance_size
        node_count    = 3
      }
    }
  }

  # Created once the peering is active, so the cluster lands in the peered network and its
  # private (peering) connection string is known when secrets.tf reads it.
  depends_on = [mongodbatlas_network_container.main, aws_vpc_peering_connection_accepter.atlas]
}

resource "random_password" "mongodb" {
  length  = 32
  special = false # it travels inside a MongoDB URL
}

resource "mongodbatlas_database_user" "services" {
  project_id         = mongodbatlas_project.main.id
  auth_database_name = "admin"
  username           = "fragmenty"
  password           = random_password.mongodb.result

  roles {
    role_name     = "readWrite"
    database_name = var.mongodb_database
  }

  scopes {
    name = mongodbatlas_advanced_cluster.main.name
    type = "CLUSTER"
  }
}

locals {
  # The peering (private) SRV string, with the service user's credentials put in.
  mongodb_url = replace(
    mongodbatlas_advanced_cluster.main.connection_strings[0].private_srv,
    "mongodb+srv://",
    "mongodb+srv://fragmenty:${random_password.mongodb.result}@",
  )
}
