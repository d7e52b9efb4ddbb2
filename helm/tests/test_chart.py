"""The Helm chart, rendered and linted by Helm v4 itself (PyPI helm-python-sdk: Helm's Go SDK as a
library, no binary or cluster) and every manifest checked against Kubernetes' own OpenAPI schemas
(PyPI kubernetes-validate --strict, offline).

Beyond "it renders", the assertions are the properties production depends on: two or more instances
that scale on CPU, probes on /readyz and /livez, tokens only ever in a Secret mounted as a directory, pods that
roll when their config changes, a termination grace period that covers the server's drain, the
knowledge-base plumbing of each source, a locked-down security context, and a values schema that
refuses typos.
"""

import base64
import copy
import json
import re
import subprocess
import sys
from pathlib import Path

import helm_python as helm
import jsonschema
import pytest
import yaml

HERE = Path(__file__).resolve().parent
CHART_DIR = HERE.parent / "postgres-mcp"
REPO = HERE.parent.parent
VALUES_DIR = HERE / "values"
VALUES_FILES = sorted(p.stem for p in VALUES_DIR.glob("*.yaml"))
RELEASE, NAMESPACE = "demo", "mcp"
FULLNAME = f"{RELEASE}-postgres-mcp"
# The oldest Kubernetes the chart supports (Chart.yaml kubeVersion) and the newest the validator ships.
KUBE_VERSIONS = ["1.30.0", "1.37.0"]
UID = 10001


def test_the_expected_values_files_are_all_there():
    assert VALUES_FILES == sorted(["default", "ha", "pvc", "existing-secret", "sync-sidecar", "download", "auth-sync"])


@pytest.fixture(scope="session")
def chart():
    with helm.Chart.load(CHART_DIR) as loaded:
        yield loaded


def values_file(name: str) -> dict:
    return yaml.safe_load((VALUES_DIR / f"{name}.yaml").read_text()) or {}


def merge(base: dict, override: dict) -> dict:
    result = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = merge(result[key], value)
        else:
            result[key] = value
    return result


def render_raw(chart, values: dict) -> dict[str, str]:
    return chart.render(values, name=RELEASE, namespace=NAMESPACE)


def render(chart, values: dict) -> list[dict]:
    """Every object the chart renders (NOTES.txt excluded), test hooks included."""
    objects = []
    for path, text in sorted(render_raw(chart, values).items()):
        if path.endswith("NOTES.txt"):
            continue
        objects += [doc for doc in yaml.safe_load_all(text) if doc]
    return objects


def one(objects: list[dict], kind: str, name: str | None = None) -> dict:
    """The one object of `kind` (named `name`; for a ConfigMap the server's own by default)."""
    if name is None and kind == "ConfigMap":
        name = FULLNAME
    found = [o for o in objects if o["kind"] == kind and name in (None, o["metadata"]["name"])]
    assert len(found) == 1, f"expected one {kind}, got {[o['metadata']['name'] for o in found]}"
    return found[0]


def kinds(objects: list[dict]) -> set[str]:
    return {o["kind"] for o in objects}


def deployment(objects: list[dict]) -> dict:
    return one(objects, "Deployment")


def pod_spec(objects: list[dict]) -> dict:
    return deployment(objects)["spec"]["template"]["spec"]


def container(objects: list[dict], name: str = "server") -> dict:
    spec = pod_spec(objects)
    found = [c for c in spec["containers"] + spec.get("initContainers", []) if c["name"] == name]
    assert len(found) == 1, f"no container {name}"
    return found[0]


def mounts(c: dict) -> dict[str, dict]:
    return {m["mountPath"]: m for m in c.get("volumeMounts", [])}


def volumes(objects: list[dict]) -> dict[str, dict]:
    return {v["name"]: v for v in pod_spec(objects)["volumes"]}


def server_config(objects: list[dict]) -> dict:
    configmap = one(objects, "ConfigMap")
    return yaml.safe_load(configmap["data"]["config.yaml"])


def seconds(duration: str) -> float:
    number, unit = re.fullmatch(r"(\d+)(ms|s|m|h|d)", duration).groups()
    return int(number) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}[unit]


@pytest.fixture(scope="session")
def rendered(chart) -> dict[str, list[dict]]:
    return {name: render(chart, values_file(name)) for name in VALUES_FILES}


# --- Helm's own checks ------------------------------------------------------------------------


@pytest.mark.parametrize("name", VALUES_FILES)
def test_helm_lint_strict_passes(name):
    report = helm.lint(CHART_DIR, values_file(name), strict=True, namespace=NAMESPACE, kube_version="v1.30.0")
    problems = [m for m in report["messages"] if m["severity"] >= 2]
    assert not problems and not report["errors"], json.dumps(report, indent=2)


def test_helm_lint_reports_a_broken_value():
    report = helm.lint(CHART_DIR, {"replicaCount": -1}, strict=True, kube_version="v1.30.0")
    assert report["errors"], report


def test_chart_declares_kubernetes_1_30_or_newer(chart):
    # Enforced by `helm install`/`upgrade` (the offline renderer does not check it): the preStop sleep
    # action and matchLabelKeys need it, and it is the oldest version validated below.
    assert chart.metadata["kubeVersion"] == ">=1.30.0-0"
    assert chart.metadata["appVersion"] == "0.1.0"


@pytest.mark.parametrize(
    "values,complaint",
    [
        pytest.param({"replicaCont": 3}, "additional properties 'replicaCont'", id="typo-top-level"),
        pytest.param({"config": {"shutdown": {"grase": "30s"}}}, "additional properties 'grase'", id="typo-in-server-config"),
        pytest.param({"autoscaling": {"minReplica": 3}}, "additional properties 'minReplica'", id="typo-in-autoscaling"),
        pytest.param({"kb": {"source": "s3"}}, "/kb/source': value must be one of", id="wrong-enum-kb-source"),
        pytest.param({"config": {"watch": {"mode": "inotify"}}}, "/config/watch/mode': value must be one of", id="wrong-enum-watch-mode"),
        pytest.param({"config": {"log": {"format": "xml"}}}, "/config/log/format': value must be one of", id="wrong-enum-log-format"),
        pytest.param({"replicaCount": -1}, "/replicaCount': minimum", id="negative-replicas"),
        pytest.param({"autoscaling": {"minReplicas": -2}}, "/autoscaling/minReplicas': minimum", id="negative-min-replicas"),
        pytest.param({"probes": {"readiness": {"periodSeconds": 0}}}, "/probes/readiness/periodSeconds': minimum", id="zero-probe-period"),
        pytest.param({"config": {"shutdown": {"drain_delay": "5 seconds"}}}, "/config/shutdown/drain_delay'", id="unparseable-duration"),
        pytest.param({"config": {"listen": "0.0.0.0:9090"}}, "additional properties 'listen'", id="chart-managed-listen"),
        pytest.param({"config": {"auth": {"tokens_file": "/x"}}}, "additional properties 'tokens_file'", id="chart-managed-tokens-file"),
        pytest.param({"kb": {"download": {"sha256": "abc"}}}, "/kb/download/sha256'", id="short-sha256"),
        pytest.param({"kb": {"source": "download"}}, "/kb/download/url': minLength", id="download-without-url"),
        pytest.param({"kb": {"source": "sync"}}, "/kb/sync/items': minItems", id="sync-without-items"),
        pytest.param({"kb": {"sync": {"interval": "60s"}}}, "additional properties 'interval'", id="kb-sync-interval-moved-to-sync"),
        pytest.param({"auth": {"source": "s3"}}, "/auth/source': value must be one of", id="wrong-enum-auth-source"),
        pytest.param({"auth": {"source": "sync"}}, "/auth/sync/tokens': minLength", id="auth-sync-without-tokens"),
        pytest.param({"auth": {"sync": {"tokens": "/srv/tokens.yaml"}}}, "/auth/sync/tokens'", id="auth-sync-not-a-url"),
        pytest.param({"auth": {"sync": {"allowEmtpy": True}}}, "additional properties 'allowEmtpy'", id="typo-in-auth-sync"),
        pytest.param({"sync": {"metricsPort": 8080}}, "/sync/metricsPort'", id="sync-metrics-on-the-server-port"),
        pytest.param({"sync": {"staleAfter": "five minutes"}}, "/sync/staleAfter'", id="unparseable-stale-after"),
        pytest.param({"ingress": {"enabled": True, "hosts": [{"host": "a.example.com", "paths": [{"path": "/metrics", "pathType": "Prefix"}]}]}},
                     "/ingress/hosts/0/paths/0/path'", id="ingress-exposing-metrics"),
        pytest.param({"securityContext": {"runAsUser": 0}}, "/securityContext/runAsUser': minimum", id="root-user"),
        pytest.param({"podAntiAffinity": "sometimes"}, "/podAntiAffinity': value must be one of", id="wrong-enum-anti-affinity"),
    ],
)
def test_schema_rejects_bad_values(chart, values, complaint):
    with pytest.raises(helm.HelmValuesError) as refused:
        render_raw(chart, values)
    assert complaint in str(refused.value)


