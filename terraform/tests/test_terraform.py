"""The Terraform kit, checked without the cloud and without a terraform binary.

python-hcl2 parses the module and the example; each `check_*` function asserts one property that
production depends on (health check numbers, drain timing, TLS, encryption, least privilege, the
server's configuration contract) and the tests run them on the kit as shipped. The same checks run
on deliberately broken copies and must fail there, so a check that passes by accident shows up.
Reference checks (every var./local./resource./module output used is declared) stand in for part of
`terraform validate`, which needs providers that cannot be downloaded here. checkov's report from
run.sh is checked last: no failure, no parsing error, every skip with a reason.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import hcl2
import pytest

from tfmodel import (
    EXAMPLE,
    MODULE,
    OPTIONS,
    README,
    TERRAFORM,
    Config,
    block,
    docs_tables,
    load,
    readme_with_tables,
    resolve,
    type_text,
)

REPO = TERRAFORM.parent
SERVER_DEFAULTS = REPO / "server" / "default-config.yaml"


@pytest.fixture(scope="module")
def module() -> Config:
    return load(MODULE)


@pytest.fixture(scope="module")
def example() -> Config:
    return load(EXAMPLE)


def seconds(duration: str) -> float:
    match = re.fullmatch(r"(\d+)(ms|s|m|h|d)", duration)
    assert match, f"not a duration: {duration}"
    value, unit = match.groups()
    return int(value) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}[unit]


def server_defaults() -> dict[str, str]:
    """server/default-config.yaml flattened to {"shutdown.drain_delay": "5s", ...} (scalars only)."""
    assert SERVER_DEFAULTS.is_file(), f"the server's configuration reference moved: {SERVER_DEFAULTS}"
    keys, stack = {}, []
    for line in SERVER_DEFAULTS.read_text().splitlines():
        match = re.match(r"^( *)([a-z_]+):(.*)$", line)
        if not match or line.lstrip().startswith("#"):
            continue
        indent, key, rest = len(match.group(1)), match.group(2), match.group(3).strip()
        while stack and stack[-1][0] >= indent:
            stack.pop()
        path = ".".join([k for _, k in stack] + [key])
        if rest:
            keys[path] = rest.strip('"')
        else:
            stack.append((indent, key))
    return keys


def container_environment(config: Config) -> dict[str, str]:
    """PGMCP_* names set by the module's `environment` local -> value, references resolved."""
    expression = config.locals["environment"]
    string = r'"(?:[^"\\]|\\.)*"'
    call = r'[\w.]+\((?:[^()"]|' + string + r")*\)"
    pairs = re.findall(r"\b(PGMCP_[A-Z0-9_]+)\s*=\s*(" + string + "|" + call + r"|[^,}]+)", expression)
    env = {}
    for name, value in pairs:
        value = value.strip()
        # A string literal has its ${...} resolved; a bare expression is kept as ${expression}.
        env[name] = resolve(config, value[1:-1]) if value.startswith('"') else "${" + value + "}"
    return env


def statements(document: dict) -> list[tuple[dict, str | None]]:
    """Statements of an aws_iam_policy_document as (statement, for_each of its dynamic block)."""
    found = [(s, None) for s in document.get("statement", [])]
    for dynamic in document.get("dynamic", []):
        if "statement" in dynamic:
            found += [(s, dynamic["statement"]["for_each"]) for s in dynamic["statement"]["content"]]
    return found


################################################################################
# The checks
################################################################################


def check_variables_typed_and_described(config: Config) -> None:
    assert config.variables, f"{config.path}: no variables"
    for name, variable in config.variables.items():
        assert type_text(variable), f"variable {name} has no type"
        assert str(variable.get("description", "")).strip(), f"variable {name} has no description"


def check_variables_validated(config: Config) -> None:
    # Booleans cannot be wrong; everything else is checked at plan time, before AWS sees it.
    for name, variable in config.variables.items():
        if type_text(variable) != "bool":
            assert variable.get("validation"), f"variable {name} ({type_text(variable)}) has no validation"


def check_outputs_described(config: Config) -> None:
    for name, output in config.outputs.items():
        assert str(output.get("description", "")).strip(), f"output {name} has no description"


def check_health_check(config: Config) -> None:
    group = config.resource("aws_lb_target_group", "this")
    health = block(group, "health_check")
    assert resolve(config, health["path"]) == "/health"
    assert health["protocol"] == "HTTP" and health["port"] == "traffic-port"
    assert str(health["matcher"]) == "200", "only 200 is healthy: 503 means draining"
    assert resolve(config, health["interval"]) == 30
    assert resolve(config, health["healthy_threshold"]) == 2
    assert resolve(config, health["unhealthy_threshold"]) == 3
    assert resolve(config, health["timeout"]) == 5
    assert resolve(config, health["timeout"]) < resolve(config, health["interval"])
    assert group["target_type"] == "ip", "awsvpc tasks register by IP"
    assert resolve(config, group["port"]) == 8080
    assert "stickiness" not in group, "any task answers any request: no stickiness"


def check_container_health_check(config: Config) -> None:
    health = config.locals["container_definition"]["healthCheck"]
    # ECS replaces a task whose essential container is unhealthy: liveness, never readiness (which
    # fails while the task drains after SIGTERM). Traffic is the target group's business (/health).
    assert health["command"] == ["CMD", "/usr/local/bin/postgres-mcp", "healthcheck", "--path", "/livez"]
    assert health["timeout"] < health["interval"]


