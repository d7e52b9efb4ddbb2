"""The chart's alerts and dashboard, checked by Prometheus' own tool.

The PrometheusRule is rendered by Helm, its groups written to a rule file, and `promtool check rules`
and `promtool test rules` (helm/tests/promtool/alerts.test.yaml: every alert firing and staying quiet)
run on exactly that file. Every query of the Grafana dashboard is wrapped into a rule file and checked
by `promtool check rules` for syntax. That the metric and label names they use exist is checked
against a real scrape of a running server by server/tests/monitoring_queries.rs.

promtool comes from Debian's `prometheus` package (scripts/setup.sh); without it these tests fail,
never skip.
"""

import json
import re
import shutil
import subprocess

import jsonschema
import pytest
import yaml

from test_chart import CHART_DIR, FULLNAME, HERE, NAMESPACE, chart, merge, one, render, rendered  # noqa: F401 (fixtures)

PROMTOOL = shutil.which("promtool")
DASHBOARDS = sorted((CHART_DIR / "dashboards").glob("*.json"))
ALERT_TESTS = HERE / "promtool" / "alerts.test.yaml"

# What alerts.test.yaml was written for (see its header).
ALERT_VALUES = {
    "metrics": {"prometheusRule": {"enabled": True, "alertLabels": {"team": "search"}}},
    "kb": {"source": "sync", "sync": {"items": [{"source": "s3://example-kb-bucket/prod/kb.db"}]}},
    "database": {"existingSecret": "mcp-database"},
}

PROMETHEUS_RULE_SCHEMA = {
    # The subset of monitoring.coreos.com/v1 PrometheusRule the chart uses, closed.
    "type": "object",
    "additionalProperties": False,
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": "monitoring.coreos.com/v1"},
        "kind": {"const": "PrometheusRule"},
        "metadata": {
            "type": "object",
            "additionalProperties": False,
            "required": ["name", "namespace", "labels"],
            "properties": {
                "name": {"type": "string", "pattern": "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"},
                "namespace": {"type": "string"},
                "labels": {"type": "object", "additionalProperties": {"type": "string"}},
            },
        },
        "spec": {
            "type": "object",
            "additionalProperties": False,
            "required": ["groups"],
            "properties": {"groups": {"type": "array", "minItems": 1, "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["name", "rules"],
                "properties": {
                    "name": {"type": "string"},
                    "rules": {"type": "array", "minItems": 1, "items": {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["alert", "expr", "labels", "annotations"],
                        "properties": {
                            "alert": {"type": "string", "pattern": "^PostgresMcp[A-Za-z]+$"},
                            "expr": {"type": "string", "minLength": 1},
                            "for": {"type": "string", "pattern": "^[0-9]+(ms|s|m|h|d|w|y)$"},
                            "labels": {"type": "object", "required": ["severity"],
                                       "additionalProperties": {"type": "string"}},
                            "annotations": {"type": "object", "required": ["summary", "description"],
                                            "additionalProperties": False,
                                            "properties": {"summary": {"type": "string"}, "description": {"type": "string"}}},
                        },
                    }},
                },
            }}},
        },
    },
}


def promtool(*args, cwd=None) -> str:
    assert PROMTOOL, "promtool is not installed (scripts/setup.sh installs Debian's `prometheus` package)"
    result = subprocess.run([PROMTOOL, *args], capture_output=True, text=True, cwd=cwd)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    return output


def alert_rules(objects: list[dict]) -> list[dict]:
    rule = one(objects, "PrometheusRule")
    return [r for group in rule["spec"]["groups"] for r in group["rules"]]


@pytest.fixture(scope="session")
def alerting(chart) -> list[dict]:  # noqa: F811 (the fixture imported above)
    return render(chart, ALERT_VALUES)


# --- alerts ---------------------------------------------------------------------------------------


def test_prometheus_rule_is_well_formed(alerting):
    rule = one(alerting, "PrometheusRule")
    jsonschema.validate(rule, PROMETHEUS_RULE_SCHEMA)
    assert rule["metadata"]["name"] == FULLNAME and rule["metadata"]["namespace"] == NAMESPACE


