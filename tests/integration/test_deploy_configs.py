"""The deployment files are valid for the tools that read them.

- docker-compose.yml passes ``docker-compose config`` (Debian's docker-compose package) and
  wires the stack the way the services expect (health checks, start order, settings).
- The Prometheus configs, alert rules and rule unit tests pass ``promtool`` (Debian's
  prometheus package).
- The Grafana dashboard parses, its queries are valid PromQL, and every query (like every
  alert rule) uses only metric names and labels that the services expose.

The tools are required: a missing one fails the test, naming the package to install.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
PROMETHEUS_DIR = ROOT / "deploy" / "prometheus"
GRAFANA_DIR = ROOT / "deploy" / "grafana"
DASHBOARD = GRAFANA_DIR / "dashboards" / "kpipulse.json"

HTTP_SERVICES = {"ingest": 8000, "scoring": 8001, "alerts": 8002}

# What the services expose: metric name -> label names. Histograms are listed apart because
# PromQL reads them through their _bucket (with `le`), _sum and _count series.
COUNTERS_AND_GAUGES: dict[str, frozenset[str]] = {
    "kpipulse_http_requests_total": frozenset({"service", "method", "route", "status"}),
    "kpipulse_http_requests_in_flight": frozenset({"service"}),
    "kpipulse_ingest_events_total": frozenset({"source", "outcome"}),
    "kpipulse_ingest_producer_errors_total": frozenset(),
    "kpipulse_consumer_lag": frozenset({"service", "topic", "partition"}),
    "kpipulse_dlq_messages_total": frozenset({"service", "reason"}),
    "kpipulse_scoring_events_folded_total": frozenset(),
    "kpipulse_kpi_value": frozenset({"kpi"}),
    "kpipulse_kpi_score": frozenset({"kpi"}),
    "kpipulse_kpi_status": frozenset({"kpi", "status"}),
    "kpipulse_kpi_last_update_timestamp_seconds": frozenset({"kpi"}),
    "kpipulse_kpi_stale": frozenset({"kpi"}),
    "kpipulse_notifications_sent_total": frozenset({"channel"}),
    "kpipulse_notifications_failed_total": frozenset({"channel"}),
    "kpipulse_alerts": frozenset({"state"}),
    "kpipulse_outbox_depth": frozenset(),
    "kpipulse_outbox_oldest_age_seconds": frozenset(),
    # Written by Prometheus itself for every scrape target.
    "up": frozenset(),
}
HISTOGRAMS: dict[str, frozenset[str]] = {
    "kpipulse_http_request_duration_seconds": frozenset({"service", "method", "route"}),
    "kpipulse_ingest_batch_size": frozenset(),
    "kpipulse_notification_delivery_seconds": frozenset({"channel"}),
}
# Prometheus adds these to every scraped series.
TARGET_LABELS = frozenset({"job", "instance"})


def _known_metrics() -> dict[str, frozenset[str]]:
    known = {name: labels | TARGET_LABELS for name, labels in COUNTERS_AND_GAUGES.items()}
    for name, labels in HISTOGRAMS.items():
        known[f"{name}_bucket"] = labels | TARGET_LABELS | {"le"}
        known[f"{name}_sum"] = labels | TARGET_LABELS
        known[f"{name}_count"] = labels | TARGET_LABELS
    return known


KNOWN_METRICS = _known_metrics()

PROMQL_FUNCTIONS = frozenset(
    [
        "sum",
        "min",
        "max",
        "avg",
        "group",
        "stddev",
        "stdvar",
        "count",
        "count_values",
        "bottomk",
        "topk",
        "quantile",
        "limitk",
        "limit_ratio",
        "abs",
        "absent",
        "absent_over_time",
        "ceil",
        "changes",
        "clamp",
        "clamp_max",
        "clamp_min",
        "day_of_month",
        "day_of_week",
        "day_of_year",
        "days_in_month",
        "delta",
        "deriv",
        "exp",
        "floor",
        "histogram_avg",
        "histogram_count",
        "histogram_fraction",
        "histogram_quantile",
        "histogram_sum",
        "holt_winters",
        "hour",
        "idelta",
        "increase",
        "irate",
        "label_join",
        "label_replace",
        "ln",
        "log2",
        "log10",
        "minute",
        "month",
        "predict_linear",
        "rate",
        "resets",
        "round",
        "scalar",
        "sgn",
        "sort",
        "sort_desc",
        "sqrt",
        "time",
        "timestamp",
        "vector",
        "year",
        "avg_over_time",
        "min_over_time",
        "max_over_time",
        "sum_over_time",
        "count_over_time",
        "quantile_over_time",
        "stddev_over_time",
        "stdvar_over_time",
        "last_over_time",
        "present_over_time",
    ]
)
PROMQL_KEYWORDS = frozenset(
    [
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
        "bool",
        "and",
        "or",
        "unless",
        "offset",
        "inf",
        "nan",
    ]
)
_TOKEN = re.compile(
    r"\d+(?:\.\d*)?(?:[eE][+-]?\d+)?[smhdwy]?"  # numbers and durations
    r"|[A-Za-z_:][A-Za-z0-9_:]*"  # identifiers
    r"|\S"
)
_MATCHER_LABEL = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\s*(?:=~|!~|!=|=)")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)")


# ---- helpers ------------------------------------------------------------------------------


def _require_tool(name: str, package: str) -> str:
    path = shutil.which(name)
    assert path is not None, f"`{name}` is not on PATH: install it with `{package}`"
    return path


def _run(args: list[str], *, cwd: Path) -> subprocess.CompletedProcess[str]:
    # Compose reads COMPOSE_* and .env; a developer's own settings must not change the result.
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMPOSE_")}
    return subprocess.run(
        args, cwd=cwd, env=env, capture_output=True, text=True, timeout=120, check=False
    )


def _assert_ok(result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode == 0, (
        f"{' '.join(result.args)} exited {result.returncode}\n"
        f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    )


def _promtool() -> str:
    return _require_tool("promtool", "apt-get install -y prometheus")


def _load_yaml(path: Path) -> Any:
    with path.open(encoding="utf-8") as fh:
        return yaml.safe_load(fh)


def _compose() -> dict[str, Any]:
    data = _load_yaml(COMPOSE_FILE)
    assert isinstance(data, dict)
    return data


def _substitute_grafana_variables(expr: str) -> str:
    """Grafana's variables as Prometheus would see them once Grafana has expanded them."""
    expr = re.sub(r"\$__(?:rate_interval|interval|range)\b", "5m", expr)
    expr = re.sub(r"\$\{[A-Za-z_][A-Za-z0-9_]*(?::[a-z]+)?\}|\$[A-Za-z_][A-Za-z0-9_]*", ".*", expr)
    return expr