def check_drain_timing(config: Config) -> None:
    drain = config.default("shutdown_drain_delay_seconds")
    grace = config.default("shutdown_grace_seconds")
    group = config.resource("aws_lb_target_group", "this")
    delay = resolve(config, group["deregistration_delay"])
    assert delay >= drain + grace, f"deregistration_delay {delay} < drain {drain} + grace {grace}"
    conditions = [p["condition"] for p in block(group, "lifecycle").get("precondition", [])]
    assert any("var.deregistration_delay >=" in c for c in conditions), "no precondition keeps the delay above the drain"

    container = config.locals["container_definition"]
    stop = resolve(config, container["stopTimeout"])
    assert drain + grace <= stop <= 120, f"stopTimeout {stop} must cover {drain}+{grace} and stay within Fargate's 120"
    task = config.resource("aws_ecs_task_definition", "this")
    conditions = [p["condition"] for p in block(task, "lifecycle").get("precondition", [])]
    assert any("var.stop_timeout >=" in c for c in conditions), "no precondition keeps stop_timeout above the drain"

    env = container_environment(config)
    assert env["PGMCP_SHUTDOWN_DRAIN_DELAY"] == f"{drain}s" and env["PGMCP_SHUTDOWN_GRACE"] == f"{grace}s"


def check_https_listener(config: Config) -> None:
    https = config.resource("aws_lb_listener", "https")
    assert https["protocol"] == "HTTPS" and https["port"] == 443
    assert https["certificate_arn"] == "${var.certificate_arn}"
    assert resolve(config, https["ssl_policy"]).startswith("ELBSecurityPolicy-TLS13-")
    action = block(https, "default_action")
    assert action["type"] == "forward" and action["target_group_arn"] == "${aws_lb_target_group.this.arn}"
    assert config.variables["certificate_arn"].get("validation"), "certificate_arn must be checked as an ACM ARN"


def check_http_redirects_to_https(config: Config) -> None:
    http = config.resource("aws_lb_listener", "http")
    assert http["protocol"] == "HTTP" and http["port"] == 80
    action = block(http, "default_action")
    assert action["type"] == "redirect", "port 80 must only redirect"
    redirect = block(action, "redirect")
    assert redirect["protocol"] == "HTTPS" and str(redirect["port"]) == "443"
    assert redirect["status_code"] == "HTTP_301"
    listeners = config.of_type("aws_lb_listener")
    assert set(listeners) == {"https", "http"}, f"unexpected listeners: {sorted(listeners)}"


def check_metrics_blocked(config: Config) -> None:
    rules = [
        rule
        for rule in config.of_type("aws_lb_listener_rule").values()
        if rule["listener_arn"] == "${aws_lb_listener.https.arn}"
    ]
    blocking = []
    for rule in rules:
        action = block(rule, "action")
        paths = [resolve(config, c["path_pattern"][0]["values"]) for c in rule.get("condition", []) if "path_pattern" in c]
        paths = [p for values in paths for p in values]
        if "/metrics" in paths and action["type"] == "fixed-response":
            status = str(block(action, "fixed_response")["status_code"])
            assert status in ("403", "404"), f"/metrics answered {status}"
            assert "/metrics/*" in paths, "/metrics/... must be blocked too"
            assert "/health/details" in paths, "/health/details (instance internals) must be blocked too"
            blocking.append(resolve(config, rule["priority"]))
    assert blocking, "no HTTPS listener rule answers /metrics itself"
    others = [resolve(config, r["priority"]) for r in rules if resolve(config, r["priority"]) not in blocking]
    assert all(isinstance(p, int) and min(blocking) < p for p in others), "the /metrics rule must come first"


def check_efs_encrypted(config: Config) -> None:
    efs = config.resource("aws_efs_file_system", "this")
    assert efs["encrypted"] is True, "EFS must be encrypted at rest"
    policy = config.data[("aws_iam_policy_document", "efs")]
    deny = [s for s, _ in statements(policy) if s.get("effect") == "Deny"]
    assert any(
        c["variable"] == "aws:SecureTransport" and c["values"] == ["false"] for s in deny for c in s.get("condition", [])
    ), "the file system policy must deny clients without TLS"
    point = config.resource("aws_efs_access_point", "this")
    assert resolve(config, block(point, "posix_user")["uid"]) == 10001


def check_efs_volumes_use_tls_and_iam(config: Config) -> None:
    volumes = 0
    for name, task in config.of_type("aws_ecs_task_definition").items():
        for volume in task.get("volume", []):
            for efs in volume.get("efs_volume_configuration", []):
                volumes += 1
                assert efs["transit_encryption"] == "ENABLED", f"{name}: EFS volume without TLS"
                auth = block(efs, "authorization_config")
                assert auth["iam"] == "ENABLED", f"{name}: EFS volume without IAM authorization"
                assert auth["access_point_id"] == "${aws_efs_access_point.this.id}", f"{name}: not through the access point"
    assert volumes, "no EFS volume in any task definition"


def check_container(config: Config) -> None:
    container = config.locals["container_definition"]
    assert resolve(config, container["user"]) == "10001:10001", "the server runs as uid/gid 10001"
    assert container["readonlyRootFilesystem"] is True
    assert container["linuxParameters"]["capabilities"]["drop"] == ["ALL"]
    mounts = {resolve(config, m["containerPath"]): m for m in container["mountPoints"]}
    assert set(mounts) == {"/app/config", "/tmp"}, f"unexpected mounts {sorted(mounts)}"
    assert mounts["/app/config"]["readOnly"] is True, "the shared files are mounted read-only"
    assert mounts["/tmp"]["readOnly"] is False, "/tmp must be writable (the local copy of kb.db)"
    task = config.resource("aws_ecs_task_definition", "this")
    volumes = {v["name"]: v for v in task["volume"]}
    assert "efs_volume_configuration" in volumes[mounts["/app/config"]["sourceVolume"]]
    tmp = volumes[mounts["/tmp"]["sourceVolume"]]
    assert set(tmp) == {"name"}, "/tmp is a task-local volume, not EFS or a host path"
    # Fargate makes that volume root's, mode 0755: the init container hands it to 10001 first.
    init = config.locals["tmp_init_container"]
    assert resolve(config, " ".join(init["command"])) == "chown 10001:10001 /tmp"
    dropped = resolve(config, init["linuxParameters"]["capabilities"]["drop"])
    assert init["essential"] is False and "CHOWN" not in dropped and "DAC_OVERRIDE" in dropped
    assert "SUCCESS" in config.locals["tmp_depends_on"] and container["dependsOn"] == "${local.tmp_depends_on}"
    assert task["requires_compatibilities"] == ["FARGATE"] and task["network_mode"] == "awsvpc"