@pytest.mark.parametrize(
    "values,complaint",
    [
        ({"auth": {"login": {"enabled": True}}}, "auth.sessionKey"),
        ({"autoscaling": {"minReplicas": 5, "maxReplicas": 3}}, "maxReplicas"),
        ({"resources": {"requests": {"cpu": None}}}, "requests.cpu"),  # null removes the default
        ({"auth": {"source": "sync", "existingSecret": "mcp-auth", "sync": {"tokens": "s3://b/tokens.yaml"}}},
         "auth.existingSecret is for auth.source secret"),
        ({"auth": {"source": "sync", "login": {"enabled": True}, "sync": {"tokens": "s3://b/tokens.yaml"}}},
         "needs auth.sync.users and auth.sync.sessionKey"),
        ({"config": {"auth": {"oauth": {"mode": "external", "external": {"issuer": "https://idp.example.com"}}}}},
         "needs config.public_url"),
        ({"config": {"public_url": "https://mcp.example.com", "auth": {"oauth": {"mode": "builtin"}}}},
         "needs auth.login.enabled"),
        ({"config": {"public_url": "https://mcp.example.com", "auth": {"oauth": {"mode": "external"}}}},
         "needs config.auth.oauth.external.issuer"),
    ],
    ids=["login-without-session-key", "max-below-min", "hpa-without-cpu-request", "auth-sync-and-existing-secret",
         "auth-sync-login-without-users", "oauth-without-public-url", "oauth-builtin-without-login",
         "oauth-external-without-issuer"],
)
def test_inconsistent_values_fail_with_a_message(chart, values, complaint):
    with pytest.raises(helm.HelmError) as refused:
        render_raw(chart, values)
    assert complaint in str(refused.value)


def test_schema_closes_every_object():
    """additionalProperties: false wherever an object lists its properties (typos fail)."""
    schema = json.loads((CHART_DIR / "values.schema.json").read_text())
    open_objects = []

    def walk(node, path):
        if isinstance(node, dict):
            if "properties" in node and node.get("additionalProperties") is not False:
                open_objects.append(path)
            if node.get("type") == "object" and "properties" not in node and "additionalProperties" not in node:
                if path != "/properties/global":
                    open_objects.append(path)
            for key, child in node.items():
                walk(child, f"{path}/{key}")
        elif isinstance(node, list):
            for index, child in enumerate(node):
                walk(child, f"{path}/{index}")

    walk(schema, "")
    # if/then clauses only tighten properties already closed elsewhere.
    open_objects = [p for p in open_objects if "/allOf/" not in p]
    assert not open_objects


def test_default_values_satisfy_the_schema(chart):
    chart.validate_schema(chart.values)


# --- Kubernetes' schemas ----------------------------------------------------------------------

RELABEL_CONFIG_SCHEMA = {
    # monitoring.coreos.com/v1 RelabelConfig.
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "sourceLabels": {"type": "array", "items": {"type": "string", "pattern": "^[a-zA-Z_][a-zA-Z0-9_]*$"}},
        "separator": {"type": "string"},
        "targetLabel": {"type": "string"},
        "regex": {"type": "string"},
        "modulus": {"type": "integer"},
        "replacement": {"type": "string"},
        "action": {"type": "string"},
    },
}

# Custom resources kubernetes-validate has no schema for: each is checked by its own test.
CUSTOM_KINDS = {"ServiceMonitor", "PrometheusRule"}

SERVICE_MONITOR_SCHEMA = {
    # The subset of monitoring.coreos.com/v1 ServiceMonitor this chart uses, closed like the strict
    # Kubernetes schemas: kubernetes-validate ships no CRD schemas.
    "type": "object",
    "additionalProperties": False,
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": "monitoring.coreos.com/v1"},
        "kind": {"const": "ServiceMonitor"},
        "metadata": {
            "type": "object",
            "additionalProperties": False,
            "required": ["name"],
            "properties": {
                "name": {"type": "string", "pattern": "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"},
                "namespace": {"type": "string"},
                "labels": {"type": "object", "additionalProperties": {"type": "string"}},
            },
        },
        "spec": {
            "type": "object",
            "additionalProperties": False,
            "required": ["selector", "endpoints"],
            "properties": {
                "selector": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {"matchLabels": {"type": "object", "additionalProperties": {"type": "string"}}},
                },
                "namespaceSelector": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {"matchNames": {"type": "array", "items": {"type": "string"}}},
                },
                "endpoints": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["port", "path"],
                        "properties": {
                            "port": {"type": "string"},
                            "path": {"type": "string"},
                            "interval": {"type": "string", "pattern": "^[0-9]+(ms|s|m|h)$"},
                            "scrapeTimeout": {"type": "string", "pattern": "^[0-9]+(ms|s|m|h)$"},
                            "relabelings": {"type": "array", "items": RELABEL_CONFIG_SCHEMA},
                            "metricRelabelings": {"type": "array", "items": RELABEL_CONFIG_SCHEMA},
                        },
                    },
                },
            },
        },
    },
}


def test_every_manifest_passes_kubernetes_validate_strict(rendered, tmp_path):
    """All renderings at once through the kubernetes-validate CLI, for the oldest and newest version.
    ServiceMonitor and PrometheusRule are CRDs the validator has no schema for: their own tests check them."""
    files, expected = [], 0
    for name, objects in rendered.items():
        built_in = [o for o in objects if o["kind"] not in CUSTOM_KINDS]
        path = tmp_path / f"{name}.yaml"
        path.write_text(yaml.safe_dump_all(built_in))
        files.append(str(path))
        expected += len(built_in)
    args = [sys.executable, "-m", "kubernetes_validate", "--strict"]
    for version in KUBE_VERSIONS:
        args += ["-k", version]
    result = subprocess.run(args + files, capture_output=True, text=True)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "WARN" not in output and "ERROR" not in output, output
    passed = [line for line in output.splitlines() if line.startswith("INFO") and " passed " in line]
    assert len(passed) == expected * len(KUBE_VERSIONS), output
    print(f"kubernetes-validate --strict: {expected} objects from {len(files)} renderings passed against "
          f"Kubernetes {' and '.join(KUBE_VERSIONS)}")


def test_kubernetes_validate_rejects_an_unknown_field(rendered, tmp_path):
    """The validator really is strict: a misspelt Deployment field fails it."""
    broken = copy.deepcopy(deployment(rendered["default"]))
    broken["spec"]["template"]["spec"]["containers"][0]["readinessProbes"] = {}
    path = tmp_path / "broken.yaml"
    path.write_text(yaml.safe_dump(broken))
    result = subprocess.run([sys.executable, "-m", "kubernetes_validate", "--strict", "-k", KUBE_VERSIONS[0], str(path)],
                            capture_output=True, text=True)
    assert result.returncode != 0 and "readinessProbes" in result.stdout, result.stdout


def test_service_monitor_scrapes_metrics_of_the_service(rendered):
    objects = rendered["ha"]
    monitor = one(objects, "ServiceMonitor")
    jsonschema.validate(monitor, SERVICE_MONITOR_SCHEMA)
    service = one(objects, "Service")
    selector = monitor["spec"]["selector"]["matchLabels"]
    assert selector.items() <= service["metadata"]["labels"].items()
    endpoint = monitor["spec"]["endpoints"][0]
    assert endpoint["path"] == "/metrics"
    assert endpoint["port"] in {p["name"] for p in service["spec"]["ports"]}
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert monitor["spec"]["namespaceSelector"]["matchNames"] == [NAMESPACE]


def test_optional_resources_are_off_by_default(rendered):
    found = kinds(rendered["default"])
    assert not found & {"Ingress", "ServiceMonitor", "PrometheusRule", "NetworkPolicy", "PersistentVolumeClaim"}
    assert [o["metadata"]["name"] for o in rendered["default"] if o["kind"] == "ConfigMap"] == [FULLNAME]
    assert {"Deployment", "Service", "ConfigMap", "Secret", "ServiceAccount", "HorizontalPodAutoscaler",
            "PodDisruptionBudget", "Pod"} <= found


# --- availability -----------------------------------------------------------------------------


def test_hpa_defaults_are_min_2_max_10_cpu_70(rendered):
    objects = rendered["default"]
    hpa = one(objects, "HorizontalPodAutoscaler")
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": FULLNAME}
    assert hpa["spec"]["minReplicas"] == 2
    assert hpa["spec"]["maxReplicas"] == 10
    assert hpa["spec"]["metrics"] == [
        {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}}}
    ]
    # The HPA owns the replica count; a fixed one would fight it on every upgrade.
    assert "replicas" not in deployment(objects)["spec"]
    assert container(objects)["resources"]["requests"]["cpu"]


