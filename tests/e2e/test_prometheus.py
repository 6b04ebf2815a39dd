"""A real Prometheus server (Debian's binary) scrapes the three running services.

Prometheus runs on a free port with a scrape interval of 1 s and the platform's own
alert rules (deploy/prometheus/rules.yml). While events flow through ingest, PromQL over
its HTTP API must return every service as up, request rates for each service's routes
and the KPI gauges for the catalog's KPIs; ``promtool check metrics`` must accept what
every service exposes on /metrics.
"""

from __future__ import annotations

import shutil
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.e2e.conftest import EXAMPLE_CATALOG, SERVICES, Stack
from tests.support.processes import REPO, free_port

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

RULES = REPO / "deploy" / "prometheus" / "rules.yml"
# KPIs the traffic below feeds: (source, event type, properties) per KPI.
FED: dict[str, tuple[str, str, dict[str, Any]]] = {
    "organic_sessions": ("web", "session_started", {"channel": "organic"}),
    "complaints": ("support", "complaint_received", {}),
    "deals_closed": ("crm", "deal_won", {}),
}
# Routes each service must show a request rate for (driven by the traffic thread).
ROUTES = {
    "ingest": ("POST", "/v1/events"),
    "scoring": ("GET", "/v1/kpis"),
    "alerts": ("GET", "/v1/alerts"),
}


def _binary(name: str) -> str:
    path = shutil.which(name) or (f"/usr/bin/{name}" if Path(f"/usr/bin/{name}").exists() else None)
    if path is None:
        pytest.fail(f"{name} is missing: apt-get install -y prometheus (Debian package)")
    return path


@dataclass
class Prometheus:
    url: str
    proc: subprocess.Popen[bytes]
    log: Path

    def query(self, promql: str) -> list[dict[str, Any]]:
        response = httpx.get(f"{self.url}/api/v1/query", params={"query": promql}, timeout=10)
        body = response.json()
        assert response.status_code == 200 and body["status"] == "success", (promql, body)
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    def get(self, path: str) -> Any:
        response = httpx.get(f"{self.url}{path}", timeout=10)
        assert response.status_code == 200, (path, response.text)
        return response.json()["data"]


