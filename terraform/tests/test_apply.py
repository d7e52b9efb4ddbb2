"""`terraform apply` of examples/complete against an AWS emulator, read back, re-planned, destroyed.

The offline checks (test_terraform.py, `terraform test`) read the configuration or a mocked plan;
this one runs the real provider through a real apply: every resource is created by the AWS API
calls the provider makes, in the order its dependencies allow, and the values asserted below are
read back through boto3 from what the emulator stored, not from Terraform's state. Then a second
plan shows the drift (printed, never hidden: what moto does not store comes back as a change), and
a destroy must remove everything.

The emulator is moto in server mode on loopback (tests/emulator.py: moto plus the few calls it
lacks), the provider is pointed at it by tests/moto/provider_override.tf, and the network, the
certificate, the database secret and the DNS zone the example expects to exist are created here
first. What this does not prove (tasks never run, deletion protection is not enforced, IAM is not
evaluated...) is listed in terraform/README.md, "Applied against an emulator".

Runs from run.sh with the hashicorp/aws provider from TF_PLUGIN_DIR (or the registry) and the
kit's venv (moto[server] from requirements-test.txt). Prints the timings and the drift.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import boto3
import pytest

HERE = Path(__file__).resolve().parent
TERRAFORM = HERE.parent
REGION = "eu-west-1"
DOMAIN = "mcp.example.com"
IMAGE = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/postgres-mcp:1.0.0"
TASKS = 2  # min_capacity and desired count; moto reports this many running (MOTO_ECS_SERVICE_RUNNING)

# What moto does not store or answer as AWS does, so that the second plan wants to set it again:
# (resource type, attribute) -> why. Drift on anything else is the module's, and fails the test.
MOTO_DRIFT = {
    ("aws_ecs_service", "enable_ecs_managed_tags"): "moto's DescribeServices never returns enableECSManagedTags",
    ("aws_ecs_service", "health_check_grace_period_seconds"): "moto's DescribeServices never returns healthCheckGracePeriodSeconds",
    ("aws_ecs_service", "availability_zone_rebalancing"): "moto's DescribeServices never returns availabilityZoneRebalancing",
    ("aws_vpc_security_group_ingress_rule", "description"): "moto drops the description of a rule that references a security group",
    ("aws_vpc_security_group_egress_rule", "description"): "moto drops the description of a rule that references a security group",
}

# Seconds: generous bounds so that a hang fails the test instead of holding CI (apply takes ~1.5 min).
APPLY_TIMEOUT, PLAN_TIMEOUT, DESTROY_TIMEOUT = 600, 300, 450


def log(message: str) -> None:
    print(f"moto apply: {message}", file=sys.stderr, flush=True)


class Deployment:
    """The running emulator, the applied copy of the example, and boto3 clients on the emulator."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.endpoint = ""
        self.emulator: subprocess.Popen | None = None
        self.example = tmp / "examples" / "complete"
        self.env = dict(
            os.environ,
            AWS_ACCESS_KEY_ID="testing",
            AWS_SECRET_ACCESS_KEY="testing",
            AWS_REGION=REGION,
            AWS_DEFAULT_REGION=REGION,
            TF_IN_AUTOMATION="1",
            CHECKPOINT_DISABLE="1",
        )
        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
            self.env.pop(name, None)
        if self.env.get("TF_CLI_CONFIG_FILE") and not Path(self.env["TF_CLI_CONFIG_FILE"]).exists():
            self.env["TF_CLI_CONFIG_FILE"] = "/dev/null"
        self.fixtures: dict = {}
        self.outputs: dict = {}
        self.timings: dict[str, float] = {}
        self.resource_count = 0

    # The emulator ------------------------------------------------------------------------------

    def start_emulator(self) -> None:
        env = dict(self.env, MOTO_ECS_SERVICE_RUNNING=str(TASKS))
        self.emulator_log = open(self.tmp / "emulator.log", "w")
        self.emulator = subprocess.Popen(
            [sys.executable, str(HERE / "emulator.py")],
            stdout=subprocess.PIPE,
            stderr=self.emulator_log,
            env=env,
            text=True,
        )
        line = self.emulator.stdout.readline()
        match = re.match(r"ready (http://127\.0\.0\.1:\d+)", line)
        assert match, f"the emulator did not start: {line!r}; see {self.tmp / 'emulator.log'}"
        self.endpoint = match.group(1)

    def stop_emulator(self) -> None:
        if self.emulator and self.emulator.poll() is None:
            self.emulator.terminate()
            try:
                self.emulator.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.emulator.kill()
                self.emulator.wait()
            self.emulator_log.close()

    def client(self, service: str):
        return boto3.client(
            service,
            endpoint_url=self.endpoint,
            region_name=REGION,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )

    # What the example expects to exist already ------------------------------------------------

    def create_prerequisites(self) -> None:
        ec2 = self.client("ec2")
        vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]

        def subnet(cidr: str, zone: str) -> str:
            return ec2.create_subnet(VpcId=vpc, CidrBlock=cidr, AvailabilityZone=zone)["Subnet"]["SubnetId"]

        public = [subnet("10.0.0.0/24", f"{REGION}a"), subnet("10.0.1.0/24", f"{REGION}b")]
        private = [subnet("10.0.10.0/24", f"{REGION}a"), subnet("10.0.11.0/24", f"{REGION}b")]
        database_group = ec2.create_security_group(GroupName="database", Description="PostgreSQL", VpcId=vpc)["GroupId"]
        certificate = self.client("acm").request_certificate(DomainName=DOMAIN)["CertificateArn"]
        secret = self.client("secretsmanager").create_secret(
            Name="postgres-mcp/database-url", SecretString="postgres://reader:secret@db.internal:5432/app"
        )["ARN"]
        zone = self.client("route53").create_hosted_zone(Name="example.com", CallerReference="kit-test")["HostedZone"]
        self.fixtures = {
            "vpc_id": vpc,
            "public_subnet_ids": public,
            "private_subnet_ids": private,
            "database_security_group_ids": [database_group],
            "certificate_arn": certificate,
            "database_url_secret_arn": secret,
            "route53_zone_id": zone["Id"].split("/")[-1],
        }

    # Terraform ---------------------------------------------------------------------------------

    def write_configuration(self) -> None:
        shutil.copytree(TERRAFORM / "modules", self.tmp / "modules")
        shutil.copytree(TERRAFORM / "examples", self.tmp / "examples")
        override = (HERE / "moto" / "provider_override.tf").read_text().replace("MOTO_ENDPOINT", self.endpoint)
        (self.example / "provider_override.tf").write_text(override)
        tfvars = dict(
            self.fixtures,
            region=REGION,
            domain_name=DOMAIN,
            image=IMAGE,
            min_capacity=TASKS,
            # The README's order before a destroy: protection off, apply, destroy (moto would not care).
            alb_deletion_protection=False,
            alarm_email_addresses=["oncall@example.com"],
        )
        (self.example / "terraform.tfvars.json").write_text(json.dumps(tfvars, indent=2))

    def terraform(self, *args: str, timeout: float, check: bool = True) -> subprocess.CompletedProcess:
        result = subprocess.run(
            ["terraform", f"-chdir={self.example}", *args, "-no-color"],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        (self.tmp / f"terraform-{args[0]}.log").write_text(result.stdout + result.stderr)
        if check and result.returncode != 0:
            pytest.fail(f"terraform {' '.join(args)} failed ({result.returncode}):\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}")
        return result

    def init(self) -> None:
        plugin_dir = os.environ.get("TF_PLUGIN_DIR") or ("/opt/tf-plugins" if Path("/opt/tf-plugins").is_dir() else "")
        self.terraform("init", "-input=false", *([f"-plugin-dir={plugin_dir}"] if plugin_dir else []), timeout=300)

    def apply(self) -> None:
        started = time.monotonic()
        self.terraform("apply", "-auto-approve", "-input=false", timeout=APPLY_TIMEOUT)
        self.timings["apply"] = time.monotonic() - started
        self.resource_count = len(self.managed_resources())
        self.outputs = {k: v["value"] for k, v in json.loads(self.terraform("output", "-json", timeout=60).stdout).items()}

    def managed_resources(self) -> list[str]:
        listed = self.terraform("state", "list", timeout=60, check=False)
        return [line for line in listed.stdout.splitlines() if line and ".data." not in line and not line.startswith("data.")]


@pytest.fixture(scope="module")
def deployment(tmp_path_factory):
    if shutil.which("terraform") is None:
        pytest.fail("terraform is not installed; run.sh calls this test only where it is")
    deployment = Deployment(tmp_path_factory.mktemp("moto-apply"))
    deployment.start_emulator()
    try:
        deployment.create_prerequisites()
        deployment.write_configuration()
        deployment.init()
        deployment.apply()
        log(f"applied {deployment.resource_count} resources in {deployment.timings['apply']:.0f} s")
        yield deployment
    finally:
        deployment.stop_emulator()
        if deployment.timings:
            log("; ".join(f"{step} {seconds:.0f} s" for step, seconds in deployment.timings.items()))


################################################################################
# The emulator's own calls: what it adds to moto answers as AWS does
################################################################################


@pytest.fixture(scope="module")
def emulator(tmp_path_factory):
    bare = Deployment(tmp_path_factory.mktemp("emulator"))
    bare.start_emulator()
    yield bare
    bare.stop_emulator()


def test_emulator_efs_backup_policy_and_file_system_policy_calls(emulator):
    efs = emulator.client("efs")
    file_system_id = efs.create_file_system(CreationToken="emulator-test")["FileSystemId"]
    assert efs.describe_backup_policy(FileSystemId=file_system_id)["BackupPolicy"]["Status"] == "DISABLED"
    for status in ("ENABLED", "DISABLED"):
        answer = efs.put_backup_policy(FileSystemId=file_system_id, BackupPolicy={"Status": status})
        assert answer["BackupPolicy"]["Status"] == status
        assert efs.describe_backup_policy(FileSystemId=file_system_id)["BackupPolicy"]["Status"] == status
    with pytest.raises(efs.exceptions.ClientError, match="ValidationException"):
        efs.put_backup_policy(FileSystemId=file_system_id, BackupPolicy={"Status": "ON"})
    with pytest.raises(efs.exceptions.ClientError, match="FileSystemNotFound"):
        efs.put_backup_policy(FileSystemId="fs-00000000", BackupPolicy={"Status": "ENABLED"})
    efs.put_file_system_policy(FileSystemId=file_system_id, Policy=json.dumps({"Version": "2012-10-17", "Statement": []}))
    efs.delete_file_system_policy(FileSystemId=file_system_id)
    with pytest.raises(efs.exceptions.ClientError, match="PolicyNotFound"):
        efs.describe_file_system_policy(FileSystemId=file_system_id)


def test_emulator_application_autoscaling_tags(emulator):
    ecs = emulator.client("ecs")
    ecs.create_cluster(clusterName="c")
    ecs.register_task_definition(family="f", containerDefinitions=[{"name": "x", "image": "x", "memory": 64}])
    ecs.create_service(cluster="c", serviceName="s", taskDefinition="f", desiredCount=1)
    scaling = emulator.client("application-autoscaling")
    arn = scaling.register_scalable_target(
        ServiceNamespace="ecs", ResourceId="service/c/s", ScalableDimension="ecs:service:DesiredCount",
        MinCapacity=1, MaxCapacity=2, Tags={"Team": "a"},
    )["ScalableTargetARN"]
    assert scaling.list_tags_for_resource(ResourceARN=arn)["Tags"] == {"Team": "a"}
    scaling.tag_resource(ResourceARN=arn, Tags={"Env": "test"})
    scaling.untag_resource(ResourceARN=arn, TagKeys=["Team"])
    assert scaling.list_tags_for_resource(ResourceARN=arn)["Tags"] == {"Env": "test"}
    # The registration itself is still moto's.
    targets = scaling.describe_scalable_targets(ServiceNamespace="ecs")["ScalableTargets"]
    assert [(t["ResourceId"], t["MinCapacity"], t["MaxCapacity"]) for t in targets] == [("service/c/s", 1, 2)]


################################################################################
# Read back through boto3
################################################################################


def target_group(d: Deployment) -> dict:
    # Every group in the emulator, not those of the ALB: moto does not link a group the listener was
    # moved to (modify_listener) to the ALB, and the example's is the only one there.
    groups = d.client("elbv2").describe_target_groups()["TargetGroups"]
    assert len(groups) == 1, f"one target group expected, found {[g['TargetGroupName'] for g in groups]}"
    return groups[0]


def load_balancer(d: Deployment) -> dict:
    balancers = d.client("elbv2").describe_load_balancers(Names=["postgres-mcp"])["LoadBalancers"]
    assert len(balancers) == 1
    return balancers[0]


def security_group_rules(d: Deployment, group_id: str) -> list[dict]:
    return d.client("ec2").describe_security_group_rules(Filters=[{"Name": "group-id", "Values": [group_id]}])["SecurityGroupRules"]


def group_id(d: Deployment, prefix: str) -> str:
    groups = d.client("ec2").describe_security_groups(
        Filters=[{"Name": "vpc-id", "Values": [d.fixtures["vpc_id"]]}, {"Name": "group-name", "Values": [f"postgres-mcp-{prefix}-*"]}]
    )["SecurityGroups"]
    assert len(groups) == 1, f"one {prefix} security group expected, found {len(groups)}"
    return groups[0]["GroupId"]


def test_apply_creates_every_resource_of_the_example(deployment):
    # 50-odd resources: the exact count changes with the module; what matters is that apply finished
    # and that the state lists what the module declares (checked resource by resource below).
    assert deployment.resource_count >= 45, deployment.managed_resources()
    assert deployment.outputs["url"] == f"https://{DOMAIN}/mcp"


def test_target_group_checks_health_every_30s_timeout_5_healthy_2_unhealthy_3(deployment):
    group = target_group(deployment)
    assert group["HealthCheckPath"] == "/health" and group["HealthCheckProtocol"] == "HTTP"
    assert group["HealthCheckPort"] == "traffic-port"
    assert (group["HealthCheckIntervalSeconds"], group["HealthCheckTimeoutSeconds"]) == (30, 5)
    assert (group["HealthyThresholdCount"], group["UnhealthyThresholdCount"]) == (2, 3)
    assert group["Matcher"] == {"HttpCode": "200"}, "only 200 is healthy: /health answers 503 while draining"
    assert (group["Protocol"], group["Port"], group["TargetType"]) == ("HTTP", 8080, "ip")
    assert re.fullmatch(r"postg-[0-9a-z]+", group["TargetGroupName"]), f"not from name_prefix: {group['TargetGroupName']}"
    attributes = {
        a["Key"]: a["Value"]
        for a in deployment.client("elbv2").describe_target_group_attributes(TargetGroupArn=group["TargetGroupArn"])["Attributes"]
    }
    assert attributes["deregistration_delay.timeout_seconds"] == "30"
    assert attributes.get("stickiness.enabled", "false") == "false"


def test_alb_idle_timeout_headers_and_subnets(deployment):
    balancer = load_balancer(deployment)
    # moto returns no Scheme: internet-facing vs internal is left to `terraform test`.
    assert balancer["Type"] == "application"
    assert sorted(z["SubnetId"] for z in balancer["AvailabilityZones"]) == sorted(deployment.fixtures["public_subnet_ids"])
    attributes = {
        a["Key"]: a["Value"]
        for a in deployment.client("elbv2").describe_load_balancer_attributes(LoadBalancerArn=balancer["LoadBalancerArn"])["Attributes"]
    }
    assert attributes["idle_timeout.timeout_seconds"] == "60"
    assert attributes["routing.http.drop_invalid_header_fields.enabled"] == "true"
    assert attributes["routing.http.desync_mitigation_mode"] == "defensive"
    assert attributes["deletion_protection.enabled"] == "false", "the test turns it off, as the README says before a destroy"


def test_listeners_https_forwards_http_redirects_metrics_blocked_and_nothing_reaches_another_port(deployment):
    elbv2 = deployment.client("elbv2")
    group = target_group(deployment)
    listeners = {
        l["Port"]: l for l in elbv2.describe_listeners(LoadBalancerArn=load_balancer(deployment)["LoadBalancerArn"])["Listeners"]
    }
    assert set(listeners) == {80, 443}
    https = listeners[443]
    assert https["Protocol"] == "HTTPS" and https["SslPolicy"].startswith("ELBSecurityPolicy-TLS13-")
    assert [c["CertificateArn"] for c in https["Certificates"]] == [deployment.fixtures["certificate_arn"]]
    assert [(a["Type"], a["TargetGroupArn"]) for a in https["DefaultActions"]] == [("forward", group["TargetGroupArn"])]
    redirect = listeners[80]["DefaultActions"][0]
    assert redirect["Type"] == "redirect"
    assert redirect["RedirectConfig"]["Protocol"] == "HTTPS" and redirect["RedirectConfig"]["Port"] == "443"
    assert redirect["RedirectConfig"]["StatusCode"] == "HTTP_301"

    rules = [r for r in elbv2.describe_rules(ListenerArn=https["ListenerArn"])["Rules"] if not r["IsDefault"]]
    metrics = [r for r in rules if any("/metrics" in c.get("Values", []) or "/metrics" in c.get("PathPatternConfig", {}).get("Values", []) for c in r["Conditions"])]
    assert len(metrics) == 1 and metrics[0]["Priority"] == "1"
    blocked = [v for c in metrics[0]["Conditions"] for v in c.get("Values", []) + c.get("PathPatternConfig", {}).get("Values", [])]
    assert "/health/details" in blocked, blocked
    action = metrics[0]["Actions"][0]
    assert action["Type"] == "fixed-response" and action["FixedResponseConfig"]["StatusCode"] == "404"
    # The server's details stay inside (/health/details answered above); every forward
    # of every listener and rule goes to the one target group, on the container port.
    for listener in listeners.values():
        for rule in elbv2.describe_rules(ListenerArn=listener["ListenerArn"])["Rules"]:
            for act in rule["Actions"]:
                if act["Type"] == "forward":
                    assert act["TargetGroupArn"] == group["TargetGroupArn"], f"rule {rule['RuleArn']} forwards elsewhere"
    assert group["Port"] == 8080


def test_ecs_service_runs_the_task_definition_behind_the_target_group(deployment):
    ecs = deployment.client("ecs")
    service = ecs.describe_services(cluster="postgres-mcp", services=["postgres-mcp"])["services"][0]
    assert service["status"] == "ACTIVE" and service["launchType"] == "FARGATE"
    assert service["desiredCount"] == TASKS
    assert service["loadBalancers"] == [
        {"targetGroupArn": target_group(deployment)["TargetGroupArn"], "containerName": "postgres-mcp", "containerPort": 8080}
    ]
    network = service["networkConfiguration"]["awsvpcConfiguration"]
    assert sorted(network["subnets"]) == sorted(deployment.fixtures["private_subnet_ids"])
    assert network["securityGroups"] == [group_id(deployment, "tasks")]
    assert network["assignPublicIp"] == "DISABLED"
    # moto stores no deploymentConfiguration (circuit breaker, min/max percent): `terraform test` checks them.

    task = ecs.describe_task_definition(taskDefinition=service["taskDefinition"])["taskDefinition"]
    assert task["requiresCompatibilities"] == ["FARGATE"] and task["networkMode"] == "awsvpc"
    assert (task["cpu"], task["memory"]) == ("512", "1024")
    containers = {c["name"]: c for c in task["containerDefinitions"]}
    server = containers["postgres-mcp"]
    assert server["user"] == "10001:10001" and server["readonlyRootFilesystem"] is True
    assert server["stopTimeout"] == 35
    env = {e["name"]: e["value"] for e in server["environment"]}
    assert env["PGMCP_PUBLIC_URL"] == f"https://{DOMAIN}"
    assert env["PGMCP_WATCH_MODE"] == "poll" and env["PGMCP_KB_PATH"] == "/app/config/kb.db"
    assert env["PGMCP_AUTH_TRUSTED_PROXIES"] == "10.0.0.0/24,10.0.1.0/24", "the ALB's subnets, read from AWS"
    assert [s["name"] for s in server["secrets"]] == ["PGMCP_DATABASE_URL"]
    assert server["secrets"][0]["valueFrom"] == deployment.fixtures["database_url_secret_arn"]
    assert {m["containerPath"]: m["readOnly"] for m in server["mountPoints"]} == {"/app/config": True, "/tmp": False}
    assert server["dependsOn"] == [{"containerName": "tmp-init", "condition": "SUCCESS"}]
    volume = next(v for v in task["volumes"] if v["name"] == "config")["efsVolumeConfiguration"]
    assert volume["fileSystemId"] == deployment.outputs["efs_file_system_id"]
    assert volume["transitEncryption"] == "ENABLED"
    assert volume["authorizationConfig"] == {"accessPointId": deployment.outputs["efs_access_point_id"], "iam": "ENABLED"}

    scaling = deployment.client("application-autoscaling")
    target = scaling.describe_scalable_targets(ServiceNamespace="ecs", ResourceIds=["service/postgres-mcp/postgres-mcp"])["ScalableTargets"]
    assert [(t["MinCapacity"], t["MaxCapacity"]) for t in target] == [(TASKS, 6)]
    policies = scaling.describe_scaling_policies(ServiceNamespace="ecs", ResourceId="service/postgres-mcp/postgres-mcp")["ScalingPolicies"]
    assert [p["TargetTrackingScalingPolicyConfiguration"]["TargetValue"] for p in policies] == [70.0]


def test_efs_access_point_mount_targets_backup_and_tls_policy(deployment):
    efs = deployment.client("efs")
    file_system_id = deployment.outputs["efs_file_system_id"]
    file_system = efs.describe_file_systems(FileSystemId=file_system_id)["FileSystems"][0]
    assert file_system["Encrypted"] is True and file_system["ThroughputMode"] == "bursting"
    point = efs.describe_access_points(AccessPointId=deployment.outputs["efs_access_point_id"])["AccessPoints"][0]
    assert point["FileSystemId"] == file_system_id
    assert point["PosixUser"] == {"Uid": 10001, "Gid": 10001}
    assert point["RootDirectory"]["Path"] == "/postgres-mcp"
    assert point["RootDirectory"]["CreationInfo"] == {"OwnerUid": 10001, "OwnerGid": 10001, "Permissions": "0750"}
    targets = efs.describe_mount_targets(FileSystemId=file_system_id)["MountTargets"]
    assert sorted(t["SubnetId"] for t in targets) == sorted(deployment.fixtures["private_subnet_ids"])
    for target in targets:
        groups = efs.describe_mount_target_security_groups(MountTargetId=target["MountTargetId"])["SecurityGroups"]
        assert groups == [group_id(deployment, "efs")]
    assert efs.describe_backup_policy(FileSystemId=file_system_id)["BackupPolicy"]["Status"] == "ENABLED"
    policy = json.loads(efs.describe_file_system_policy(FileSystemId=file_system_id)["Policy"])
    deny = [s for s in policy["Statement"] if s["Effect"] == "Deny"]
    assert any(s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}} for s in deny), policy