def test_hpa_follows_values_and_can_be_replaced_by_a_fixed_count(rendered):
    hpa = one(rendered["ha"], "HorizontalPodAutoscaler")
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (3, 12)
    targets = {m["resource"]["name"]: m["resource"]["target"]["averageUtilization"] for m in hpa["spec"]["metrics"]}
    assert targets == {"cpu": 60, "memory": 80}
    assert "HorizontalPodAutoscaler" not in kinds(rendered["pvc"])
    assert deployment(rendered["pvc"])["spec"]["replicas"] == 3


def test_pdb_keeps_an_instance_up(rendered):
    pdb = one(rendered["default"], "PodDisruptionBudget")
    assert pdb["spec"]["minAvailable"] == 1 and "maxUnavailable" not in pdb["spec"]
    assert pdb["spec"]["selector"]["matchLabels"] == deployment(rendered["default"])["spec"]["selector"]["matchLabels"]
    pdb = one(rendered["ha"], "PodDisruptionBudget")
    assert pdb["spec"]["maxUnavailable"] == 1 and "minAvailable" not in pdb["spec"]


def test_rollout_never_removes_a_serving_instance_first(rendered):
    strategy = deployment(rendered["default"])["spec"]["strategy"]
    assert strategy["rollingUpdate"]["maxUnavailable"] == 0


def test_pods_spread_over_zones_and_nodes(rendered):
    spec = pod_spec(rendered["default"])
    selector = deployment(rendered["default"])["spec"]["selector"]["matchLabels"]
    constraints = {c["topologyKey"]: c for c in spec["topologySpreadConstraints"]}
    assert set(constraints) == {"topology.kubernetes.io/zone", "kubernetes.io/hostname"}
    for c in constraints.values():
        assert c["whenUnsatisfiable"] == "ScheduleAnyway" and c["maxSkew"] == 1
        assert c["labelSelector"]["matchLabels"] == selector
    soft = spec["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"][0]
    assert soft["podAffinityTerm"]["topologyKey"] == "kubernetes.io/hostname"
    assert soft["podAffinityTerm"]["labelSelector"]["matchLabels"] == selector
    assert "requiredDuringSchedulingIgnoredDuringExecution" not in spec["affinity"]["podAntiAffinity"]
    hard = pod_spec(rendered["ha"])["affinity"]["podAntiAffinity"]
    assert list(hard) == ["requiredDuringSchedulingIgnoredDuringExecution"]