def eventually(probe: Callable[[], Any], what: str, timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(0.5)
    raise AssertionError(f"{what}: not true within {timeout} s (last: {last!r})")


def write_config(stack: Stack, directory: Path) -> Path:
    # The KPI value gauges need the metrics token: scraped the way the README documents.
    token_file = directory / "metrics-token"
    token_file.write_text(stack.metrics_token)
    config = {
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(RULES)],
        "scrape_configs": [
            {
                "job_name": name,
                "metrics_path": "/metrics",
                "authorization": {"type": "Bearer", "credentials_file": str(token_file)},
                "static_configs": [{"targets": [f"127.0.0.1:{stack.processes[name].port}"]}],
            }
            for name in SERVICES
        ],
    }
    path = directory / "prometheus.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def prometheus(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prometheus]:
    binary = _binary("prometheus")
    directory = tmp_path_factory.mktemp("prometheus")
    config = write_config(stack, directory)
    port = free_port()
    log = directory / "prometheus.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                binary,
                f"--config.file={config}",
                f"--storage.tsdb.path={directory / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--storage.tsdb.retention.time=1h",
                "--log.level=warn",
            ],
            stdout=out,
            stderr=out,
        )
    server = Prometheus(f"http://127.0.0.1:{port}", proc, log)
    try:
        def ready() -> bool:
            if proc.poll() is not None:
                raise AssertionError(f"prometheus exited: {log.read_text()[-3000:]}")
            try:
                return httpx.get(f"{server.url}/-/ready", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        eventually(ready, "prometheus ready", timeout=60)
        yield server
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def _event(kpi: str) -> dict[str, Any]:
    source, event_type, properties = FED[kpi]
    return {
        "event_id": f"prom-{uuid.uuid4().hex}",
        "source": source,
        "type": event_type,
        "subject_id": f"user-{uuid.uuid4().hex[:6]}",
        "properties": properties,
    }


@pytest.fixture(scope="module")
def traffic(stack: Stack) -> Iterator[dict[str, int]]:
    """Events for the FED KPIs and reads of scoring and alerts, until the module ends."""
    sent: dict[str, int] = dict.fromkeys(FED, 0)
    stop = threading.Event()
    problems: list[str] = []

    def drive() -> None:
        with httpx.Client(timeout=10) as client:
            while not stop.is_set():
                for kpi, (source, _, _) in FED.items():
                    response = client.post(
                        f"{stack.ingest}/v1/events",
                        json={"batch": [_event(kpi), _event(kpi)]},
                        headers=stack.key_headers(source),
                    )
                    if response.status_code != 200 or response.json()["rejected"]:
                        problems.append(f"POST /v1/events: {response.status_code} {response.text}")
                    else:
                        sent[kpi] += 2
                for url in (f"{stack.scoring}/v1/kpis", f"{stack.alerts}/v1/alerts"):
                    if client.get(url, headers=stack.admin_headers()).status_code != 200:
                        problems.append(f"GET {url} failed")
                stop.wait(0.25)

    thread = threading.Thread(target=drive, name="e2e-traffic", daemon=True)
    thread.start()
    eventually(lambda: all(sent.values()), "first events accepted", timeout=30)
    yield sent
    stop.set()
    thread.join(15)
    assert not problems, problems[:5]


def catalog_keys() -> set[str]:
    data = yaml.safe_load(EXAMPLE_CATALOG.read_text(encoding="utf-8"))
    items = data["kpis"] if isinstance(data, dict) else data
    return {item["key"] for item in items}


def test_every_service_is_up(prometheus: Prometheus, traffic: dict[str, int]) -> None:
    def all_up() -> dict[str, str]:
        result = prometheus.query('up{job=~"ingest|scoring|alerts"} == 1')
        jobs = {sample["metric"]["job"]: sample["value"][1] for sample in result}
        return jobs if set(jobs) == set(SERVICES) else {}

    assert eventually(all_up, "up == 1 for ingest, scoring and alerts") == dict.fromkeys(
        SERVICES, "1"
    )
    targets = prometheus.get("/api/v1/targets")["activeTargets"]
    assert {t["labels"]["job"]: (t["health"], t["lastError"]) for t in targets} == {
        name: ("up", "") for name in SERVICES
    }


def test_request_rates_for_each_service(prometheus: Prometheus, traffic: dict[str, int]) -> None:
    def rates() -> dict[str, float]:
        result = prometheus.query(
            "sum by (job, service, method, route) (rate(kpipulse_http_requests_total[10s]))"
        )
        found = {
            sample["metric"]["job"]: float(sample["value"][1])
            for sample in result
            if (sample["metric"].get("method"), sample["metric"].get("route"))
            == ROUTES.get(sample["metric"]["job"])
            and sample["metric"].get("service") == sample["metric"]["job"]
            and float(sample["value"][1]) > 0
        }
        return found if set(found) == set(SERVICES) else {}

    found = eventually(rates, "a request rate for every service's route")
    assert all(rate > 0 for rate in found.values()), found
    # The RED latency histogram is scraped too.
    latency = prometheus.query(
        "histogram_quantile(0.99, sum by (job, le) "
        "(rate(kpipulse_http_request_duration_seconds_bucket[10s])))"
    )
    assert {sample["metric"]["job"] for sample in latency} == set(SERVICES), latency


def test_kpi_gauges_for_catalog_kpis(prometheus: Prometheus, traffic: dict[str, int]) -> None:
    keys = catalog_keys()

    def gauges_of(metric: str) -> dict[str, str]:
        result = prometheus.query(f'{metric}{{job="scoring"}}')
        return {sample["metric"]["kpi"]: sample["value"][1] for sample in result}

    # Every catalog KPI has a value gauge (NaN when it has no data, never a fake zero)...
    def all_values() -> dict[str, str]:
        found = gauges_of("kpipulse_kpi_value")
        return found if keys <= set(found) else {}

    values = eventually(all_values, "kpipulse_kpi_value for every catalog KPI")
    assert keys <= set(values), sorted(keys - set(values))
    assert keys <= set(gauges_of("kpipulse_kpi_score"))

    # ...and the KPIs the traffic feeds show real numbers.
    def fed_values() -> dict[str, float]:
        result = prometheus.query(
            'kpipulse_kpi_value{job="scoring", kpi=~"' + "|".join(FED) + '"} > 0'
        )
        found = {sample["metric"]["kpi"]: float(sample["value"][1]) for sample in result}
        return found if set(found) == set(FED) else {}

    fed = eventually(fed_values, "positive KPI values for the fed KPIs", timeout=90)
    for kpi, value in fed.items():
        assert value >= 2, (kpi, value)
    scores = prometheus.query(
        'kpipulse_kpi_score{job="scoring", kpi=~"' + "|".join(FED) + '"} >= 0'
    )
    assert {sample["metric"]["kpi"] for sample in scores} == set(FED), scores
    assert all(0 <= float(s["value"][1]) <= 100 for s in scores), scores


def test_platform_rules_load_and_evaluate(
    prometheus: Prometheus, traffic: dict[str, int]
) -> None:
    expected = {
        rule["alert"]
        for group in yaml.safe_load(RULES.read_text())["groups"]
        for rule in group["rules"]
        if "alert" in rule
    }

    def evaluated() -> list[dict[str, Any]]:
        groups = prometheus.get("/api/v1/rules")["groups"]
        rules = [rule for group in groups for rule in group["rules"]]
        done = rules and all(rule.get("lastEvaluation", "").startswith("20") for rule in rules)
        return rules if done else []

    rules = eventually(evaluated, "every rule evaluated once")
    assert {rule["name"] for rule in rules if rule["type"] == "alerting"} == expected
    unhealthy = [(rule["name"], rule.get("lastError")) for rule in rules if rule["health"] != "ok"]
    assert not unhealthy, unhealthy
    firing = prometheus.query('ALERTS{alertname="KpiPulseServiceDown"}')
    assert firing == [], firing


@pytest.mark.parametrize("service", SERVICES)
def test_promtool_check_metrics(stack: Stack, traffic: dict[str, int], service: str) -> None:
    promtool = _binary("promtool")
    exposition = httpx.get(f"{stack.url(service)}/metrics", timeout=10)
    assert exposition.status_code == 200
    assert exposition.headers["content-type"].startswith("text/plain")
    assert "kpipulse_http_requests_total" in exposition.text
    checked = subprocess.run(
        [promtool, "check", "metrics"],
        input=exposition.content,
        capture_output=True,
        timeout=30,
        check=False,
    )
    report = (checked.stdout + checked.stderr).decode()
    assert checked.returncode == 0, f"promtool check metrics on {service}:\n{report}"
    assert report.strip() == "", report