def check_environment(config: Config) -> None:
    env = container_environment(config)
    assert env["PGMCP_AUTH_TOKENS_FILE"] == "/app/config/tokens.yaml"
    assert env["PGMCP_AUTH_USERS_FILE"] == "/app/config/users.yaml"
    assert env["PGMCP_AUTH_SESSION_SECRET_FILE"] == "/app/config/session.key"
    assert env["PGMCP_KB_PATH"] == "/app/config/kb.db"
    assert env["PGMCP_WATCH_MODE"] == "poll", "EFS is NFS: inotify never sees other clients' writes"
    assert env["PGMCP_LOG_FORMAT"] == "json"
    assert env["PGMCP_PUBLIC_URL"] == "${var.public_url}"


def check_trusted_proxies(config: Config) -> None:
    # The failed-auth limiter keys on the client address: X-Forwarded-For must be believed from the
    # ALB and nothing else. By default that is the CIDRs of the ALB's own subnets, not the VPC's.
    env = container_environment(config)
    assert env["PGMCP_AUTH_TRUSTED_PROXIES"] == '${join(",", local.trusted_proxy_cidrs)}'
    default = config.locals["trusted_proxy_cidrs"]
    assert default.startswith("${var.trusted_proxy_cidrs != null ? var.trusted_proxy_cidrs : "), default
    assert re.search(r"\[for (\w+) in data\.aws_subnet\.alb : \1\.cidr_block\]", default), default
    assert "aws_vpc" not in default and "cidr_block_associations" not in default, "the whole VPC is trusted"
    subnets = config.data[("aws_subnet", "alb")]
    alb_subnets = config.resource("aws_lb", "this")["subnets"]
    assert alb_subnets == "${var.public_subnet_ids}"
    assert subnets["count"] == "${length(var.public_subnet_ids)}"
    assert subnets["id"] == "${var.public_subnet_ids[count.index]}", "trusted subnets are not the ALB's"


def check_s3_bucket(config: Config) -> None:
    block_public = config.resource("aws_s3_bucket_public_access_block", "config")
    for setting in ("block_public_acls", "block_public_policy", "ignore_public_acls", "restrict_public_buckets"):
        assert block_public[setting] is True, f"{setting} must be true"
    assert block_public["bucket"] == "${aws_s3_bucket.config[0].id}"
    versioning = config.resource("aws_s3_bucket_versioning", "config")
    assert block(versioning, "versioning_configuration")["status"] == "Enabled"
    sse = config.resource("aws_s3_bucket_server_side_encryption_configuration", "config")
    rule = block(sse, "rule")
    assert block(rule, "apply_server_side_encryption_by_default")["sse_algorithm"] in ("aws:kms", "AES256")
    ownership = config.resource("aws_s3_bucket_ownership_controls", "config")
    assert block(ownership, "rule")["object_ownership"] == "BucketOwnerEnforced"
    policy = config.data[("aws_iam_policy_document", "s3")]
    assert any(
        s.get("effect") == "Deny" and c["variable"] == "aws:SecureTransport" and c["values"] == ["false"]
        for s, _ in statements(policy)
        for c in s.get("condition", [])
    ), "the bucket policy must deny requests without TLS"
    for name in ("aws_s3_bucket", "aws_s3_bucket_public_access_block", "aws_s3_bucket_policy"):
        assert config.resource(name, "config")["count"] == "${var.create_s3_bucket ? 1 : 0}", f"{name} must be optional"


def check_security_groups(config: Config) -> None:
    groups = config.of_type("aws_security_group")
    assert set(groups) == {"alb", "tasks", "efs"}
    for name, group in groups.items():
        assert "ingress" not in group and "egress" not in group, f"{name}: inline rules"
    assert not config.of_type("aws_security_group_rule"), "rules are aws_vpc_security_group_*_rule resources"

    def rules(kind: str, group: str) -> list[dict]:
        return [
            r for r in config.of_type(f"aws_vpc_security_group_{kind}_rule").values()
            if r["security_group_id"] == f"${{aws_security_group.{group}.id}}"
        ]

    for rule in rules("ingress", "alb"):
        assert (rule["from_port"], rule["to_port"]) in ((443, 443), (80, 80)), "the ALB listens on 80 and 443 only"
        assert rule["for_each"] == "${toset(var.allowed_ingress_cidrs)}" and rule["cidr_ipv4"] == "${each.value}"
    assert {r["from_port"] for r in rules("ingress", "alb")} == {80, 443}
    assert [r["referenced_security_group_id"] for r in rules("egress", "alb")] == ["${aws_security_group.tasks.id}"]

    task_sources = []
    for rule in rules("ingress", "tasks"):
        assert resolve(config, rule["from_port"]) == resolve(config, rule["to_port"]) == 8080
        assert "cidr_ipv4" not in rule and "cidr_ipv6" not in rule, "tasks are reached from security groups only"
        task_sources.append(rule["referenced_security_group_id"])
    assert "${aws_security_group.alb.id}" in task_sources
    assert set(task_sources) <= {"${aws_security_group.alb.id}", "${var.metrics_ingress_security_group_ids[count.index]}"}

    efs_sources = []
    for rule in rules("ingress", "efs"):
        assert rule["from_port"] == rule["to_port"] == 2049 and "cidr_ipv4" not in rule
        efs_sources.append(rule["referenced_security_group_id"])
    assert "${aws_security_group.tasks.id}" in efs_sources
    assert set(efs_sources) <= {"${aws_security_group.tasks.id}", "${var.efs_client_security_group_ids[count.index]}"}
    assert not rules("egress", "efs"), "the EFS group needs no egress"