def test_security_group_rules_are_least_privilege(deployment):
    alb, tasks, efs = (group_id(deployment, name) for name in ("alb", "tasks", "efs"))

    def shape(rules: list[dict], egress: bool) -> set[tuple]:
        return {
            (r["FromPort"], r["ToPort"], r.get("CidrIpv4") or r.get("ReferencedGroupInfo", {}).get("GroupId"))
            for r in rules
            if r["IsEgress"] is egress
        }

    rules = {g: security_group_rules(deployment, g) for g in (alb, tasks, efs)}
    assert shape(rules[alb], False) == {(443, 443, "0.0.0.0/0"), (80, 80, "0.0.0.0/0")}
    assert shape(rules[alb], True) == {(8080, 8080, tasks)}
    assert shape(rules[tasks], False) == {(8080, 8080, alb)}, "the tasks take 8080 from the ALB only"
    database = deployment.fixtures["database_security_group_ids"][0]
    assert shape(rules[tasks], True) == {(2049, 2049, efs), (443, 443, "0.0.0.0/0"), (5432, 5432, database)}
    assert shape(rules[efs], False) == {(2049, 2049, tasks)}
    assert shape(rules[efs], True) == set(), "the EFS group has no egress (Terraform removed the default)"


def test_alarms_notify_the_topic(deployment):
    topic = deployment.outputs["alarm_sns_topic_arn"]
    assert topic.endswith(":postgres-mcp-alarms")
    subscriptions = deployment.client("sns").list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]
    assert [(s["Protocol"], s["Endpoint"]) for s in subscriptions] == [("email", "oncall@example.com")]
    alarms = {
        a["AlarmName"].removeprefix("postgres-mcp-"): a
        for a in deployment.client("cloudwatch").describe_alarms(AlarmNamePrefix="postgres-mcp-")["MetricAlarms"]
    }
    assert set(alarms) == {"alb-5xx-rate", "unhealthy-targets", "response-time-p99", "ecs-running-below-desired", "efs-burst-credits-low"}
    for name, alarm in alarms.items():
        assert alarm["AlarmActions"] == [topic] and alarm["OKActions"] == [topic], name
        assert alarm["EvaluationPeriods"] == 3, name

    balancer_suffix = load_balancer(deployment)["LoadBalancerArn"].split(":loadbalancer/")[1]
    group_suffix = target_group(deployment)["TargetGroupArn"].split(":")[-1]
    unhealthy = alarms["unhealthy-targets"]
    assert (unhealthy["Namespace"], unhealthy["MetricName"], unhealthy["Statistic"]) == ("AWS/ApplicationELB", "UnHealthyHostCount", "Maximum")
    assert (unhealthy["ComparisonOperator"], unhealthy["Threshold"]) == ("GreaterThanThreshold", 0.0)
    assert {d["Name"]: d["Value"] for d in unhealthy["Dimensions"]} == {"LoadBalancer": balancer_suffix, "TargetGroup": group_suffix}
    p99 = alarms["response-time-p99"]
    assert (p99["MetricName"], p99["ExtendedStatistic"], p99["Threshold"]) == ("TargetResponseTime", "p99", 5.0)
    rate = {m["Id"]: m for m in alarms["alb-5xx-rate"]["Metrics"]}
    assert rate["rate"]["Expression"].startswith("IF(requests >= 20, 100 * (FILL(target5xx, 0) + FILL(alb5xx, 0)) / requests")
    assert rate["requests"]["MetricStat"]["Metric"]["MetricName"] == "RequestCount"
    assert {d["Name"]: d["Value"] for d in rate["alb5xx"]["MetricStat"]["Metric"]["Dimensions"]} == {"LoadBalancer": balancer_suffix}
    assert alarms["alb-5xx-rate"]["Threshold"] == 5.0
    running = {m["Id"]: m for m in alarms["ecs-running-below-desired"]["Metrics"]}
    assert running["missing_tasks"]["Expression"] == "desired - running"
    assert running["running"]["MetricStat"]["Metric"]["Namespace"] == "ECS/ContainerInsights"
    credits = alarms["efs-burst-credits-low"]
    assert (credits["MetricName"], credits["ComparisonOperator"]) == ("BurstCreditBalance", "LessThanThreshold")
    assert credits["Dimensions"] == [{"Name": "FileSystemId", "Value": deployment.outputs["efs_file_system_id"]}]