def _metric_problems(expr: str) -> list[str]:
    """Names and labels in ``expr`` that no KPI Pulse service exposes."""
    problems: list[str] = []
    text = _substitute_grafana_variables(expr)
    text = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`', '""', text)

    used_metrics: set[str] = set()
    for match in re.finditer(r"([A-Za-z_:][A-Za-z0-9_:]*)?\s*\{([^}]*)\}", text):
        name, matchers = match.group(1), match.group(2)
        labels = set(_MATCHER_LABEL.findall(matchers))
        if name is None or name in PROMQL_KEYWORDS:
            problems.append(f"selector without a metric name: {match.group(0)!r}")
            continue
        if name not in KNOWN_METRICS:
            continue  # reported with the bare names below
        unknown = labels - KNOWN_METRICS[name]
        if unknown:
            problems.append(f"{name} has no label(s) {sorted(unknown)}")

    grouping = {label.strip() for group in _GROUPING.findall(text) for label in group.split(",")}
    grouping.discard("")
    text = _GROUPING.sub(" ", text)
    text = re.sub(r"\{[^}]*\}", " ", text)
    text = re.sub(r"\[[^\]]*\]", " ", text)

    tokens = _TOKEN.findall(text)
    for i, token in enumerate(tokens):
        if not re.fullmatch(r"[A-Za-z_:][A-Za-z0-9_:]*", token):
            continue
        is_call = i + 1 < len(tokens) and tokens[i + 1] == "("
        if token.lower() in PROMQL_KEYWORDS:
            continue
        if is_call:
            if token not in PROMQL_FUNCTIONS:
                problems.append(f"unknown function {token}()")
            continue
        if token in KNOWN_METRICS:
            used_metrics.add(token)
        else:
            problems.append(f"unknown metric {token}")

    allowed_grouping: set[str] = set()
    for metric in used_metrics:
        allowed_grouping |= KNOWN_METRICS[metric]
    for label in sorted(grouping - allowed_grouping):
        problems.append(f"grouping by {label!r}, which none of {sorted(used_metrics)} has")
    if not used_metrics and "time()" not in text.replace(" ", ""):
        problems.append("no metric referenced")
    return problems


def _dashboard() -> dict[str, Any]:
    data = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def _walk_panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from _walk_panels(panel.get("panels", []))


def _dashboard_exprs(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    """(panel title, PromQL) for every query target of every panel."""
    exprs: list[tuple[str, str]] = []
    for panel in _walk_panels(dashboard["panels"]):
        for target in panel.get("targets", []):
            expr = target.get("expr")
            assert isinstance(expr, str) and expr.strip(), f"{panel['title']}: empty query"
            exprs.append((panel["title"], expr))
    return exprs


def _rule_exprs() -> list[tuple[str, str]]:
    rules = _load_yaml(PROMETHEUS_DIR / "rules.yml")
    return [
        (rule.get("alert") or rule.get("record"), str(rule["expr"]))
        for group in rules["groups"]
        for rule in group["rules"]
    ]


# ---- docker-compose.yml -------------------------------------------------------------------

KAFKA_NODES = ("kafka-1", "kafka-2", "kafka-3")


def test_compose_file_passes_docker_compose_config() -> None:
    docker_compose = _require_tool("docker-compose", "apt-get install -y docker-compose")
    _assert_ok(_run([docker_compose, "-f", str(COMPOSE_FILE), "config", "-q"], cwd=ROOT))


def test_compose_images_are_pinned() -> None:
    services = _compose()["services"]
    for name, service in services.items():
        image = service.get("image")
        assert image, f"{name}: no image"
        if "build" in service:
            assert service["build"]["dockerfile"] == "Dockerfile", name
            continue
        repo, _, tag = image.rpartition(":")
        assert repo and tag and tag != "latest", f"{name}: image {image!r} is not pinned"
        assert re.search(r"\d+\.\d+", tag), f"{name}: {image!r} should pin at least a minor version"


def test_compose_starts_things_in_order_and_checks_health() -> None:
    services = _compose()["services"]
    expected = set(
        [
            *KAFKA_NODES,
            "postgres",
            "kafka-init",
            "migrate",
            "ingest",
            "scoring",
            "alerts",
            "prometheus",
            "grafana",
            "mailpit",
        ]
    )
    assert expected <= set(services)

    for name in (*KAFKA_NODES, "postgres", *HTTP_SERVICES):
        assert "healthcheck" in services[name], f"{name}: no healthcheck"
    for name, port in HTTP_SERVICES.items():
        test = " ".join(services[name]["healthcheck"]["test"])
        assert f":{port}/healthz" in test, f"{name}: healthcheck should GET /healthz"

    assert services["kafka-init"]["command"] == ["topics", "create"]
    assert services["migrate"]["command"] == ["migrate"]
    for node in KAFKA_NODES:
        assert services["kafka-init"]["depends_on"][node]["condition"] == "service_healthy"
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name in HTTP_SERVICES:
        service = services[name]
        assert service["command"] == [name]
        depends = service["depends_on"]
        assert depends["kafka-init"]["condition"] == "service_completed_successfully", name
        assert depends["migrate"]["condition"] == "service_completed_successfully", name
        for node in KAFKA_NODES:
            assert depends[node]["condition"] == "service_healthy", name
    assert services["scoring"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert services["alerts"]["depends_on"]["postgres"]["condition"] == "service_healthy"


def test_compose_passes_the_settings_the_services_read() -> None:
    services = _compose()["services"]
    for name, port in HTTP_SERVICES.items():
        env = services[name]["environment"]
        assert env["KPIPULSE_KAFKA__BOOTSTRAP_SERVERS"] == ",".join(
            f"{node}:9092" for node in KAFKA_NODES
        )
        assert env["KPIPULSE_DATABASE__URL"] == (
            "postgresql+asyncpg://kpipulse:kpipulse@postgres:5432/kpipulse"
        )
        assert "KPIPULSE_ADMIN_TOKEN" in env
        assert env[f"KPIPULSE_{name.upper()}__HTTP__HOST"] == "0.0.0.0"
        assert f"127.0.0.1:{port}:{port}" in services[name]["ports"]
    assert services["scoring"]["environment"]["KPIPULSE_SCORING__CATALOG_PATH"] == (
        "/app/catalog/example.yaml"
    )
    alerts_env = services["alerts"]["environment"]
    assert alerts_env["KPIPULSE_ALERTS__SMTP__HOST"] == "mailpit"
    assert str(alerts_env["KPIPULSE_ALERTS__SMTP__PORT"]) == "1025"
    for name in ("kafka-init", "migrate"):
        assert "KPIPULSE_KAFKA__BOOTSTRAP_SERVERS" in services[name]["environment"]
        assert "KPIPULSE_DATABASE__URL" in services[name]["environment"]


def test_compose_runs_three_kafka_nodes_with_production_replication() -> None:
    services = _compose()["services"]
    voters, cluster_ids = set(), set()
    for number, node in enumerate(KAFKA_NODES, start=1):
        env = services[node]["environment"]
        assert str(env["KAFKA_NODE_ID"]) == str(number), node
        voters.add(env["KAFKA_CONTROLLER_QUORUM_VOTERS"])
        cluster_ids.add(env["CLUSTER_ID"])
        assert str(env["KAFKA_MIN_INSYNC_REPLICAS"]) == "2", node
        assert str(env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"]) == "3", node
    # One quorum of the three, one cluster id (a base64 UUID, as kafka-storage wants).
    assert voters == {"1@kafka-1:9093,2@kafka-2:9093,3@kafka-3:9093"}
    assert len(cluster_ids) == 1
    default_id = re.sub(r"^\$\{\w+:-(.*)\}$", r"\1", cluster_ids.pop())
    assert len(base64.urlsafe_b64decode(default_id + "==")) == 16, default_id
    topics_env = services["kafka-init"]["environment"]
    assert str(topics_env["KPIPULSE_KAFKA__REPLICATION_FACTOR"]) == "3"
    assert str(topics_env["KPIPULSE_KAFKA__MIN_INSYNC_REPLICAS"]) == "2"


def test_compose_mounts_existing_observability_config() -> None:
    services = _compose()["services"]
    for name in ("prometheus", "grafana"):
        for volume in services[name]["volumes"]:
            source = volume.split(":", 1)[0]
            if source.startswith("./"):
                assert (ROOT / source).is_dir(), f"{name}: {source} does not exist"


def test_dockerfile_runs_kpipulse_as_non_root() -> None:
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    bases = re.findall(r"^ARG PYTHON_IMAGE=(\S+)$", text, flags=re.MULTILINE)
    assert bases and re.fullmatch(r"python:3\.11\.\d+-slim(-\w+)?", bases[0]), bases
    assert "pip install -c constraints.txt ." in text
    users = re.findall(r"^USER\s+(\S+)", text, flags=re.MULTILINE)
    assert users and not users[-1].startswith(("root", "0")), users
    assert re.search(r'^ENTRYPOINT \["kpipulse"\]$', text, flags=re.MULTILINE)


# ---- Prometheus -------------------------------------------------------------------------


def test_prometheus_configs_pass_promtool(tmp_path: Path) -> None:
    promtool = _promtool()
    # promtool checks that the token file exists: a copy of the folder with one in it,
    # as an installation has (the real file is git-ignored).
    folder = tmp_path / "prometheus"
    shutil.copytree(PROMETHEUS_DIR, folder, ignore=shutil.ignore_patterns("metrics-token"))
    (folder / "metrics-token").write_text("a-metrics-token-for-promtool")
    for name in ("prometheus.local.yml", "prometheus.yml"):
        _assert_ok(_run([promtool, "check", "config", name], cwd=folder))


def test_prometheus_sends_the_metrics_token_to_every_service() -> None:
    for name in ("prometheus.yml", "prometheus.local.yml"):
        jobs = {job["job_name"]: job for job in _load_yaml(PROMETHEUS_DIR / name)["scrape_configs"]}
        for service in HTTP_SERVICES:
            assert jobs[service]["authorization"] == {
                "type": "Bearer",
                "credentials_file": "metrics-token",
            }, (name, service)
    assert "deploy/prometheus/metrics-token" in (ROOT / ".gitignore").read_text()
    services = _compose()["services"]
    for service in HTTP_SERVICES:
        assert "KPIPULSE_METRICS_TOKEN" in services[service]["environment"], service
    assert "KPIPULSE_ALERTS__WEBHOOK_SECRET" in services["alerts"]["environment"]


def test_prometheus_configs_scrape_every_service() -> None:
    for name, host in (("prometheus.yml", None), ("prometheus.local.yml", "127.0.0.1")):
        config = _load_yaml(PROMETHEUS_DIR / name)
        assert config["rule_files"] == ["rules.yml"], name
        jobs = {job["job_name"]: job for job in config["scrape_configs"]}
        for service, port in HTTP_SERVICES.items():
            targets = [t for sc in jobs[service]["static_configs"] for t in sc["targets"]]
            assert targets == [f"{host or service}:{port}"], (name, service, targets)


def test_alert_rules_pass_promtool_check() -> None:
    _assert_ok(_run([_promtool(), "check", "rules", "rules.yml"], cwd=PROMETHEUS_DIR))


def test_alert_rules_pass_their_unit_tests() -> None:
    _assert_ok(_run([_promtool(), "test", "rules", "rules_test.yml"], cwd=PROMETHEUS_DIR))


def test_every_alert_rule_has_a_firing_unit_test() -> None:
    rules = {name for name, _ in _rule_exprs()}
    tests = _load_yaml(PROMETHEUS_DIR / "rules_test.yml")["tests"]
    firing = {
        case["alertname"]
        for test in tests
        for case in test.get("alert_rule_test", [])
        if case.get("exp_alerts")
    }
    quiet = {
        case["alertname"]
        for test in tests
        for case in test.get("alert_rule_test", [])
        if not case.get("exp_alerts")
    }
    assert rules - firing == set(), "alerts without a test where they fire"
    assert rules - quiet == set(), "alerts without a test where they stay quiet"


def test_alert_rules_use_only_exposed_metrics() -> None:
    problems = {name: p for name, expr in _rule_exprs() if (p := _metric_problems(expr))}
    assert problems == {}


# ---- Grafana ----------------------------------------------------------------------------


def test_grafana_provisioning_points_at_the_dashboards() -> None:
    datasources = _load_yaml(GRAFANA_DIR / "provisioning" / "datasources" / "prometheus.yml")
    (source,) = datasources["datasources"]
    assert source["type"] == "prometheus"
    assert source["url"] == "http://prometheus:9090"
    providers = _load_yaml(GRAFANA_DIR / "provisioning" / "dashboards" / "dashboards.yml")
    paths = [p["options"]["path"] for p in providers["providers"]]
    grafana = _compose()["services"]["grafana"]
    mounts = {v.split(":")[1] for v in grafana["volumes"] if v.startswith("./deploy/grafana/")}
    assert "/etc/grafana/provisioning" in mounts
    assert set(paths) <= mounts, (paths, mounts)

    dashboard = _dashboard()
    uids = {
        panel["datasource"]["uid"]
        for panel in _walk_panels(dashboard["panels"])
        if isinstance(panel.get("datasource"), dict)
    }
    assert uids == {source["uid"]}


def test_dashboard_parses_and_has_the_expected_panels() -> None:
    dashboard = _dashboard()
    assert dashboard["uid"] and dashboard["title"]
    exprs = " ".join(expr for _, expr in _dashboard_exprs(dashboard))
    for metric in (
        "kpipulse_http_requests_total",
        "kpipulse_http_request_duration_seconds_bucket",
        "kpipulse_consumer_lag",
        "kpipulse_dlq_messages_total",
        "kpipulse_notifications_sent_total",
        "kpipulse_notifications_failed_total",
        "kpipulse_kpi_value",
        "kpipulse_kpi_score",
    ):
        assert metric in exprs, f"no panel shows {metric}"
    assert "histogram_quantile(0.5," in exprs and "histogram_quantile(0.99," in exprs
    ids = [panel["id"] for panel in _walk_panels(dashboard["panels"])]
    assert len(ids) == len(set(ids)), "panel ids must be unique"


def test_dashboard_queries_use_only_exposed_metrics() -> None:
    dashboard = _dashboard()
    problems = {
        f"{title}: {expr}": p
        for title, expr in _dashboard_exprs(dashboard)
        if (p := _metric_problems(expr))
    }
    for variable in dashboard["templating"]["list"]:
        query = variable["query"]
        query = query["query"] if isinstance(query, dict) else query
        match = re.fullmatch(r"label_values\(\s*([A-Za-z_:][A-Za-z0-9_:]*)\s*,\s*(\w+)\s*\)", query)
        assert match, f"variable {variable['name']}: unexpected query {query!r}"
        metric, label = match.groups()
        if metric not in KNOWN_METRICS or label not in KNOWN_METRICS[metric]:
            problems[f"variable {variable['name']}"] = [f"{metric} has no label {label}"]
    assert problems == {}


def test_dashboard_queries_are_valid_promql() -> None:
    # promtool parses every expression of a rules file; recording rules make the dashboard's
    # queries (with Grafana's variables expanded) into one.
    promtool = _promtool()
    rules = [
        {"record": f"dashboard:query_{i}", "expr": _substitute_grafana_variables(expr)}
        for i, (_, expr) in enumerate(_dashboard_exprs(_dashboard()))
    ]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "dashboard_rules.yml"
        path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
        _assert_ok(_run([promtool, "check", "rules", str(path)], cwd=Path(tmp)))


def test_metric_checker_catches_unknown_names_and_labels() -> None:
    # The checker above is only as good as its parsing: make sure it does reject things.
    assert _metric_problems('sum by (kpi) (kpipulse_kpi_value{kpi=~"$kpi"})') == []
    assert _metric_problems("rate(kpipulse_http_requests[5m])") != []
    assert _metric_problems('kpipulse_kpi_value{event_id="x"}') != []
    assert _metric_problems("sum by (subject_id) (kpipulse_kpi_score)") != []
    assert _metric_problems("rate(kpipulse_ingest_batch_size_bucket[5m])") == []
    assert _metric_problems("histogram_quantile(0.99, kpipulse_ingest_batch_size)") != []