def test_rendered_rules_pass_promtool_check_and_unit_tests(alerting, tmp_path):
    groups = one(alerting, "PrometheusRule")["spec"]["groups"]
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump({"groups": groups}, sort_keys=False))
    checked = promtool("check", "rules", "rules.yaml", cwd=tmp_path)
    count = sum(len(g["rules"]) for g in groups)
    assert f"SUCCESS: {count} rules found" in checked, checked
    shutil.copy(ALERT_TESTS, tmp_path / ALERT_TESTS.name)
    tested = promtool("test", "rules", ALERT_TESTS.name, cwd=tmp_path)
    assert "SUCCESS" in tested, tested
    print(f"promtool: {count} alerting rules checked, {len(unit_tests())} unit tests passed")


def test_the_unit_tests_notice_a_changed_threshold(chart, tmp_path):  # noqa: F811
    """The promtool tests hold the rendered thresholds: at a 10 % ratio the 9 % case no longer fires."""
    values = merge(ALERT_VALUES, {"metrics": {"prometheusRule": {"rules": {"http5xx": {"ratio": 0.1}}}}})
    groups = one(render(chart, values), "PrometheusRule")["spec"]["groups"]
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump({"groups": groups}, sort_keys=False))
    shutil.copy(ALERT_TESTS, tmp_path / ALERT_TESTS.name)
    result = subprocess.run([PROMTOOL, "test", "rules", ALERT_TESTS.name], capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode != 0 and "PostgresMcpHighErrorRate" in result.stdout + result.stderr


def unit_tests() -> list[dict]:
    return yaml.safe_load(ALERT_TESTS.read_text())["tests"]


def test_every_alert_has_unit_tests_that_fire_it_and_keep_it_quiet(alerting):
    """An alert without a promtool test that fires it, and one where it stays quiet, is untested."""
    fired, quiet = set(), set()
    for case in unit_tests():
        for check in case["alert_rule_test"]:
            (fired if check["exp_alerts"] else quiet).add(check["alertname"])
    names = {r["alert"] for r in alert_rules(alerting)}
    assert names == fired, f"alerts without a firing test: {names - fired}; tests of no alert: {fired - names}"
    assert names <= quiet, f"alerts never shown quiet: {names - quiet}"
    assert len(names) == 11


def test_alerts_cover_what_the_issue_asks_for(alerting):
    exprs = {r["alert"]: r["expr"] for r in alert_rules(alerting)}
    assert "up{" in exprs["PostgresMcpInstanceDown"]
    assert "pgmcp_draining{" in exprs["PostgresMcpDrainingTooLong"]
    assert 'status=~"5.."' in exprs["PostgresMcpHighErrorRate"]
    assert 'outcome="server_error"' in exprs["PostgresMcpJsonRpcServerErrors"]
    assert "pgmcp_reload_error{" in exprs["PostgresMcpReloadRejected"]
    assert "pgmcp_auth_failures_total{" in exprs["PostgresMcpFailedAuthSpike"]
    assert "pgmcp_knowledgebase_built_timestamp_seconds{" in exprs["PostgresMcpKnowledgeBaseStale"]
    assert "pgmcp_database_up{" in exprs["PostgresMcpDatabaseUnavailable"]
    assert "pgmcp_sync_stale{" in exprs["PostgresMcpSyncStale"]


def test_every_expression_selects_this_release_only(alerting):
    selector = f'job="{FULLNAME}",namespace="{NAMESPACE}"'
    for rule in alert_rules(alerting):
        selectors = re.findall(r"\b[a-z_]+\{([^}]*)\}", rule["expr"])
        assert selectors, rule["alert"]
        assert all(s.startswith(selector) for s in selectors), rule


def test_draining_alert_waits_for_the_termination_grace_period(chart):
    values = merge(ALERT_VALUES, {"config": {"shutdown": {"drain_delay": "10s", "grace": "1m"}},
                                  "metrics": {"prometheusRule": {"rules": {"drainingTooLong": {"margin": "5m"}}}}})
    rules = {r["alert"]: r for r in alert_rules(render(chart, values))}
    # 10 s + 60 s + 10 s margin = 80 s of grace period, + 300 s.
    assert rules["PostgresMcpDrainingTooLong"]["for"] == "380s"


def test_alerts_follow_the_release_and_the_thresholds(chart):
    values = merge(ALERT_VALUES, {"metrics": {"prometheusRule": {
        "selector": 'job="mcp",cluster="eu-1"',
        "rules": {"http5xx": {"ratio": 0.01, "for": "2m", "severity": "warning"}},
    }}})
    rules = {r["alert"]: r for r in alert_rules(render(chart, values))}
    rule = rules["PostgresMcpHighErrorRate"]
    assert rule["expr"].count('{job="mcp",cluster="eu-1",') == 2 and rule["expr"].endswith("> 0.01")
    assert rule["for"] == "2m" and rule["labels"]["severity"] == "warning"


def test_alerts_for_absent_parts_are_not_rendered(chart):
    names = {r["alert"] for r in alert_rules(render(chart, {"metrics": {"prometheusRule": {"enabled": True}}}))}
    assert not names & {"PostgresMcpKnowledgeBaseStale", "PostgresMcpDatabaseUnavailable", "PostgresMcpSyncStale"}
    assert "PostgresMcpInstanceDown" in names


def test_the_rule_labels_let_prometheus_select_it(rendered):  # noqa: F811
    rule = one(rendered["ha"], "PrometheusRule")
    assert rule["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert all(r["labels"]["team"] == "search" for r in alert_rules(rendered["ha"]))


# --- dashboard ------------------------------------------------------------------------------------


def dashboard_queries(dashboard: dict) -> list[tuple[str, str]]:
    """(where, PromQL) for every panel target and every query variable (label_values(SELECTOR, label)
    yields SELECTOR)."""
    queries = []

    def panels(items):
        for panel in items:
            yield panel
            yield from panels(panel.get("panels", []))

    for panel in panels(dashboard["panels"]):
        for target in panel.get("targets", []):
            queries.append((f"panel {panel['title']!r} {target['refId']}", target["expr"]))
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            query = variable["query"]["query"]
            match = re.fullmatch(r"label_values\((.+), *[a-z_]+\)", query)
            assert match, f"variable {variable['name']}: {query}"
            queries.append((f"variable {variable['name']}", match.group(1)))
    return queries


# Grafana's own variables, replaced by what they stand for before promtool reads a query; the
# dashboard's variables ($namespace, $job, $pod) only ever appear inside label values.
GRAFANA_VARIABLES = {"$__rate_interval": "5m", "$__interval": "1m", "$__range": "1h"}


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_every_dashboard_query_passes_promtool(path, tmp_path):
    dashboard = json.loads(path.read_text())
    queries = dashboard_queries(dashboard)
    rules = []
    for index, (where, expr) in enumerate(queries):
        for variable, value in GRAFANA_VARIABLES.items():
            expr = expr.replace(variable, value)
        assert "$" not in re.sub(r'"[^"]*"', "", expr), f"{where}: a variable outside a label value: {expr}"
        rules.append({"alert": f"Query{index}", "expr": expr, "labels": {"where": where}})
    (tmp_path / "queries.yaml").write_text(yaml.safe_dump({"groups": [{"name": path.stem, "rules": rules}]}))
    checked = promtool("check", "rules", "queries.yaml", cwd=tmp_path)
    assert f"SUCCESS: {len(rules)} rules found" in checked, checked
    print(f"{path.name}: {len(rules)} queries pass promtool check rules")


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_dashboard_is_portable_and_selects_the_chosen_release(path):
    dashboard = json.loads(path.read_text())
    assert dashboard["uid"] and dashboard["title"]
    ids = []
    for panel in dashboard["panels"]:
        ids.append(panel["id"])
        if panel["type"] == "row":
            continue
        # The data source is a variable: the dashboard works in any Grafana, whatever the uid.
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        assert panel["description"], panel["title"]
        for target in panel["targets"]:
            for selector in re.findall(r"\b[a-z_:]+\{([^}]*)\}", target["expr"]):
                assert selector.startswith('namespace="$namespace",job="$job",pod=~"$pod"'), (panel["title"], selector)
    assert len(ids) == len(set(ids))
    assert {v["name"] for v in dashboard["templating"]["list"]} == {"datasource", "namespace", "job", "pod"}


def test_dashboard_configmap_carries_the_sidecar_label_and_the_json(rendered):  # noqa: F811
    configmap = one(rendered["ha"], "ConfigMap", f"{FULLNAME}-dashboard")
    assert configmap["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert configmap["metadata"]["annotations"] == {"grafana_folder": "Databases"}
    assert configmap["metadata"]["namespace"] == NAMESPACE
    assert set(configmap["data"]) == {p.name for p in DASHBOARDS}
    for path in DASHBOARDS:
        assert json.loads(configmap["data"][path.name]) == json.loads(path.read_text())


def test_dashboard_can_go_to_grafanas_namespace(chart):  # noqa: F811
    objects = render(chart, {"metrics": {"dashboard": {"enabled": True, "namespace": "monitoring"}}})
    assert one(objects, "ConfigMap", f"{FULLNAME}-dashboard")["metadata"]["namespace"] == "monitoring"