@pytest.mark.parametrize("name", VALUES_FILES)
def test_readiness_probes_readyz_and_liveness_and_startup_probe_livez_on_port_8080(rendered, name):
    server = container(rendered[name])
    port = {p["name"]: p["containerPort"] for p in server["ports"]}
    assert port == {"http": 8080}
    # /readyz turns 503 on SIGTERM; /livez never does (a liveness failure mid-drain kills the pod).
    assert server["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert server["livenessProbe"]["httpGet"] == {"path": "/livez", "port": "http"}
    assert server["startupProbe"]["httpGet"] == {"path": "/livez", "port": "http"}
    # The endpoint must be dropped while the instance still serves (drain_delay).
    readiness = server["readinessProbe"]
    drain = seconds(server_config(rendered[name])["shutdown"]["drain_delay"])
    assert readiness["periodSeconds"] * readiness["failureThreshold"] <= drain


def test_service_targets_the_http_port_without_affinity(rendered):
    service = one(rendered["default"], "Service")
    assert service["spec"]["ports"] == [{"name": "http", "port": 8080, "targetPort": "http", "protocol": "TCP"}]
    assert service["spec"]["sessionAffinity"] == "None"
    assert service["spec"]["selector"] == deployment(rendered["default"])["spec"]["selector"]["matchLabels"]


# --- termination ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", VALUES_FILES)
def test_termination_grace_covers_drain_and_grace(rendered, name):
    objects = rendered[name]
    shutdown = server_config(objects)["shutdown"]
    needed = seconds(shutdown["drain_delay"]) + seconds(shutdown["grace"])
    server = container(objects)
    pre_stop = server.get("lifecycle", {}).get("preStop", {}).get("sleep", {}).get("seconds", 0)
    assert pod_spec(objects)["terminationGracePeriodSeconds"] >= needed + pre_stop + 5


@pytest.mark.parametrize(
    "drain,grace,expected",
    [("5s", "25s", 40), ("500ms", "2m", 131), ("1m", "30s", 100), ("0s", "1h", 3610)],
)
def test_termination_grace_is_derived_from_the_server_durations(chart, drain, grace, expected):
    objects = render(chart, {"config": {"shutdown": {"drain_delay": drain, "grace": grace}}})
    assert pod_spec(objects)["terminationGracePeriodSeconds"] == expected


def test_prestop_is_the_kubernetes_sleep_action_never_a_shell(rendered):
    assert "lifecycle" not in container(rendered["default"])
    ha = container(rendered["ha"])
    assert ha["lifecycle"] == {"preStop": {"sleep": {"seconds": 3}}}
    # 3 s sleep + 10 s drain + 60 s grace + 5 s margin
    assert pod_spec(rendered["ha"])["terminationGracePeriodSeconds"] == 78
    for objects in rendered.values():
        assert "exec" not in json.dumps(pod_spec(objects))


# --- auth files and config --------------------------------------------------------------------


# The renderings whose auth files come from a Secret (auth-sync's come from object storage: below).
SECRET_AUTH_FILES = [n for n in VALUES_FILES if values_file(n).get("auth", {}).get("source", "secret") == "secret"]


def test_both_auth_sources_are_rendered():
    assert "auth-sync" in VALUES_FILES and "auth-sync" not in SECRET_AUTH_FILES and "default" in SECRET_AUTH_FILES


@pytest.mark.parametrize("name", SECRET_AUTH_FILES)
def test_auth_secret_is_mounted_as_a_directory_at_app_config(rendered, name):
    objects = rendered[name]
    server = container(objects)
    mount = mounts(server)["/app/config"]
    assert mount["readOnly"] is True and "subPath" not in mount
    volume = volumes(objects)[mount["name"]]
    assert "secret" in volume and "configMap" not in volume
    files = {item["path"] for item in volume["secret"]["items"]}
    auth = server_config(objects)["auth"]
    for key in ("tokens_file", "users_file", "session_secret_file"):
        if key in auth:
            assert auth[key].removeprefix("/app/config/") in files, key
    assert "tokens_file" in auth


def test_existing_secret_is_used_and_no_secret_is_rendered(rendered):
    objects = rendered["existing-secret"]
    assert "Secret" not in kinds(objects)
    volume = volumes(objects)["auth"]["secret"]
    assert volume["secretName"] == "mcp-auth"
    assert {i["key"] for i in volume["items"]} == {"api-tokens.yaml", "people.yaml", "session-key"}
    auth = server_config(objects)["auth"]
    assert auth["tokens_file"] == "/app/config/api-tokens.yaml"
    assert auth["users_file"] == "/app/config/people.yaml"
    assert auth["session_secret_file"] == "/app/config/session-key"
    assert pod_spec(objects)["serviceAccountName"] == "mcp-runner"
    assert "ServiceAccount" not in kinds(objects)


@pytest.mark.parametrize("name", VALUES_FILES)
def test_no_configmap_holds_tokens_users_or_keys(rendered, name):
    auth = merge(yaml.safe_load((CHART_DIR / "values.yaml").read_text()), values_file(name))["auth"]
    secrets = re.findall(r"[0-9a-f]{64}|\$2b\$[^\"]+", auth["tokensYaml"] + auth["usersYaml"]) + [auth["sessionKey"]]
    configmaps = [o for o in rendered[name] if o["kind"] == "ConfigMap"]
    assert configmaps
    for configmap in configmaps:
        if configmap["metadata"]["name"] == FULLNAME:
            assert set(configmap["data"]) <= {"config.yaml", "sync.yaml"}
        else:
            assert configmap["metadata"]["name"] == f"{FULLNAME}-dashboard"
        text = "\n".join(configmap["data"].values())
        assert not re.search(r"sha256:[0-9a-f]{64}|password_hash|^\s*-?\s*hash:", text, re.M)
        for secret in filter(None, secrets):
            assert secret not in text


def test_chart_managed_secret_holds_the_auth_files(rendered):
    secret = one(rendered["ha"], "Secret")
    files = {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}
    assert set(files) == {"tokens.yaml", "users.yaml", "session.key"}
    assert "sha256:5e884898" in files["tokens.yaml"]
    assert yaml.safe_load(files["users.yaml"])["users"][0]["username"] == "alice"


def test_server_runs_with_the_config_file_and_pod_name_as_instance_id(rendered):
    objects = rendered["default"]
    server = container(objects)
    assert server["command"] == ["/usr/local/bin/postgres-mcp"]
    assert server["args"] == ["serve", "--config", "/app/etc/config.yaml"]
    env = {e["name"]: e for e in server["env"]}
    assert env["PGMCP_INSTANCE_ID"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    etc = mounts(server)["/app/etc"]
    assert etc["readOnly"] is True
    assert volumes(objects)[etc["name"]]["configMap"]["name"] == FULLNAME


def default_config_keys() -> set[str]:
    """Leaf keys of the server's embedded defaults: the server rejects any other key."""
    tree = yaml.safe_load((REPO / "server" / "default-config.yaml").read_text())
    keys = set()

    def walk(node, prefix):
        for key, value in node.items():
            if isinstance(value, dict):
                walk(value, f"{prefix}{key}.")
            else:
                keys.add(f"{prefix}{key}")

    walk(tree, "")
    return keys


@pytest.mark.parametrize("name", VALUES_FILES)
def test_rendered_config_uses_only_keys_the_server_knows(rendered, name):
    known = default_config_keys()
    rendered_keys = set()

    def walk(node, prefix):
        for key, value in node.items():
            if isinstance(value, dict):
                walk(value, f"{prefix}{key}.")
            else:
                rendered_keys.add(f"{prefix}{key}")

    walk(server_config(rendered[name]), "")
    assert rendered_keys <= known, rendered_keys - known
    # The server also refuses PGMCP_* variables that name no key.
    env_keys = {"PGMCP_" + key.replace(".", "_").upper() for key in known}
    for env in container(rendered[name])["env"]:
        if env["name"].startswith("PGMCP_"):
            assert env["name"] in env_keys


def test_config_watches_in_auto_mode_and_accepts_the_service_names(rendered):
    config = server_config(rendered["default"])
    assert config["watch"]["mode"] == "auto"
    assert config["listen"] == "0.0.0.0:8080"
    assert "instance_id" not in config  # PGMCP_INSTANCE_ID from the pod name
    assert {FULLNAME, f"{FULLNAME}.{NAMESPACE}.svc", f"{FULLNAME}.{NAMESPACE}.svc.cluster.local"} <= set(
        config["http"]["allowed_hosts"]
    )


def test_ingress_hosts_are_allowed_and_metrics_stay_private(rendered):
    objects = rendered["ha"]
    ingress = one(objects, "Ingress")
    paths = [p for rule in ingress["spec"]["rules"] for p in rule["http"]["paths"]]
    assert {p["path"] for p in paths} == {"/mcp", "/api/login", "/health"}
    assert all(p["backend"]["service"] == {"name": FULLNAME, "port": {"name": "http"}} for p in paths)
    assert ingress["spec"]["tls"] == [{"secretName": "mcp-tls", "hosts": ["mcp.example.com"]}]
    config = server_config(objects)
    assert {"mcp.example.com", "mcp.internal.example.com"} <= set(config["http"]["allowed_hosts"])
    assert config["public_url"] == "https://mcp.example.com"


INGRESS_ON = {"ingress": {"enabled": True, "className": "nginx",
                          "tls": [{"secretName": "mcp-tls", "hosts": ["mcp.example.com"]}]}}


def test_an_ingress_without_trusted_proxies_is_refused_with_what_to_set(chart):
    # Behind the ingress every client has the controller's address: one client's bad tokens would
    # lock every client's password logins out. The chart says what to set instead of rendering that.
    with pytest.raises(helm.HelmError) as refused:
        render_raw(chart, INGRESS_ON)
    message = str(refused.value)
    assert "config.auth.trusted_proxies" in message and "pod CIDR" in message, message
    with pytest.raises(helm.HelmError):
        render_raw(chart, merge(INGRESS_ON, {"config": {"auth": {"trusted_proxies": []}}}))


def test_an_ingress_with_the_controllers_pod_cidr_renders_and_trusts_it(chart):
    values = merge(INGRESS_ON, {"config": {"auth": {"trusted_proxies": ["10.244.0.0/16"]}}})
    objects = render(chart, values)
    assert one(objects, "Ingress")["spec"]["ingressClassName"] == "nginx"
    assert server_config(objects)["auth"]["trusted_proxies"] == ["10.244.0.0/16"]
    report = helm.lint(CHART_DIR, values, strict=True, namespace=NAMESPACE, kube_version="v1.30.0")
    assert not report["errors"], json.dumps(report, indent=2)


def test_without_an_ingress_trusted_proxies_may_stay_empty(rendered):
    assert server_config(rendered["default"])["auth"]["trusted_proxies"] == []


def test_database_url_comes_from_a_secret_file(rendered):
    objects = rendered["ha"]
    assert server_config(objects)["database"] == {"url_file": "/app/secrets/database/url"}
    mount = mounts(container(objects))["/app/secrets/database"]
    assert mount["readOnly"] is True
    volume = volumes(objects)[mount["name"]]["secret"]
    assert volume["secretName"] == "mcp-database"
    assert volume["items"] == [{"key": "DATABASE_URL", "path": "url"}]
    assert "database" not in server_config(rendered["default"])


def test_database_tunables_go_to_the_config_file(chart):
    tunables = {"pool_size": 8, "statement_timeout": "30s", "max_result_size": "1MiB"}
    objects = render(chart, {"database": {"existingSecret": "db"}, "config": {"database": tunables}})
    assert server_config(objects)["database"] == {**tunables, "url_file": "/app/secrets/database/url"}
    known = default_config_keys()
    if "database.pool_size" in known:  # the server's database settings have landed
        assert {f"database.{key}" for key in tunables} <= known
    with pytest.raises(helm.HelmValuesError):
        render_raw(chart, {"config": {"database": {"url": "postgres://user:secret@db/x"}}})


def checksums(objects: list[dict]) -> dict[str, str]:
    return deployment(objects)["spec"]["template"]["metadata"]["annotations"]


def test_checksum_config_changes_when_a_config_value_changes(chart):
    base = checksums(render(chart, {}))
    changed = checksums(render(chart, {"config": {"log": {"level": "debug"}}}))
    assert changed["checksum/config"] != base["checksum/config"]
    assert changed["checksum/secret"] == base["checksum/secret"]
    unrelated = checksums(render(chart, {"podAnnotations": {"team": "search"}}))
    assert unrelated["checksum/config"] == base["checksum/config"]
    assert re.fullmatch(r"[0-9a-f]{64}", base["checksum/config"])


def test_checksum_secret_changes_when_the_tokens_change(chart):
    base = checksums(render(chart, {}))
    changed = checksums(render(chart, {"auth": {"tokensYaml": "tokens:\n  - name: a\n    hash: \"sha256:" + "ab" * 32 + "\"\n"}}))
    assert changed["checksum/secret"] != base["checksum/secret"]
    assert changed["checksum/config"] == base["checksum/config"]


# --- knowledge base ---------------------------------------------------------------------------


def test_sync_runs_an_init_container_and_a_sidecar_sharing_app_data(rendered):
    objects = rendered["sync-sidecar"]
    spec = pod_spec(objects)
    init = container(objects, "sync-init")
    sidecar = container(objects, "sync")
    # A native sidecar: an init container that keeps running (restartPolicy Always), after sync-init.
    assert [c["name"] for c in spec["initContainers"]] == ["sync-init", "sync"]
    assert sidecar["restartPolicy"] == "Always" and "restartPolicy" not in init
    assert [c["name"] for c in spec["containers"]] == ["server"]
    assert init["args"] == ["sync", "--manifest", "/app/etc/sync.yaml", "--once", "--keep-local"]
    assert sidecar["args"] == ["sync", "--manifest", "/app/etc/sync.yaml", "--interval", "60s",
                               "--metrics-listen", "0.0.0.0:9464"]
    server = container(objects)
    data = mounts(server)["/app/data"]
    assert data["readOnly"] is True
    assert "emptyDir" in volumes(objects)[data["name"]]
    for c in (init, sidecar):
        assert c["image"] == server["image"]
        assert mounts(c)["/app/data"]["name"] == data["name"] and not mounts(c)["/app/data"].get("readOnly")
        assert mounts(c)["/app/etc"]["readOnly"] is True
        assert {"name": "AWS_REGION", "value": "eu-west-1"} in c["env"]
        assert c["envFrom"] == [{"secretRef": {"name": "kb-sync-aws"}}]
    configmap = one(objects, "ConfigMap")
    manifest = yaml.safe_load(configmap["data"]["sync.yaml"])
    assert manifest == {"items": [
        {"source": "s3://example-kb-bucket/prod/kb.db", "dest": "/app/data/kb.db",
         "sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"},
        {"source": "s3://example-kb-bucket/prod/extra.db", "dest": "/app/data/extra.db"},
    ]}
    assert server_config(objects)["kb"]["path"] == "/app/data/kb.db"
    account = one(objects, "ServiceAccount")
    assert account["metadata"]["annotations"]["eks.amazonaws.com/role-arn"].startswith("arn:aws:iam::")
    # kb.db only: the auth files still come from the Secret.
    assert "secret" in volumes(objects)[mounts(server)["/app/config"]["name"]]
    assert "/app/config" not in mounts(sidecar)


# --- auth files from object storage -------------------------------------------------------------


def test_auth_sync_pulls_the_auth_files_into_an_empty_dir_the_server_mounts_read_only(rendered):
    objects = rendered["auth-sync"]
    server, init, sidecar = container(objects), container(objects, "sync-init"), container(objects, "sync")
    auth = mounts(server)["/app/config"]
    assert auth["readOnly"] is True
    volume = volumes(objects)[auth["name"]]
    assert volume == {"name": auth["name"], "emptyDir": {"sizeLimit": "16Mi"}}
    for c in (init, sidecar):
        # The sync containers are the only writers, as uid 10001 (fsGroup makes the emptyDir theirs).
        assert mounts(c)["/app/config"]["name"] == auth["name"] and not mounts(c)["/app/config"].get("readOnly")
        assert mounts(c)["/app/data"]["name"] == mounts(server)["/app/data"]["name"]
        assert {"name": "AWS_ENDPOINT_URL", "value": "http://minio.storage.svc:9000"} in c["env"]
        assert c["envFrom"] == [{"secretRef": {"name": "mcp-sync-s3"}}]
    # One manifest for kb.db and the auth files, kinds given (the key names need not say them).
    manifest = yaml.safe_load(one(objects, "ConfigMap")["data"]["sync.yaml"])
    assert manifest == {"items": [
        {"source": "s3://example-kb-bucket/prod/kb.db", "dest": "/app/data/kb.db"},
        {"source": "s3://example-auth-bucket/prod/tokens.yaml", "dest": "/app/config/api-tokens.yaml", "kind": "tokens"},
        {"source": "s3://example-auth-bucket/prod/users.yaml", "dest": "/app/config/users.yaml", "kind": "users"},
        {"source": "s3://example-auth-bucket/prod/session.key", "dest": "/app/config/session.key",
         "kind": "session-key"},
    ]}
    # The server reads the files where the sync containers write them.
    config = server_config(objects)["auth"]
    dests = {item["dest"] for item in manifest["items"]}
    for key in ("tokens_file", "users_file", "session_secret_file"):
        assert config[key] in dests, key
    assert server_config(objects)["watch"]["mode"] == "auto"


def test_auth_sync_and_the_secret_are_exclusive(rendered):
    objects = rendered["auth-sync"]
    assert "Secret" not in kinds(objects)
    assert not any("secret" in v for v in volumes(objects).values())
    annotations = deployment(objects)["spec"]["template"]["metadata"]["annotations"]
    assert "checksum/secret" not in annotations and "checksum/config" in annotations


def test_auth_sync_without_login_pulls_only_tokens(chart):
    objects = render(chart, {"auth": {"source": "sync", "sync": {"tokens": "s3://b/mcp/tokens.yaml"}}})
    manifest = yaml.safe_load(one(objects, "ConfigMap")["data"]["sync.yaml"])
    assert manifest == {"items": [{"source": "s3://b/mcp/tokens.yaml", "dest": "/app/config/tokens.yaml",
                                   "kind": "tokens"}]}
    assert "users_file" not in server_config(objects)["auth"]
    assert "/app/data" not in mounts(container(objects, "sync"))


def test_auth_sync_allow_empty_marks_the_tokens_and_users_items_only(chart):
    values = merge(values_file("auth-sync"), {"auth": {"sync": {"allowEmpty": True}}})
    manifest = yaml.safe_load(one(render(chart, values), "ConfigMap")["data"]["sync.yaml"])
    flagged = {item["kind"]: item.get("allow_empty", False) for item in manifest["items"] if "kind" in item}
    assert flagged == {"tokens": True, "users": True, "session-key": False}


def test_the_sync_sidecar_serves_metrics_and_health_on_a_named_port(rendered):
    objects = rendered["auth-sync"]
    sidecar = container(objects, "sync")
    args = sidecar["args"]
    assert args[args.index("--metrics-listen") + 1] == "0.0.0.0:9464"
    assert args[args.index("--stale-after") + 1] == "5m"
    assert sidecar["ports"] == [{"name": "sync-metrics", "containerPort": 9464, "protocol": "TCP"}]
    # Liveness only: /health stays 200 while the loop turns (also when stale); a readiness probe on
    # it would take serving pods out of the Service for a store outage.
    assert sidecar["livenessProbe"]["httpGet"] == {"path": "/health", "port": "sync-metrics"}
    assert "readinessProbe" not in sidecar
    service = one(objects, "Service")
    assert {"name": "sync-metrics", "port": 9464, "targetPort": "sync-metrics", "protocol": "TCP"} in service["spec"]["ports"]
    monitor = one(objects, "ServiceMonitor")
    jsonschema.validate(monitor, SERVICE_MONITOR_SCHEMA)
    endpoints = {e["port"]: e for e in monitor["spec"]["endpoints"]}
    assert endpoints["sync-metrics"]["path"] == "/metrics" and endpoints["http"]["path"] == "/metrics"


def test_without_sync_there_is_no_sync_port_or_manifest(rendered):
    for name in ("default", "ha", "pvc", "download", "existing-secret"):
        objects = rendered[name]
        assert [p["name"] for p in one(objects, "Service")["spec"]["ports"]] == ["http"], name
        assert "sync.yaml" not in one(objects, "ConfigMap")["data"], name
        names = {c["name"] for c in pod_spec(objects)["containers"]}
        assert names == {"server"}, name
    monitor = one(rendered["ha"], "ServiceMonitor")
    assert [e["port"] for e in monitor["spec"]["endpoints"]] == ["http"]


def test_download_uses_the_server_image_to_fetch_verify_and_rename(rendered):
    objects = rendered["download"]
    init = container(objects, "kb-download")
    assert init["image"] == container(objects)["image"]
    assert init["command"] == ["/usr/local/bin/postgres-mcp"]
    assert init["args"] == [
        "sync", "--source", "https://downloads.example.com/kb/kb-2026-01.db", "--dest", "/app/data/kb.db", "--once",
        "--sha256", "2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae",
    ]
    assert server_config(objects)["kb"]["path"] == "/app/data/kb.db"
    assert "emptyDir" in volumes(objects)["data"]
    assert mounts(container(objects))["/app/data"]["readOnly"] is True
    assert [c["name"] for c in pod_spec(objects)["containers"]] == ["server"]


def test_download_without_sha256_omits_the_flag(chart):
    objects = render(chart, {"kb": {"source": "download", "download": {"url": "https://x.example.com/kb.db"}}})
    assert "--sha256" not in container(objects, "kb-download")["args"]


def test_pvc_is_created_and_mounted_read_only(rendered):
    objects = rendered["pvc"]
    claim = one(objects, "PersistentVolumeClaim")
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]
    assert claim["spec"]["resources"]["requests"]["storage"] == "5Gi"
    assert claim["spec"]["storageClassName"] == "efs-sc"
    assert claim["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    data = mounts(container(objects))["/app/data"]
    assert data["readOnly"] is True
    assert volumes(objects)[data["name"]]["persistentVolumeClaim"] == {"claimName": claim["metadata"]["name"], "readOnly": True}
    assert server_config(objects)["kb"]["path"] == "/app/data/docs.db"
    assert server_config(objects)["watch"]["mode"] == "poll"
    assert "initContainers" not in pod_spec(objects)


def test_existing_pvc_is_mounted_and_none_is_created(chart):
    objects = render(chart, {"kb": {"source": "pvc", "pvc": {"existingClaim": "shared-docs"}}})
    assert "PersistentVolumeClaim" not in kinds(objects)
    assert volumes(objects)["data"]["persistentVolumeClaim"]["claimName"] == "shared-docs"


def test_no_knowledge_base_by_default(rendered):
    objects = rendered["default"]
    assert "path" not in server_config(objects)["kb"]
    assert "/app/data" not in mounts(container(objects))
    assert "initContainers" not in pod_spec(objects)


# --- security ---------------------------------------------------------------------------------


def all_pod_specs(objects: list[dict]) -> list[dict]:
    specs = [pod_spec(objects)]
    specs += [o["spec"] for o in objects if o["kind"] == "Pod"]
    return specs


@pytest.mark.parametrize("name", VALUES_FILES)
def test_every_container_is_non_root_read_only_without_capabilities(rendered, name):
    checked = 0
    for spec in all_pod_specs(rendered[name]):
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert spec["securityContext"]["runAsUser"] == UID
        assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        assert spec["automountServiceAccountToken"] is False
        for c in spec["containers"] + spec.get("initContainers", []):
            sc = c["securityContext"]
            assert sc["runAsNonRoot"] is True and sc["runAsUser"] == UID, c["name"]
            assert sc["readOnlyRootFilesystem"] is True, c["name"]
            assert sc["allowPrivilegeEscalation"] is False, c["name"]
            assert sc["capabilities"] == {"drop": ["ALL"]}, c["name"]
            assert sc["seccompProfile"] == {"type": "RuntimeDefault"}, c["name"]
            assert c["resources"]["limits"]["memory"], c["name"]
            checked += 1
    assert checked >= 2


@pytest.mark.parametrize("name", VALUES_FILES)
def test_tmp_is_a_writable_empty_dir(rendered, name):
    objects = rendered[name]
    tmp = mounts(container(objects))["/tmp"]
    assert not tmp.get("readOnly")
    assert volumes(objects)[tmp["name"]]["emptyDir"]["sizeLimit"] == "1Gi"
    assert pod_spec(objects)["securityContext"]["fsGroup"] == UID


# --- helm test, NOTES, documentation ----------------------------------------------------------


def test_helm_test_hook_calls_health_with_the_server_binary(rendered):
    objects = rendered["default"]
    hook = one(objects, "Pod")
    assert hook["metadata"]["annotations"]["helm.sh/hook"] == "test"
    (probe,) = hook["spec"]["containers"]
    assert probe["image"] == container(objects)["image"]
    assert probe["command"] == ["/usr/local/bin/postgres-mcp"]
    assert probe["args"] == ["healthcheck", "--address", f"{FULLNAME}.{NAMESPACE}.svc:8080", "--timeout", "5",
                             "--path", "/health"]
    assert hook["spec"]["restartPolicy"] == "Never"
    # The hook pod must never be counted as a server instance (Service, PDB, anti-affinity).
    selector = deployment(objects)["spec"]["selector"]["matchLabels"]
    assert not selector.items() <= hook["metadata"]["labels"].items()


def server_cli_source() -> str:
    src = REPO / "server" / "src"
    files = [src / "main.rs", *sorted((src / "cli").glob("*.rs")), *sorted((src / "sync").glob("*.rs"))]
    return "\n".join(p.read_text() for p in files if p.exists())


def test_healthcheck_flags_match_the_server_cli():
    """The hook and nothing else tells whether `healthcheck --address/--timeout/--path` still exist."""
    source = server_cli_source()
    at = source.find("Healthcheck")
    assert at >= 0, "the healthcheck subcommand is gone from server/src/cli/"
    block = source[at:at + 1200]
    assert re.search(r"\baddress\b", block) and re.search(r"\btimeout\b", block)
    assert re.search(r"\bpath\b", block) and '"/health"' in block


def test_probe_paths_are_routes_of_the_server():
    """The probes name paths the chart cannot check against a running server: the route table must have them."""
    routes = (REPO / "server" / "src" / "app.rs").read_text()
    for path in ("/livez", "/readyz"):
        assert f'.at("{path}"' in routes, f"{path} is not routed in server/src/app.rs"


def test_sync_flags_match_the_server_cli():
    """The init containers and the sidecar call `postgres-mcp sync` with these flags."""
    source = server_cli_source()
    if not re.search(r"\bSync\b", source):
        pytest.skip("`postgres-mcp sync` is not in server/src yet: flags cannot be cross-checked")
    for flag in ("manifest", "once", "interval", "source", "dest", "sha256"):
        assert re.search(rf"\b{flag}\b", source), f"sync has no --{flag}"
    sync_cli = (REPO / "server" / "src" / "cli" / "sync.rs").read_text()
    for flag in ("keep_local", "metrics_listen", "stale_after"):
        assert re.search(rf"pub {flag}:", sync_cli), f"sync has no --{flag.replace('_', '-')}"


def test_notes_tell_how_to_reach_the_service_and_create_a_token(chart):
    notes = render_raw(chart, values_file("ha"))["postgres-mcp/templates/NOTES.txt"]
    assert f"port-forward svc/{FULLNAME}" in notes
    assert "https://mcp.example.com/mcp" in notes
    assert "postgres-mcp token create --file tokens.yaml" in notes
    assert "helm test demo" in notes
    notes = render_raw(chart, values_file("existing-secret"))["postgres-mcp/templates/NOTES.txt"]
    assert "patch secret mcp-auth --type merge" in notes and '{\\"api-tokens.yaml\\":' in notes


def value_paths(node, prefix=""):
    for key, value in node.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            yield from value_paths(value, f"{path}.")
        else:
            yield path


def test_readme_documents_every_value():
    """The README's values table names every value (or the block holding it), and nothing else."""
    readme = (CHART_DIR / "README.md").read_text()
    table = readme.split("\n## Values\n", 1)[1].split("\n## ", 1)[0]
    documented = set(re.findall(r"^\| `([^`]+)` \|", table, re.M))
    values = yaml.safe_load((CHART_DIR / "values.yaml").read_text())
    paths = set(value_paths(values))
    ancestors = {".".join(p.split(".")[:n]) for p in paths for n in range(1, p.count(".") + 1)}
    missing = [p for p in sorted(paths) if not any(a in documented for a in ancestors | {p} if p == a or p.startswith(a + "."))]
    assert not missing
    stale = sorted(documented - paths - ancestors)
    assert not stale
    # The default column shows what values.yaml says.
    wrong = []
    for key, default in re.findall(r"^\| `([^`]+)` \| `(.*?)` \|", table, re.M):
        value = values
        for part in key.split("."):
            value = value[part]
        shown = value.strip().replace("\n", " ") if isinstance(value, str) and "\n" in value else json.dumps(value)
        if default != shown:
            wrong.append((key, default, shown))
    assert not wrong


def test_values_yaml_comments_every_key():
    """Each leaf key has a comment above it, unless a `# --` comment above an ancestor documents the
    whole block (resources, ingress.hosts ...)."""
    lines = (CHART_DIR / "values.yaml").read_text().splitlines()
    undocumented, block = [], None
    for index, line in enumerate(lines):
        match = re.match(r"^( *)([A-Za-z_][\w-]*):(.*)$", line)
        if not match:
            continue
        indent, key, rest = len(match.group(1)), match.group(2), match.group(3).strip()
        if block is not None and indent > block:
            continue
        block = None
        comment = []
        above = index - 1
        while above >= 0 and lines[above].strip().startswith("#"):
            comment.insert(0, lines[above].strip())
            above -= 1
        if rest[:1] in ("|", ">"):  # a block scalar: its lines are text, not keys
            block = indent
        if rest[:1] in ("|", ">") and not comment:
            undocumented.append(key)
        elif not rest:  # a parent
            if comment and comment[0].startswith("# --"):
                block = indent
        elif not comment:
            undocumented.append(key)
    assert not undocumented


# --- extension points, network policy, scaling behaviour, TLS -----------------------------------

EXTENDED = {
    "image": {"digest": "sha256:" + "ab" * 32},
    "commonLabels": {"team": "search", "cost-center": "42"},
    "podAnnotations": {"example.com/scrape": "true"},
    "extraEnv": [{"name": "PGMCP_LOG_LEVEL", "value": "debug"},
                 {"name": "HTTPS_PROXY", "valueFrom": {"secretKeyRef": {"name": "proxy", "key": "url"}}}],
    "extraVolumes": [{"name": "rds-ca", "configMap": {"name": "rds-ca-bundle"}}],
    "extraVolumeMounts": [{"name": "rds-ca", "mountPath": "/app/ca", "readOnly": True}],
    "extraContainers": [{
        "name": "log-shipper", "image": "registry.example.com/shipper:1.2",
        "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}, "limits": {"memory": "64Mi"}},
        "securityContext": {"runAsNonRoot": True, "runAsUser": UID, "runAsGroup": UID, "readOnlyRootFilesystem": True,
                            "allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]},
                            "seccompProfile": {"type": "RuntimeDefault"}},
    }],
    "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
        {"matchExpressions": [{"key": "node.example.com/pool", "operator": "In", "values": ["mcp"]}]}]}}},
    "topologySpreadConstraints": [{"maxSkew": 2, "topologyKey": "topology.kubernetes.io/zone",
                                   "whenUnsatisfiable": "DoNotSchedule",
                                   "labelSelector": {"matchLabels": {"app.kubernetes.io/name": "postgres-mcp"}}}],
}