def check_iam(config: Config) -> None:
    assume = config.data[("aws_iam_policy_document", "ecs_tasks_assume")]
    principal = block(assume["statement"][0], "principals")
    assert principal["identifiers"] == ["ecs-tasks.amazonaws.com"]

    task = statements(config.data[("aws_iam_policy_document", "task")])
    actions = {a for s, _ in task for a in s["actions"]}
    assert "elasticfilesystem:ClientMount" in actions and "elasticfilesystem:ClientWrite" not in actions
    mount = next(s for s, _ in task if "elasticfilesystem:ClientMount" in s["actions"])
    assert mount["condition"][0]["variable"] == "elasticfilesystem:AccessPointArn"
    s3 = [(s, each) for s, each in task if any(a.startswith("s3:") for a in s["actions"])]
    assert {a for s, _ in s3 for a in s["actions"]} == {"s3:ListBucket", "s3:GetObject", "s3:GetObjectVersion"}, "S3 read only"
    assert all(each and "var.create_s3_bucket" in each for _, each in s3), "S3 read only when the bucket exists"
    assert config.default("grant_task_s3_read") is True

    execution = statements(config.data[("aws_iam_policy_document", "execution")])
    for statement, _ in execution:
        if statement["resources"] == ["*"]:
            assert statement["actions"] == ["ecr:GetAuthorizationToken"], "only the ECR login may name every resource"
    task_definition = config.resource("aws_ecs_task_definition", "this")
    assert task_definition["execution_role_arn"] == "${aws_iam_role.execution.arn}"
    assert task_definition["task_role_arn"] == "${aws_iam_role.task.arn}"


def check_service_and_scaling(config: Config) -> None:
    service = config.resource("aws_ecs_service", "this")
    assert service["launch_type"] == "FARGATE"
    assert block(service, "network_configuration")["assign_public_ip"] is False
    breaker = block(service, "deployment_circuit_breaker")
    assert breaker["enable"] is True and breaker["rollback"] is True
    assert service["deployment_minimum_healthy_percent"] == 100
    target = config.resource("aws_appautoscaling_target", "this")
    assert target["min_capacity"] == "${var.min_capacity}" and target["max_capacity"] == "${var.max_capacity}"
    assert service["desired_count"] == "${var.desired_count}"
    policy = config.resource("aws_appautoscaling_policy", "cpu")
    assert policy["policy_type"] == "TargetTrackingScaling"
    tracking = block(policy, "target_tracking_scaling_policy_configuration")
    metric = block(tracking, "predefined_metric_specification")
    assert metric["predefined_metric_type"] == "ECSServiceAverageCPUUtilization"


def check_logs(config: Config) -> None:
    group = config.resource("aws_cloudwatch_log_group", "this")
    assert group["retention_in_days"] == "${var.log_retention_days}"
    assert group["kms_key_id"] == "${var.log_kms_key_arn}"
    assert config.locals["container_definition"]["logConfiguration"]["logDriver"] == "awslogs"


def check_versions(config: Config) -> None:
    assert config.terraform, f"{config.path.name}: no terraform block"
    settings = config.terraform[0]
    assert re.fullmatch(r">=\s*1\.\d+\.\d+", settings["required_version"])
    aws = settings["required_providers"][0]["aws"]
    assert aws["source"] == "hashicorp/aws"
    assert re.fullmatch(r">=\s*\d+\.\d+(\.\d+)?,\s*<\s*\d+\.\d+", aws["version"]), f"provider range not pinned: {aws['version']}"


def check_references_are_declared(config: Config) -> None:
    text = config.text
    for name in set(re.findall(r"\bvar\.([A-Za-z0-9_]+)", text)):
        assert name in config.variables, f"var.{name} is used but not declared"
    for name in set(re.findall(r"\blocal\.([A-Za-z0-9_]+)", text)):
        assert name in config.locals, f"local.{name} is used but not declared"
    for kind, name in set(re.findall(r"\bdata\.(aws_[a-z0-9_]+)\.([a-z0-9_]+)", text)):
        assert (kind, name) in config.data, f"data.{kind}.{name} is used but not declared"
    for kind, name in set(re.findall(r"(?<![.\w])(aws_[a-z0-9_]+)\.([a-z0-9_]+)", text)):
        assert (kind, name) in config.resources, f"{kind}.{name} is used but not declared"
    for name in set(re.findall(r"\bmodule\.([a-z0-9_]+)\.", text)):
        assert name in config.modules, f"module.{name} is used but not declared"


def check_target_group_replaceable(config: Config) -> None:
    # A change that replaces the group (port, protocol, VPC...) must not fail on a name in use or on
    # a group still attached to the listener: a generated name, and the new group first.
    group = config.resource("aws_lb_target_group", "this")
    assert "name" not in group and "name_prefix" in group, "the target group needs name_prefix, not name"
    # At most 6 characters (the provider's limit for a target group's name_prefix).
    assert group["name_prefix"] == '${trimsuffix(substr(var.name, 0, 5), "-")}-', group["name_prefix"]
    assert block(group, "lifecycle").get("create_before_destroy") is True, "create_before_destroy on the target group"