def test_waf_rate_limits_login_and_mcp_per_client_ip(deployment):
    wafv2 = deployment.client("wafv2")
    acl = wafv2.get_web_acl_for_resource(ResourceArn=load_balancer(deployment)["LoadBalancerArn"])["WebACL"]
    assert acl["ARN"] == deployment.outputs["waf_web_acl_arn"]
    assert "Allow" in acl["DefaultAction"]
    rules = {r["Name"]: r for r in acl["Rules"]}
    for name, path, limit in (("rate-login", "/api/login", 100), ("rate-mcp", "/mcp", 6000)):
        statement = rules[name]["Statement"]["RateBasedStatement"]
        assert (statement["Limit"], statement["AggregateKeyType"], statement["EvaluationWindowSec"]) == (limit, "IP", 300)
        match = statement["ScopeDownStatement"]["ByteMatchStatement"]
        assert match["PositionalConstraint"] == "STARTS_WITH" and "UriPath" in match["FieldToMatch"]
        # The SDK gives SearchString back as bytes (a blob), whichever way moto stored it.
        assert match["SearchString"] in (path.encode(), path)
        assert rules[name]["Action"]["Block"]["CustomResponse"]["ResponseCode"] == 429
    managed = rules["AWSManagedRulesKnownBadInputsRuleSet"]["Statement"]["ManagedRuleGroupStatement"]
    assert (managed["VendorName"], managed["Name"]) == ("AWS", "AWSManagedRulesKnownBadInputsRuleSet")
    assert rules["AWSManagedRulesKnownBadInputsRuleSet"]["OverrideAction"] == {"None": {}}