@pytest.fixture(scope="session")
def extended(chart) -> list[dict]:
    return render(chart, EXTENDED)


def test_extension_points_reach_the_pod(extended):
    spec = pod_spec(extended)
    server = container(extended)
    assert server["image"] == "postgres-mcp@sha256:" + "ab" * 32
    env = [e["name"] for e in server["env"]]
    assert env == ["PGMCP_INSTANCE_ID", "PGMCP_LOG_LEVEL", "HTTPS_PROXY"]  # the chart's first
    assert mounts(server)["/app/ca"] == {"name": "rds-ca", "mountPath": "/app/ca", "readOnly": True}
    assert volumes(extended)["rds-ca"]["configMap"] == {"name": "rds-ca-bundle"}
    assert [c["name"] for c in spec["containers"]] == ["server", "log-shipper"]
    # The overrides replace the presets instead of merging into them.
    assert spec["affinity"] == EXTENDED["affinity"]
    assert spec["topologySpreadConstraints"] == EXTENDED["topologySpreadConstraints"]
    assert deployment(extended)["spec"]["template"]["metadata"]["annotations"]["example.com/scrape"] == "true"


def test_common_labels_are_on_every_object_but_never_in_the_selector(extended):
    for o in extended:
        labels = o["metadata"]["labels"]
        if o["kind"] == "Pod":  # the helm test hook keeps its own labels
            continue
        assert labels["team"] == "search" and labels["cost-center"] == "42", o["kind"]
    assert "team" in deployment(extended)["spec"]["template"]["metadata"]["labels"]
    assert "team" not in deployment(extended)["spec"]["selector"]["matchLabels"]


