terraform {
  # Needs optional object attributes with defaults (1.3) and lifecycle preconditions (1.2); 1.5 is
  # the oldest release line this module is documented for.
  required_version = ">= 1.5.0"

  required_providers {
    aws = {
      source = "hashicorp/aws"
      # 5.80: every resource argument used here exists (aws_vpc_security_group_*_rule, EFS
      # transition_to_primary_storage_class, tags on aws_appautoscaling_target). Below 7.0: a major
      # version may remove arguments, so it is opted into, not picked up.
      version = ">= 5.80, < 7.0"
    }
  }
}