def check_only_the_container_port_is_forwarded(config: Config) -> None:
    # /health shows status only; the server's details live on its internal listener, which nothing on
    # the ALB may reach: one target group, on the container port, and every forward goes to it.
    groups = config.of_type("aws_lb_target_group")
    assert set(groups) == {"this"}, f"one target group only, found {sorted(groups)}"
    assert resolve(config, groups["this"]["port"]) == 8080
    assert resolve(config, block(groups["this"], "health_check")["port"]) == "traffic-port"
    actions = [block(l, "default_action") for l in config.of_type("aws_lb_listener").values()]
    actions += [a for r in config.of_type("aws_lb_listener_rule").values() for a in r.get("action", [])]
    for action in actions:
        assert action["type"] in ("forward", "redirect", "fixed-response"), action["type"]
        if action["type"] == "forward":
            assert action["target_group_arn"] == "${aws_lb_target_group.this.arn}", action
    ingress = [
        r for r in config.of_type("aws_vpc_security_group_ingress_rule").values()
        if r["security_group_id"] == "${aws_security_group.tasks.id}"
        and r.get("referenced_security_group_id") == "${aws_security_group.alb.id}"
    ]
    assert [(resolve(config, r["from_port"]), resolve(config, r["to_port"])) for r in ingress] == [(8080, 8080)]


def check_alarms(config: Config) -> None:
    alarms = config.of_type("aws_cloudwatch_metric_alarm")
    assert set(alarms) == {
        "alb_5xx_rate", "unhealthy_targets", "response_time_p99", "ecs_running_below_desired", "efs_burst_credits_low",
    }, sorted(alarms)
    for name, alarm in alarms.items():
        assert alarm.get("alarm_actions") == alarm.get("ok_actions") == "${local.alarm_actions}", f"{name}: ALARM and OK must notify"
        assert alarm["evaluation_periods"] == "${var.alarm_evaluation_periods}", name
        assert alarm["count"].startswith("${var.create_alarms"), f"{name} ignores create_alarms"
    assert config.default("create_alarms") is True
    unhealthy = alarms["unhealthy_targets"]
    assert (unhealthy["metric_name"], unhealthy["comparison_operator"], unhealthy["threshold"]) == (
        "UnHealthyHostCount", "GreaterThanThreshold", 0)
    assert unhealthy["dimensions"] == "${local.tg_dimensions}"
    p99 = alarms["response_time_p99"]
    assert (p99["metric_name"], p99["extended_statistic"]) == ("TargetResponseTime", "p99")
    rate = alarms["alb_5xx_rate"]
    expression = next(q["expression"] for q in rate["metric_query"] if "expression" in q)
    assert "target5xx" in expression and "alb5xx" in expression and "/ requests" in expression
    metrics = rate["dynamic"][0]["metric_query"]["for_each"]
    assert set(metrics.values()) == {"HTTPCode_Target_5XX_Count", "HTTPCode_ELB_5XX_Count", "RequestCount"}
    running = alarms["ecs_running_below_desired"]
    assert "var.container_insights != \"disabled\"" in running["count"], "Container Insights metrics need Container Insights"
    assert "desired - running" in str(running["metric_query"])
    credits = alarms["efs_burst_credits_low"]
    assert credits["metric_name"] == "BurstCreditBalance" and credits["comparison_operator"] == "LessThanThreshold"
    assert "bursting" in credits["count"], "burst credits exist in bursting mode only"
    topic = config.resource("aws_sns_topic", "alarms")
    assert topic["count"] == "${var.create_alarms && var.alarm_sns_topic_arn == null ? 1 : 0}"
    assert "var.alarm_sns_topic_arn" in config.locals["alarm_topic_arn"]


def check_waf(config: Config) -> None:
    acl = config.resource("aws_wafv2_web_acl", "this")
    assert acl["count"] == "${var.create_waf_web_acl ? 1 : 0}" and config.default("create_waf_web_acl") is True
    assert acl["scope"] == "REGIONAL"
    rules = config.locals["waf_rate_rules"]
    assert {r["path"]: r["limit"] for r in rules.values()} == {
        "/api/login": "${var.waf_login_rate_limit}", "/mcp": "${var.waf_mcp_rate_limit}",
    }
    content = acl["dynamic"][0]["rule"]["content"][0]
    assert content["action"][0]["block"][0]["custom_response"][0]["response_code"] == 429
    rate = content["statement"][0]["rate_based_statement"][0]
    assert rate["aggregate_key_type"] == "IP" and rate["limit"] == "${rule.value.limit}"
    match = rate["scope_down_statement"][0]["byte_match_statement"][0]
    assert match["search_string"] == "${rule.value.path}" and match["positional_constraint"] == "STARTS_WITH"
    association = config.resource("aws_wafv2_web_acl_association", "this")
    assert association["resource_arn"] == "${aws_lb.this.arn}"
    assert association["web_acl_arn"] == "${var.create_waf_web_acl ? aws_wafv2_web_acl.this[0].arn : var.waf_web_acl_arn}"
    assert "var.waf_web_acl_arn" in config.locals["waf_web_acl_arn"], "an external web ACL must stay possible"