def test_common_labels_cannot_replace_the_chart_labels(chart):
    objects = render(chart, {"commonLabels": {"app.kubernetes.io/name": "other", "team": "a"}})
    labels = deployment(objects)["metadata"]["labels"]
    assert labels["app.kubernetes.io/name"] == "postgres-mcp" and labels["team"] == "a"


def test_extended_rendering_passes_kubernetes_validate_strict(extended, tmp_path):
    path = tmp_path / "extended.yaml"
    built_in = [o for o in extended if o["kind"] not in CUSTOM_KINDS]
    path.write_text(yaml.safe_dump_all(built_in))
    args = [sys.executable, "-m", "kubernetes_validate", "--strict"]
    for version in KUBE_VERSIONS:
        args += ["-k", version]
    result = subprocess.run(args + [str(path)], capture_output=True, text=True)
    assert result.returncode == 0 and "ERROR" not in result.stdout, result.stdout + result.stderr


@pytest.mark.parametrize(
    "values,complaint",
    [
        pytest.param({"extraEnv": [{"name": "X", "vaule": "1"}]}, "additional properties 'vaule'", id="typo-in-extra-env"),
        pytest.param({"extraVolumeMounts": [{"name": "x", "mountPath": "relative"}]}, "/extraVolumeMounts/0/mountPath'",
                     id="relative-mount-path"),
        pytest.param({"extraVolumes": [{"name": "x", "confgMap": {"name": "y"}}]}, "additional properties 'confgMap'",
                     id="typo-in-extra-volume"),
        pytest.param({"extraContainers": [{"name": "x"}]}, "missing property 'image'", id="container-without-image"),
        pytest.param({"extraContainers": [{"name": "x", "image": "y", "envv": []}]}, "additional properties 'envv'",
                     id="typo-in-extra-container"),
        pytest.param({"affinity": {"podAntiAfinity": {}}}, "additional properties 'podAntiAfinity'", id="typo-in-affinity"),
        pytest.param({"image": {"digest": "sha256:abc"}}, "/image/digest'", id="short-digest"),
        pytest.param({"autoscaling": {"behavior": {"scaleDown": {"stabilizationWindowSeconds": 7200}}}},
                     "/autoscaling/behavior/scaleDown/stabilizationWindowSeconds'", id="hpa-window-over-an-hour"),
        pytest.param({"autoscaling": {"behavior": {"scaleUp": {"policies": [{"type": "Nodes", "value": 1, "periodSeconds": 60}]}}}},
                     "/autoscaling/behavior/scaleUp/policies/0/type'", id="hpa-policy-type"),
        pytest.param({"networkPolicy": {"egress": {"database": {"cidrs": ["db.example.com"]}}}},
                     "/networkPolicy/egress/database/cidrs/0'", id="database-cidr-not-a-cidr"),
        pytest.param({"networkPolicy": {"ingress": {"controller": {"namespaceSelecter": {}}}}},
                     "additional properties 'namespaceSelecter'", id="typo-in-network-peer"),
        pytest.param({"metrics": {"serviceMonitor": {"relabelings": [{"sourceLabel": ["a"]}]}}},
                     "additional properties 'sourceLabel'", id="typo-in-relabeling"),
        pytest.param({"metrics": {"prometheusRule": {"rules": {"http5xx": {"ratio": 5}}}}},
                     "/metrics/prometheusRule/rules/http5xx/ratio'", id="error-ratio-above-one"),
        pytest.param({"metrics": {"prometheusRule": {"rules": {"instanceDown": {"severity": "page"}}}}},
                     "/metrics/prometheusRule/rules/instanceDown/severity'", id="unknown-severity"),
        pytest.param({"metrics": {"prometheusRule": {"selector": "job=foo"}}}, "/metrics/prometheusRule/selector'",
                     id="selector-not-promql-matchers"),
        pytest.param({"config": {"trace": {"sample_ratio": 2}}}, "/config/trace/sample_ratio'", id="sample-ratio-above-one"),
        pytest.param({"config": {"trace": {"otlp_endpoint": "otel:4318"}}}, "/config/trace/otlp_endpoint'",
                     id="otlp-endpoint-without-scheme"),
        pytest.param({"ingress": {"allowWithoutTls": True}}, "additional properties 'allowWithoutTls'", id="typo-in-allow-tls"),
    ],
)
def test_schema_rejects_bad_extension_values(chart, values, complaint):
    with pytest.raises(helm.HelmValuesError) as refused:
        render_raw(chart, values)
    assert complaint in str(refused.value)