def test_dns_alias_points_at_the_alb(deployment):
    records = deployment.client("route53").list_resource_record_sets(HostedZoneId=deployment.fixtures["route53_zone_id"])["ResourceRecordSets"]
    alias = [r for r in records if r["Name"].rstrip(".") == DOMAIN and r["Type"] == "A"]
    assert len(alias) == 1 and alias[0]["AliasTarget"]["DNSName"].rstrip(".") == load_balancer(deployment)["DNSName"]


################################################################################
# Plan again: the drift
################################################################################


def changed_attributes(change: dict) -> list[str]:
    before, after = change.get("before") or {}, change.get("after") or {}
    unknown = change.get("after_unknown") or {}
    keys = set(before) | set(after)
    return sorted(k for k in keys if before.get(k) != after.get(k) or unknown.get(k) is True)


def test_second_plan_reports_only_the_drift_moto_causes(deployment):
    started = time.monotonic()
    deployment.terraform("plan", "-input=false", "-out=second.tfplan", timeout=PLAN_TIMEOUT)
    deployment.timings["second plan"] = time.monotonic() - started
    plan = json.loads(deployment.terraform("show", "-json", "second.tfplan", timeout=60).stdout)
    drift, unexplained = [], []
    for change in plan.get("resource_changes", []):
        actions = change["change"]["actions"]
        if actions in (["no-op"], ["read"]):
            continue
        attributes = changed_attributes(change["change"])
        for attribute in attributes or ["(whole resource)"]:
            reason = MOTO_DRIFT.get((change["type"], attribute))
            line = f"{'/'.join(actions)} {change['address']}.{attribute}"
            if reason and actions == ["update"]:
                drift.append(f"{line}  (moto: {reason})")
            else:
                unexplained.append(line)
    log(f"second plan: {len(drift) + len(unexplained)} attribute(s) to change")
    for line in drift + [f"{u}  (NOT explained by moto)" for u in unexplained]:
        log(f"  drift: {line}")
    assert not unexplained, "drift the module causes (or moto drift not yet listed in MOTO_DRIFT):\n" + "\n".join(unexplained)