def check_trace_environment(config: Config) -> None:
    env = container_environment(config)
    assert env["PGMCP_TRACE_OTLP_ENDPOINT"] == "${var.trace_otlp_endpoint}"
    assert env["PGMCP_TRACE_SAMPLE_RATIO"] == "${tostring(var.trace_sample_ratio)}"
    assert env["PGMCP_TRACE_SERVICE_NAME"] == "${var.trace_service_name}"
    # Off unless asked: none of them is set with the defaults.
    for name in ("trace_otlp_endpoint", "trace_sample_ratio", "trace_service_name"):
        assert config.default(name) is None, f"{name} must default to null (the server's default)"
    expression = config.locals["environment"]
    for name in ("trace_otlp_endpoint", "trace_sample_ratio", "trace_service_name"):
        assert f"var.{name} == null ? {{}} :" in expression, f"{name} must be set only when given"


################################################################################
# The kit as shipped
################################################################################


@pytest.mark.parametrize("which", ["module", "example"])
def test_every_variable_has_a_type_and_a_description(which, request):
    check_variables_typed_and_described(request.getfixturevalue(which))


@pytest.mark.parametrize("which", ["module", "example"])
def test_every_output_has_a_description(which, request):
    check_outputs_described(request.getfixturevalue(which))


def test_every_module_variable_but_booleans_is_validated(module):
    check_variables_validated(module)


def test_health_check_probes_health_every_30s_healthy_2_unhealthy_3_timeout_5(module):
    check_health_check(module)


def test_container_health_check_probes_livez_so_ecs_never_replaces_a_draining_task(module):
    check_container_health_check(module)


def test_deregistration_delay_and_stop_timeout_cover_the_servers_drain(module):
    check_drain_timing(module)


def test_shutdown_defaults_are_the_servers(module):
    defaults = server_defaults()
    assert module.default("shutdown_drain_delay_seconds") == seconds(defaults["shutdown.drain_delay"])
    assert module.default("shutdown_grace_seconds") == seconds(defaults["shutdown.grace"])
    assert defaults["listen"].endswith(":8080") and resolve(module, "${local.container_port}") == 8080


def test_https_listener_terminates_tls_with_the_acm_certificate(module):
    check_https_listener(module)


def test_http_listener_only_redirects_to_https(module):
    check_http_redirects_to_https(module)


def test_metrics_is_answered_by_the_alb_not_forwarded(module):
    check_metrics_blocked(module)


def test_efs_is_encrypted_at_rest_and_refuses_clients_without_tls(module):
    check_efs_encrypted(module)


def test_every_efs_volume_mounts_with_tls_iam_and_the_access_point(module):
    check_efs_volumes_use_tls_and_iam(module)


def test_server_runs_as_10001_read_only_with_config_read_only_and_tmp_writable(module):
    check_container(module)


def test_server_environment_points_at_the_shared_files_and_polls(module):
    check_environment(module)


def test_every_pgmcp_variable_set_is_a_server_configuration_key(module):
    known = {"PGMCP_" + key.replace(".", "_").upper() for key in server_defaults()}
    unknown = sorted(set(container_environment(module)) - known)
    assert not unknown, f"the server refuses to start with unknown keys: {unknown}"


def test_server_believes_forwarded_for_only_from_the_albs_subnets(module):
    check_trusted_proxies(module)


def test_s3_bucket_is_optional_private_versioned_encrypted_and_tls_only(module):
    check_s3_bucket(module)


def test_security_groups_are_least_privilege(module):
    check_security_groups(module)


def test_roles_mount_efs_read_only_and_read_s3_only_with_the_bucket(module):
    check_iam(module)


def test_service_scales_on_cpu_and_rolls_back_failed_deployments(module):
    check_service_and_scaling(module)


def test_log_group_retention_and_key_are_inputs(module):
    check_logs(module)


def test_target_group_is_named_by_prefix_and_replaced_before_destroy(module):
    check_target_group_replaceable(module)


def test_no_listener_or_rule_reaches_anything_but_the_container_port(module):
    check_only_the_container_port_is_forwarded(module)


def test_alarms_cover_5xx_unhealthy_p99_running_and_efs_credits_and_notify_sns(module):
    check_alarms(module)


def test_waf_rate_limits_login_and_mcp_per_ip_with_the_modules_or_an_external_acl(module):
    check_waf(module)


def test_trace_export_is_optional_and_uses_the_servers_keys(module):
    check_trace_environment(module)


def test_example_exposes_deletion_protection_and_waits_for_steady_state(example):
    call = example.modules["postgres_mcp"]
    assert call["alb_deletion_protection"] == "${var.alb_deletion_protection}"
    assert call["wait_for_steady_state"] == "${var.wait_for_steady_state}"
    assert example.default("alb_deletion_protection") is True
    assert example.default("wait_for_steady_state") is True


@pytest.mark.parametrize("which", ["module", "example"])
def test_provider_versions_are_pinned_to_a_range(which, request):
    check_versions(request.getfixturevalue(which))


@pytest.mark.parametrize("which", ["module", "example"])
def test_every_reference_is_declared(which, request):
    check_references_are_declared(request.getfixturevalue(which))


def test_example_passes_every_required_input_and_only_known_ones(module, example):
    call = example.modules["postgres_mcp"]
    assert (EXAMPLE / call["source"]).resolve() == MODULE
    arguments = set(call) - {"source", "providers", "depends_on", "count", "for_each"}
    assert not arguments - set(module.variables), f"unknown module inputs: {sorted(arguments - set(module.variables))}"
    required = {name for name, v in module.variables.items() if "default" not in v}
    assert not required - arguments, f"required inputs not passed: {sorted(required - arguments)}"
    used = set(re.findall(r"\bmodule\.postgres_mcp\.([a-z0-9_]+)", example.text))
    assert used <= set(module.outputs), f"outputs that do not exist: {sorted(used - set(module.outputs))}"