def test_hpa_scales_up_fast_and_down_slowly_by_default(rendered):
    behavior = one(rendered["default"], "HorizontalPodAutoscaler")["spec"]["behavior"]
    assert behavior["scaleDown"]["stabilizationWindowSeconds"] == 300
    assert behavior["scaleDown"]["policies"] == [{"type": "Pods", "value": 1, "periodSeconds": 60}]
    assert behavior["scaleUp"]["stabilizationWindowSeconds"] == 0


def test_hpa_behavior_can_be_left_to_kubernetes(chart):
    assert "behavior" not in one(render(chart, {"autoscaling": {"behavior": None}}), "HorizontalPodAutoscaler")["spec"]
    objects = render(chart, {"autoscaling": {"behavior": {"scaleDown": None, "scaleUp": None}}})
    assert "behavior" not in one(objects, "HorizontalPodAutoscaler")["spec"]


@pytest.mark.parametrize(
    "values,has_pdb",
    [
        ({}, True),  # HPA min 2
        ({"autoscaling": {"minReplicas": 1}}, False),
        ({"autoscaling": {"enabled": False}, "replicaCount": 1}, False),
        ({"autoscaling": {"enabled": False}, "replicaCount": 2}, True),
        ({"autoscaling": {"enabled": False}, "replicaCount": 3, "podDisruptionBudget": {"enabled": False}}, False),
    ],
    ids=["hpa-min-2", "hpa-min-1", "one-replica", "two-replicas", "disabled"],
)
def test_pdb_only_when_two_instances_always_run(chart, values, has_pdb):
    assert ("PodDisruptionBudget" in kinds(render(chart, values))) == has_pdb
    notes = render_raw(chart, values)["postgres-mcp/templates/NOTES.txt"]
    assert ("no\nPodDisruptionBudget was created" in notes) == (not has_pdb and values.get("podDisruptionBudget") is None)


def test_an_ingress_without_tls_is_refused_unless_allowed(chart):
    values = {"ingress": {"enabled": True}, "config": {"auth": {"trusted_proxies": ["10.244.0.0/16"]}}}
    with pytest.raises(helm.HelmError) as refused:
        render_raw(chart, values)
    assert "ingress.tls" in str(refused.value) and "ingress.allowWithoutTLS" in str(refused.value)
    objects = render(chart, merge(values, {"ingress": {"allowWithoutTLS": True}}))
    assert "tls" not in one(objects, "Ingress")["spec"]


OAUTH_INGRESS = {
    "ingress": {"enabled": True, "tls": [{"secretName": "mcp-tls", "hosts": ["mcp.example.com"]}],
                "hosts": [{"host": "mcp.example.com", "paths": [{"path": "/mcp", "pathType": "Prefix"}]}]},
    "config": {"public_url": "https://mcp.example.com", "auth": {"trusted_proxies": ["10.244.0.0/16"]}},
}


