provider "aws" {
  region = var.aws_region

  default_tags {
    tags = merge(var.tags, {
      Project     = "fragmenty"
      Environment = var.environment
      ManagedBy   = "terraform"
    })
  }
}

# Credentials come from MONGODB_ATLAS_PUBLIC_KEY and MONGODB_ATLAS_PRIVATE_KEY (an Atlas
# organization API key with Project Creator rights), never from a file in this repository.
provider "mongodbatlas" {}