def test_example_tfvars_satisfy_the_module_validations(module, example):
    """The regex validations of the module, applied in Python to the example's sample values."""
    values = hcl2.loads((EXAMPLE / "terraform.tfvars.example").read_text(), serialization_options=OPTIONS)
    call = example.modules["postgres_mcp"]
    checked = 0
    for name, value in values.items():
        passed_as = [arg for arg, expression in call.items() if expression == f"${{var.{name}}}"]
        for argument in passed_as:
            for validation in module.variables[argument].get("validation", []):
                for negated, pattern in re.findall(r'(!?)can\(regex\("((?:[^"\\]|\\.)*)",', validation["condition"]):
                    regex = pattern.replace("\\\\", "\\").replace('\\"', '"')
                    for item in value if isinstance(value, list) else [value]:
                        matches = re.search(regex, item) is not None
                        assert matches != bool(negated), f"{name} = {item!r} fails {argument}'s validation {regex}"
                        checked += 1
    assert checked >= 5, f"only {checked} sample values were checked"


def test_every_checkov_skip_gives_a_reason():
    skips = 0
    for path in sorted(MODULE.glob("*.tf")) + sorted(EXAMPLE.glob("*.tf")):
        for line in path.read_text().splitlines():
            if "checkov:skip" in line:
                skips += 1
                assert re.search(r"#checkov:skip=CKV2?_[A-Z0-9]+_\d+:\S.{20,}", line), f"{path.name}: skip without a reason: {line.strip()}"
    assert skips, "no skips found: the scan of the .tf files is broken"


def test_readme_tables_list_every_input_and_output(module):
    readme = README.read_text()
    expected = readme_with_tables(readme, docs_tables(module))
    assert readme == expected, "terraform/README.md tables are stale: run `python terraform/tests/tfmodel.py --write`"


def test_checkov_found_no_failure_and_every_skip_has_a_reason():
    report = os.environ.get("CHECKOV_REPORT")
    if not report:
        pytest.skip("CHECKOV_REPORT not set: run terraform/tests/run.sh for the checkov scan")
    runs = json.loads(Path(report).read_text())
    runs = runs if isinstance(runs, list) else [runs]
    terraform = [r for r in runs if r.get("check_type") == "terraform"]
    assert terraform, "checkov scanned no Terraform"
    for run in runs:
        summary = run["summary"]
        failed = [(c["check_id"], c["resource"]) for c in run["results"].get("failed_checks", [])]
        assert not failed, f"checkov {run['check_type']} failures: {failed}"
        assert summary["parsing_errors"] == 0, f"checkov could not parse some {run['check_type']} files"
        for check in run["results"].get("skipped_checks", []):
            reason = check["check_result"].get("suppress_comment", "")
            assert len(reason.strip()) > 20, f"{check['check_id']} skipped without a reason"
    summary = terraform[0]["summary"]
    assert summary["resource_count"] >= 40 and summary["passed"] >= 100, f"checkov saw too little: {summary}"
    assert len(terraform[0]["results"].get("skipped_checks", [])) == summary["skipped"], "run checkov without --quiet"


################################################################################
# Broken copies: each check must catch the mistake it exists for
################################################################################

