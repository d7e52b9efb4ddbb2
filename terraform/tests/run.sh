#!/usr/bin/env bash
# Validates the Terraform kit without the cloud. Called from the repository root as
#   PYTHON=/path/to/venv/python terraform/tests/run.sh
# with terraform/tests/requirements.txt installed into that Python (scripts/setup.sh does it).
#
#   1. where a terraform binary exists: fmt -check; and where the hashicorp/aws provider can be had
#      (the registry, or a local mirror: TF_PLUGIN_DIR, else /opt/tf-plugins if present), validate
#      of the module and the example, and `terraform test` (mocked provider: plans, no credentials);
#   2. checkov --skip-download over terraform/, offline, from its own venv (tests/.venv: checkov pins
#      packaging<24 and cannot share the kit's venv with pytest 9), its JSON report kept for step 3;
#   3. pytest with python-hcl2: the assertions on the module, and on checkov's report;
#   4. where terraform and the provider are there (step 1 could init): `terraform apply` of
#      examples/complete against moto on loopback (tests/emulator.py), read back through boto3, a
#      second plan that prints the drift, a target group replacement and a destroy
#      (tests/test_apply.py, 2.5-4.5 min; needs moto[server] from requirements-test.txt in $PYTHON).
#      PGMCP_SKIP_TF_APPLY=1 skips it, and says so.
# Exits non-zero when any step fails.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
terraform_dir=$(dirname "$here")
python=${PYTHON:-python3}
status=0
provider_ready=0
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

step() { echo "--- terraform: $*"; }

# 1. terraform itself ------------------------------------------------------------------------------
if command -v terraform >/dev/null 2>&1; then
  export TF_IN_AUTOMATION=1
  # A CLI configuration named but missing only adds a warning to every command.
  if [ -n "${TF_CLI_CONFIG_FILE:-}" ] && [ ! -e "$TF_CLI_CONFIG_FILE" ]; then export TF_CLI_CONFIG_FILE=/dev/null; fi
  plugin_dir=${TF_PLUGIN_DIR:-}
  if [ -z "$plugin_dir" ] && [ -d /opt/tf-plugins ]; then plugin_dir=/opt/tf-plugins; fi

  version=$(terraform version | head -n1 | sed -n 's/^Terraform v\([0-9.]*\).*/\1/p')
  step "terraform fmt -check -recursive (terraform $version)"
  terraform fmt -check -recursive -diff "$terraform_dir" || status=1
  # On a copy, so that .terraform/ and lock files never land in the work tree.
  mkdir -p "$work/tf"
  cp -r "$terraform_dir/modules" "$terraform_dir/examples" "$work/tf/"
  for config in modules/postgres-mcp examples/complete; do
    dir=$work/tf/$config
    if terraform -chdir="$dir" init -backend=false -input=false -no-color ${plugin_dir:+-plugin-dir="$plugin_dir"} >"$work/init.log" 2>&1; then
      provider_ready=1
      step "terraform validate $config"
      terraform -chdir="$dir" validate -no-color || status=1
      if [ -d "$dir/tests" ]; then
        if [ "$(printf '%s\n' 1.7.0 "$version" | sort -V | head -n1)" = 1.7.0 ]; then
          step "terraform test $config (mocked AWS provider)"
          terraform -chdir="$dir" test -no-color || status=1
        else
          echo "terraform $version has no mock providers (1.7+): skipping terraform test of $config"
        fi
      fi
    else
      tail -n 3 "$work/init.log"
      echo "terraform init failed (providers cannot be downloaded here): skipping validate/test of $config"
    fi
  done
else
  echo "terraform not found: skipping fmt/validate (providers cannot be downloaded here)"
fi

# 2. checkov, in its own venv ---------------------------------------------------------------------
venv=$here/.venv
stamp=$venv/.requirements.sha256
wanted=$(sha256sum "$here/requirements-checkov.txt" | cut -d' ' -f1)
if [ ! -x "$venv/bin/checkov" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$wanted" ]; then
  step "installing checkov into $venv"
  rm -rf "$venv"
  "$python" -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$here/requirements-checkov.txt"
  echo "$wanted" >"$stamp"
fi

step "checkov --skip-download -d terraform/ ($("$venv/bin/checkov" --version))"
# Offline: no platform key, no download of policies or mappings, no PyPI update check.
export BC_SKIP_MAPPING=TRUE CKV_SKIP_PACKAGE_UPDATE_CHECK=TRUE
checkov_status=0
(
  cd "$terraform_dir/.."
  "$venv/bin/checkov" --skip-download --compact -d terraform/ --skip-path terraform/tests/.venv \
    -o json --output-file-path "$work/checkov" >/dev/null
) || checkov_status=$?
# The report in the log: totals, every failure, every skip with its reason.
"$python" - "$work/checkov/results_json.json" <<'PY' || true
import json, sys
runs = json.load(open(sys.argv[1]))
for run in runs if isinstance(runs, list) else [runs]:
    s = run["summary"]
    print(f"{run['check_type']}: {s['passed']} passed, {s['failed']} failed, {s['skipped']} skipped, "
          f"{s['resource_count']} resources, {s['parsing_errors']} parsing errors")
    for c in run["results"].get("failed_checks", []):
        print(f"  FAILED  {c['check_id']} {c['resource']} ({c['file_path']}): {c['check_name']}")
    for c in run["results"].get("skipped_checks", []):
        print(f"  skipped {c['check_id']} {c['resource']}: {c['check_result'].get('suppress_comment', '')}")
PY
if [ "$checkov_status" -ne 0 ]; then
  echo "checkov failed (exit $checkov_status)"
  status=1
fi

# 3. the assertions --------------------------------------------------------------------------------
step "pytest (python-hcl2 assertions, checkov report)"
if ! "$python" -c 'import hcl2, pytest' 2>/dev/null; then
  echo "$python lacks python-hcl2 or pytest: pip install -r terraform/tests/requirements.txt"
  exit 1
fi
(
  cd "$here"
  CHECKOV_REPORT=$work/checkov/results_json.json "$python" -m pytest -q -p no:cacheprovider test_terraform.py
) || status=1

# 4. apply against the emulator --------------------------------------------------------------------
if [ "${PGMCP_SKIP_TF_APPLY:-0}" = 1 ]; then
  echo "PGMCP_SKIP_TF_APPLY=1: skipping the terraform apply against moto"
elif [ "$provider_ready" = 1 ]; then
  step "terraform apply/plan/destroy of examples/complete against moto (test_apply.py)"
  if ! "$python" -c 'import moto.server, boto3' 2>/dev/null; then
    echo "$python lacks moto[server]: pip install -r requirements-test.txt"
    exit 1
  fi
  (
    cd "$here"
    TF_PLUGIN_DIR=${plugin_dir:-} "$python" -m pytest -q -p no:cacheprovider -s test_apply.py
  ) || status=1
else
  echo "no terraform binary or provider: skipping the terraform apply against moto"
fi

exit $status
