# TEST ONLY: copied next to examples/complete by tests/test_apply.py, never part of the module or the
# example. An override file (*_override.tf) merges into the example's `provider "aws"` block: every
# service the kit uses goes to the moto emulator (tests/emulator.py) on loopback, whose address the
# test writes in place of MOTO_ENDPOINT. Credentials come from the environment (AWS_ACCESS_KEY_ID=
# testing ...); moto accepts any.
provider "aws" {
  skip_credentials_validation = true
  skip_metadata_api_check     = true
  skip_region_validation      = true
  s3_use_path_style           = true

  endpoints {
    acm                    = "MOTO_ENDPOINT"
    applicationautoscaling = "MOTO_ENDPOINT"
    cloudwatch             = "MOTO_ENDPOINT"
    ec2                    = "MOTO_ENDPOINT"
    ecs                    = "MOTO_ENDPOINT"
    efs                    = "MOTO_ENDPOINT"
    elbv2                  = "MOTO_ENDPOINT"
    iam                    = "MOTO_ENDPOINT"
    logs                   = "MOTO_ENDPOINT"
    route53                = "MOTO_ENDPOINT"
    s3                     = "MOTO_ENDPOINT"
    secretsmanager         = "MOTO_ENDPOINT"
    sns                    = "MOTO_ENDPOINT"
    sts                    = "MOTO_ENDPOINT"
    wafv2                  = "MOTO_ENDPOINT"
  }
}