@pytest.mark.parametrize(
    "mode,extra,paths",
    [
        ("off", {}, {"/mcp"}),
        ("external", {"external": {"issuer": "https://idp.example.com"}},
         {"/mcp", "/.well-known/oauth-protected-resource"}),
        ("builtin", {}, {"/mcp", "/.well-known/oauth-protected-resource", "/.well-known/oauth-authorization-server", "/oauth"}),
    ],
)
def test_oauth_is_written_to_the_config_and_its_paths_routed_by_the_ingress(chart, mode, extra, paths):
    """The MCP authorization flow starts at /.well-known/oauth-protected-resource (RFC 9728) and, with
    the built-in authorization server, goes through its metadata (RFC 8414) and /oauth/*: an Ingress
    routing /mcp alone would leave a client at its first 401."""
    values = merge(OAUTH_INGRESS, {"config": {"auth": {"oauth": {"mode": mode, **extra}}}})
    if mode == "builtin":
        values = merge(values, {"auth": {"login": {"enabled": True}, "sessionKey": "k" * 64}})
    objects = render(chart, values)
    routed = {p["path"] for rule in one(objects, "Ingress")["spec"]["rules"] for p in rule["http"]["paths"]}
    assert routed == paths
    assert server_config(objects)["auth"]["oauth"]["mode"] == mode


def test_the_ingress_routes_only_the_public_port(rendered):
    """Everything routed goes to the Service port `http`; the sync sidecar's metrics port (and any
    internal listener) is on the Service for Prometheus but never behind the Ingress."""
    for name, objects in rendered.items():
        for ingress in (o for o in objects if o["kind"] == "Ingress"):
            for rule in ingress["spec"]["rules"]:
                for path in rule["http"]["paths"]:
                    assert path["backend"]["service"]["port"] == {"name": "http"}, name
                    assert not path["path"].startswith("/metrics"), name


def network_policy(objects: list[dict]) -> dict:
    return one(objects, "NetworkPolicy")


def test_network_policy_lets_in_the_ingress_controller_prometheus_and_helm_test(rendered):
    objects = rendered["ha"]
    policy = network_policy(objects)["spec"]
    assert policy["podSelector"]["matchLabels"] == deployment(objects)["spec"]["selector"]["matchLabels"]
    assert policy["policyTypes"] == ["Ingress", "Egress"]
    public, scrape = policy["ingress"]
    assert public["ports"] == [{"port": "http", "protocol": "TCP"}]
    controller, test_pod = public["from"]
    assert controller["namespaceSelector"]["matchLabels"] == {"kubernetes.io/metadata.name": "ingress-nginx"}
    # The `helm test` pod's own labels are let in (it probes /health through the Service).
    hook = one(objects, "Pod")
    assert test_pod["podSelector"]["matchLabels"].items() <= hook["metadata"]["labels"].items()
    assert scrape["from"][0]["podSelector"]["matchLabels"] == {"app.kubernetes.io/name": "prometheus"}
    assert scrape["ports"] == [{"port": "http", "protocol": "TCP"}]
    # Every port the policy names is a container port of the pod.
    names = {p["name"] for c in pod_spec(objects)["containers"] + pod_spec(objects).get("initContainers", [])
             for p in c.get("ports", [])}
    assert {p["port"] for rule in policy["ingress"] for p in rule["ports"]} <= names


def test_network_policy_egress_allows_dns_the_database_and_the_collector_only(rendered):
    egress = network_policy(rendered["ha"])["spec"]["egress"]
    dns, database, collector = egress
    assert {(p["port"], p["protocol"]) for p in dns["ports"]} == {(53, "UDP"), (53, "TCP")}
    assert dns["to"][0]["podSelector"]["matchLabels"] == {"k8s-app": "kube-dns"}
    assert database == {"to": [{"ipBlock": {"cidr": "10.0.32.0/20"}}], "ports": [{"port": 5432, "protocol": "TCP"}]}
    assert collector["ports"] == [{"port": 4318, "protocol": "TCP"}]


def test_network_policy_with_sync_lets_prometheus_scrape_the_sidecar(rendered):
    policy = network_policy(rendered["auth-sync"])["spec"]
    assert "controller" not in json.dumps(policy["ingress"][0]["from"])  # no ingress in this release
    assert len(policy["ingress"][0]["from"]) == 1  # only the helm test pod
    assert {p["port"] for p in policy["ingress"][1]["ports"]} == {"http", "sync-metrics"}
    dns, minio = policy["egress"]
    assert minio["ports"] == [{"port": 9000, "protocol": "TCP"}]


@pytest.mark.parametrize(
    "values,complaint",
    [
        ({"database": {"existingSecret": "db"}}, "networkPolicy.egress.database.cidrs"),
        ({"kb": {"source": "download", "download": {"url": "https://x.example.com/kb.db"}}}, "networkPolicy.egress.objectStorage.cidrs"),
        ({"auth": {"source": "sync", "sync": {"tokens": "s3://b/tokens.yaml"}}}, "networkPolicy.egress.objectStorage.cidrs"),
        ({"config": {"trace": {"otlp_endpoint": "http://otel:4318"}}}, "networkPolicy.egress.extra"),
    ],
    ids=["database", "kb-download", "auth-sync", "trace-export"],
)
def test_a_restricted_egress_that_cuts_off_a_dependency_is_refused(chart, values, complaint):
    with pytest.raises(helm.HelmError) as refused:
        render_raw(chart, merge({"networkPolicy": {"enabled": True}}, values))
    assert complaint in str(refused.value)
    # Unrestricted egress, or a CIDR for it, renders.
    render_raw(chart, merge({"networkPolicy": {"enabled": True, "egress": {"restrict": False}}}, values))


def test_network_policy_object_storage_cidrs_open_its_ports(chart):
    values = {"networkPolicy": {"enabled": True, "egress": {"objectStorage": {"cidrs": ["0.0.0.0/0"]}}},
              "kb": {"source": "sync", "sync": {"items": [{"source": "s3://b/kb.db"}]}}}
    egress = network_policy(render(chart, values))["spec"]["egress"]
    assert egress[1] == {"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}], "ports": [{"port": 443, "protocol": "TCP"}]}


def test_unrestricted_egress_has_no_egress_rules(chart):
    policy = network_policy(render(chart, {"networkPolicy": {"enabled": True, "egress": {"restrict": False}}}))["spec"]
    assert policy["policyTypes"] == ["Ingress"] and "egress" not in policy


def test_trace_settings_reach_the_server_config(rendered):
    trace = server_config(rendered["ha"])["trace"]
    assert trace == {"otlp_endpoint": "http://otel-collector.observability:4318", "sample_ratio": 0.25,
                     "service_name": "postgres-mcp"}
    assert server_config(rendered["default"])["trace"]["otlp_endpoint"] == ""


def test_service_monitor_relabelings_apply_to_every_endpoint(chart):
    values = merge(values_file("auth-sync"), {"metrics": {"serviceMonitor": {
        "relabelings": [{"sourceLabels": ["__meta_kubernetes_pod_node_name"], "targetLabel": "node"}]}}})
    monitor = one(render(chart, values), "ServiceMonitor")
    jsonschema.validate(monitor, SERVICE_MONITOR_SCHEMA)
    endpoints = monitor["spec"]["endpoints"]
    assert [e["port"] for e in endpoints] == ["http", "sync-metrics"]
    assert all(e["relabelings"] == [{"sourceLabels": ["__meta_kubernetes_pod_node_name"], "targetLabel": "node"}]
               for e in endpoints)
    assert all("metricRelabelings" not in e for e in endpoints)


@pytest.mark.parametrize(
    "path,path_type,exposed",
    [("/", "Prefix", "/metrics"), ("/health", "Prefix", "/health/details"), ("/health/", "Prefix", "/health/details"),
     ("/health/details", "Exact", "/health/details"), ("/he", "ImplementationSpecific", "/health/details")],
)
def test_an_ingress_path_covering_an_internal_route_is_refused(chart, path, path_type, exposed):
    """/health/details (counts, errors, versions) and /metrics share port 8080 with the public routes:
    only the Ingress' paths keep them inside the cluster."""
    values = merge(INGRESS_ON, {"config": {"auth": {"trusted_proxies": ["10.244.0.0/16"]}},
                                "ingress": {"hosts": [{"host": "mcp.example.com", "paths": [{"path": path, "pathType": path_type}]}]}})
    with pytest.raises(helm.HelmError) as refused:
        render_raw(chart, values)
    assert f"would expose {exposed}" in str(refused.value)


@pytest.mark.parametrize("path,path_type", [("/health", "Exact"), ("/mcp", "Prefix"), ("/healthz", "Prefix")])
def test_ingress_paths_beside_the_internal_routes_render(chart, path, path_type):
    values = merge(INGRESS_ON, {"config": {"auth": {"trusted_proxies": ["10.244.0.0/16"]}},
                                "ingress": {"hosts": [{"host": "mcp.example.com", "paths": [{"path": path, "pathType": path_type}]}]}})
    assert one(render(chart, values), "Ingress")