################################################################################
# Replace the target group (after the second plan, whose drift this apply would write over)
################################################################################


def test_replacing_the_target_group_moves_the_listener_the_service_and_the_alarms(deployment):
    # What name_prefix + create_before_destroy are for: a change that replaces the group (forced
    # here with -replace) creates the new one, moves everything to it, then deletes the old one.
    old = target_group(deployment)["TargetGroupArn"]
    started = time.monotonic()
    result = deployment.terraform(
        "apply", "-auto-approve", "-input=false", "-replace=module.postgres_mcp.aws_lb_target_group.this", timeout=APPLY_TIMEOUT
    )
    deployment.timings["target group replacement"] = time.monotonic() - started
    assert re.search(r"Resources: 1 added, \d+ changed, 1 destroyed", result.stdout), result.stdout[-2000:]
    new = target_group(deployment)["TargetGroupArn"]
    assert new != old
    elbv2 = deployment.client("elbv2")
    https = next(l for l in elbv2.describe_listeners(LoadBalancerArn=load_balancer(deployment)["LoadBalancerArn"])["Listeners"] if l["Port"] == 443)
    assert https["DefaultActions"][0]["TargetGroupArn"] == new
    service = deployment.client("ecs").describe_services(cluster="postgres-mcp", services=["postgres-mcp"])["services"][0]
    assert [b["targetGroupArn"] for b in service["loadBalancers"]] == [new]
    alarm = deployment.client("cloudwatch").describe_alarms(AlarmNames=["postgres-mcp-unhealthy-targets"])["MetricAlarms"][0]
    assert {"Name": "TargetGroup", "Value": new.split(":")[-1]} in alarm["Dimensions"]