BROKEN = [
    ("health interval 10", check_health_check, "variables.tf",
     'description = "Seconds between two health checks of a target."\n  type        = number\n  default     = 30',
     'description = "Seconds between two health checks of a target."\n  type        = number\n  default     = 10'),
    ("health check on /", check_health_check, "main.tf", 'health_path    = "/health"', 'health_path    = "/"'),
    ("unhealthy after 2", check_health_check, "variables.tf",
     "Consecutive failed health checks before a target stops receiving traffic.\"\n  type        = number\n  default     = 3",
     "Consecutive failed health checks before a target stops receiving traffic.\"\n  type        = number\n  default     = 2"),
    ("container health on /readyz", check_container_health_check, "ecs.tf",
     '"healthcheck", "--path", "/livez"]', '"healthcheck", "--path", "/readyz"]'),
    ("deregistration 10 s", check_drain_timing, "variables.tf",
     "which also covers its 30 s request timeout.\"\n  type        = number\n  default     = 30",
     "which also covers its 30 s request timeout.\"\n  type        = number\n  default     = 10"),
    ("stopTimeout 20 s", check_drain_timing, "variables.tf", "default     = 35", "default     = 20"),
    ("no HTTPS", check_https_listener, "alb.tf", 'protocol          = "HTTPS"', 'protocol          = "HTTP"'),
    ("port 80 forwards", check_http_redirects_to_https, "alb.tf", 'type = "redirect"', 'type = "forward"'),
    ("/metrics forwarded", check_metrics_blocked, "alb.tf", 'type = "fixed-response"', 'type = "forward"'),
    ("/metrics/ open", check_metrics_blocked, "main.tf", '["/metrics", "/metrics/*", "/health/details"', '["/metrics", "/health/details"'),
    ("/health/details open", check_metrics_blocked, "main.tf", '"/metrics/*", "/health/details", "/health/details/*"]', '"/metrics/*"]'),
    ("EFS unencrypted", check_efs_encrypted, "efs.tf", "encrypted                       = true", "encrypted                       = false"),
    ("EFS without TLS", check_efs_volumes_use_tls_and_iam, "ecs.tf", 'transit_encryption = "ENABLED"', 'transit_encryption = "DISABLED"'),
    ("config writable", check_container, "ecs.tf", "containerPath = local.config_path, readOnly = true",
     "containerPath = local.config_path, readOnly = false"),
    ("root filesystem writable", check_container, "ecs.tf", "readonlyRootFilesystem = true\n    stopTimeout",
     "readonlyRootFilesystem = false\n    stopTimeout"),
    ("runs as root", check_container, "main.tf", "run_as         = 10001", "run_as         = 0"),
    ("inotify on EFS", check_environment, "ecs.tf", 'PGMCP_WATCH_MODE           = "poll"', 'PGMCP_WATCH_MODE           = "auto"'),
    ("whole VPC trusted", check_trusted_proxies, "main.tf",
     "[for subnet in data.aws_subnet.alb : subnet.cidr_block]", "[data.aws_vpc.this.cidr_block]"),
    ("task subnets trusted", check_trusted_proxies, "main.tf",
     "id    = var.public_subnet_ids[count.index]", "id    = var.private_subnet_ids[count.index]"),
    ("public bucket", check_s3_bucket, "s3.tf", "restrict_public_buckets = true", "restrict_public_buckets = false"),
    ("bucket unversioned", check_s3_bucket, "s3.tf", 'status = "Enabled"', 'status = "Suspended"'),
    ("ALB open on 8080", check_security_groups, "security_groups.tf", "from_port         = 443\n  to_port           = 443",
     "from_port         = 8080\n  to_port           = 8080"),
    ("EFS from anywhere", check_security_groups, "security_groups.tf",
     'description                  = "NFS from the postgres-mcp tasks (and the seed task)"\n  ip_protocol                  = "tcp"\n  from_port                    = 2049\n  to_port                      = 2049\n  referenced_security_group_id = aws_security_group.tasks.id',
     'description                  = "NFS from the postgres-mcp tasks (and the seed task)"\n  ip_protocol                  = "tcp"\n  from_port                    = 2049\n  to_port                      = 2049\n  cidr_ipv4                    = "0.0.0.0/0"'),
    ("task may write EFS", check_iam, "iam.tf",
     'actions   = ["elasticfilesystem:ClientMount"] # no ClientWrite: the volume is read-only for the server',
     'actions   = ["elasticfilesystem:ClientMount", "elasticfilesystem:ClientWrite"]'),
    ("untyped variable", check_variables_typed_and_described, "variables.tf",
     '  description = "TCP port of PostgreSQL."\n  type        = number\n', '  description = "TCP port of PostgreSQL."\n'),
    ("undescribed variable", check_variables_typed_and_described, "variables.tf",
     '  description = "TCP port of PostgreSQL."\n', ""),
    ("unvalidated variable", check_variables_validated, "variables.tf",
     "  validation {\n    condition     = var.database_port >= 1 && var.database_port <= 65535 && floor(var.database_port) == var.database_port\n"
     "    error_message = \"database_port must be an integer between 1 and 65535.\"\n  }\n",
     ""),
    ("fixed target group name", check_target_group_replaceable, "alb.tf",
     'name_prefix          = "${trimsuffix(substr(var.name, 0, 5), "-")}-"', 'name                 = var.name'),
    ("target group replaced after destroy", check_target_group_replaceable, "alb.tf",
     "  lifecycle {\n    create_before_destroy = true\n", "  lifecycle {\n"),
    ("rule forwards to a second group", check_only_the_container_port_is_forwarded, "alb.tf",
     '    type = "fixed-response"\n', '    type             = "forward"\n    target_group_arn = aws_lb_target_group.internal.arn\n'),
    ("unhealthy alarm tolerates one", check_alarms, "alarms.tf",
     '  comparison_operator = "GreaterThanThreshold"\n  threshold           = 0\n  evaluation_periods  = var.alarm_evaluation_periods\n  treat_missing_data  = "notBreaching"',
     '  comparison_operator = "GreaterThanThreshold"\n  threshold           = 1\n  evaluation_periods  = var.alarm_evaluation_periods\n  treat_missing_data  = "notBreaching"'),
    ("alarm without OK action", check_alarms, "alarms.tf", "  ok_actions          = local.alarm_actions\n", ""),
    ("5xx alarm ignores the ALB's own 5xx", check_alarms, "alarms.tf", "FILL(alb5xx, 0)", "0"),
    ("WAF counts per forwarded IP", check_waf, "waf.tf", 'aggregate_key_type    = "IP"', 'aggregate_key_type    = "FORWARDED_IP"'),
    ("WAF login rule on the mcp limit", check_waf, "waf.tf",
     'path = "/api/login", limit = var.waf_login_rate_limit', 'path = "/api/login", limit = var.waf_mcp_rate_limit'),
    ("trace endpoint always set", check_trace_environment, "ecs.tf",
     "var.trace_otlp_endpoint == null ? {} : { PGMCP_TRACE_OTLP_ENDPOINT = var.trace_otlp_endpoint }",
     "{ PGMCP_TRACE_OTLP_ENDPOINT = var.trace_otlp_endpoint }"),
    ("typo in a reference", check_references_are_declared, "alb.tf", "var.ssl_policy", "var.ssl_polcy"),
    ("unbounded provider", check_versions, "versions.tf", 'version = ">= 5.80, < 7.0"', 'version = ">= 5.80"'),
]


@pytest.mark.parametrize("what,check,file,old,new", BROKEN, ids=[b[0] for b in BROKEN])
def test_a_broken_copy_fails_the_check(what, check, file, old, new, tmp_path, module):
    broken = tmp_path / "postgres-mcp"
    shutil.copytree(MODULE, broken)
    text = (broken / file).read_text()
    assert old in text, f"{what}: the text to break is no longer in {file}; update the mutation"
    (broken / file).write_text(text.replace(old, new, 1))  # the first occurrence: the service's
    check(module)  # the original passes ...
    with pytest.raises(AssertionError):
        check(load(broken))  # ... the broken copy does not