################################################################################
# Destroy: nothing left
################################################################################


def test_destroy_removes_everything(deployment):
    count = deployment.resource_count
    started = time.monotonic()
    # -refresh=false: the second plan refreshed the state a moment ago (a refresh costs ~10-40 s of
    # CI, most of it the provider's CPU); every resource in it is destroyed all the same.
    deployment.terraform("destroy", "-auto-approve", "-input=false", "-refresh=false", timeout=DESTROY_TIMEOUT)
    deployment.timings["destroy"] = time.monotonic() - started
    log(f"destroyed {count} resources in {deployment.timings['destroy']:.0f} s")
    assert deployment.managed_resources() == []
    assert deployment.client("elbv2").describe_load_balancers()["LoadBalancers"] == []
    assert deployment.client("efs").describe_file_systems()["FileSystems"] == []
    assert deployment.client("cloudwatch").describe_alarms(AlarmNamePrefix="postgres-mcp-")["MetricAlarms"] == []
    assert deployment.client("wafv2").list_web_acls(Scope="REGIONAL")["WebACLs"] == []
    services = deployment.client("ecs").describe_services(cluster="postgres-mcp", services=["postgres-mcp"])
    assert all(s["status"] != "ACTIVE" for s in services.get("services", []))
    left = deployment.client("ec2").describe_security_groups(Filters=[{"Name": "vpc-id", "Values": [deployment.fixtures["vpc_id"]]}])
    assert sorted(g["GroupName"] for g in left["SecurityGroups"]) == ["database", "default"]
