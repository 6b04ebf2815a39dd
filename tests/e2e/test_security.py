"""Security properties of the running platform, as tests (issue 7, item 5).

- admin endpoints of every service (enumerated from the OpenAPI schemas) refuse a
  missing or wrong token;
- write keys are stored hashed: no plain key, token or secret is in any database column,
  nor in any service's log after the APIs were exercised with them;
- request bodies are bounded before parsing: an endless chunked body or an oversized
  Content-Length is answered 413 while the body is still coming;
- SQL is parameterised: injection-looking values in every path and query parameter have
  no effect;
- a replayed Standard Webhooks delivery is published and counted once.

The static checks (no SQL built from strings, constant-time comparisons) are in
tests/unit/test_static_security.py.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import re
import select
import socket
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar

import httpx
import orjson
import pytest
import yaml
from aiokafka import AIOKafkaConsumer
from aiokafka.structs import TopicPartition
from sqlalchemy import Text, cast, column, func, table, text
from sqlalchemy import select as sql_select
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.db.engine import create_engine
from shared.settings import Settings
from tests.e2e.conftest import EXAMPLE_CATALOG, SERVICES, Stack

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

INJECTIONS = (
    "' OR 1=1 --",
    "x' OR '1'='1",
    "1; DROP TABLE ingest_write_keys; --",
    "%' OR '1'='1' --",
    '") OR 1=1 --',
    "1 UNION SELECT NULL, NULL --",
    "'; UPDATE ingest_write_keys SET revoked_at = now(); --",
)
MIB = 1024 * 1024
T = TypeVar("T")


@pytest.fixture(scope="module")
def schemas(stack: Stack) -> dict[str, dict[str, Any]]:
    found = {}
    for name in SERVICES:
        response = httpx.get(f"{stack.url(name)}/openapi.json", timeout=10)
        assert response.status_code == 200
        found[name] = response.json()
    return found


def operations(schema: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            if method in {"get", "post", "put", "patch", "delete"}:
                yield method.upper(), path, operation


def parameters(operation: dict[str, Any], where: str) -> list[dict[str, Any]]:
    return [p for p in operation.get("parameters", []) if p["in"] == where]


def fill_path(path: str, operation: dict[str, Any], value: str | None = None) -> str:
    """The path with every parameter set (``value``, or a harmless one of its type)."""
    for param in parameters(operation, "path"):
        kind = param.get("schema", {}).get("type")
        plain = "999999999" if kind == "integer" else f"does-not-exist-{uuid.uuid4().hex[:6]}"
        path = path.replace("{" + param["name"] + "}", value if value is not None else plain)
    return path


# --- Admin endpoints ------------------------------------------------------------------

# What must be found in the schemas (the enumeration below must not silently shrink).
EXPECTED_ADMIN = {
    "ingest": {
        ("GET", "/v1/admin/keys"),
        ("POST", "/v1/admin/keys"),
        ("DELETE", "/v1/admin/keys/{key_id}"),
    },
    "scoring": {("POST", "/v1/kpis"), ("PUT", "/v1/kpis/{key}"), ("DELETE", "/v1/kpis/{key}")},
    "alerts": {
        ("POST", "/v1/alerts/{alert_id}/ack"),
        ("POST", "/v1/silences"),
        ("DELETE", "/v1/silences/{silence_id}"),
    },
}


def admin_operations(
    schemas: dict[str, dict[str, Any]],
) -> list[tuple[str, str, str, dict[str, Any]]]:
    """Every admin operation: under /admin/, or any change on scoring and alerts."""
    found = []
    for service, schema in schemas.items():
        for method, path, operation in operations(schema):
            if path.startswith("/v1/session"):
                continue  # signing in and out is for everyone (tests/e2e/test_access.py)
            if "/admin/" in path or (service != "ingest" and method != "GET"):
                found.append((service, method, path, operation))
    return found


def bad_credentials(token: str) -> dict[str, dict[str, str]]:
    basic = base64.b64encode(f"admin:{token}".encode()).decode()
    return {
        "missing": {},
        "empty bearer": {"Authorization": "Bearer"},
        "wrong token": {"Authorization": "Bearer wrong-admin-token-0123456789"},
        "token prefix": {"Authorization": f"Bearer {token[:-1]}"},
        "token plus a character": {"Authorization": f"Bearer {token}x"},
        "other case": {"Authorization": f"Bearer {token.upper()}"},
        "no scheme": {"Authorization": token},
        "basic scheme": {"Authorization": f"Basic {basic}"},
        "write key": {"Authorization": "Bearer kp_web_" + "a" * 43},
        "token in query": {},  # sent as ?token=… below: only the header counts
    }


def test_admin_endpoints_refuse_missing_or_wrong_token(
    stack: Stack, schemas: dict[str, dict[str, Any]]
) -> None:
    found = admin_operations(schemas)
    for service, expected in EXPECTED_ADMIN.items():
        listed = {(m, p) for s, m, p, _ in found if s == service}
        assert expected <= listed, f"{service}: admin operations missing from the schema"
    refusals: list[str] = []
    for service, method, path, operation in found:
        url = f"{stack.url(service)}{fill_path(path, operation)}"
        body = b"{}" if method in {"POST", "PUT", "PATCH"} else None
        for label, headers in bad_credentials(stack.admin_token).items():
            params = {"token": stack.admin_token} if label == "token in query" else None
            response = httpx.request(
                method, url, headers={**headers, "Content-Type": "application/json"},
                content=body, params=params, timeout=10,
            )
            if response.status_code != 401:
                refusals.append(f"{service} {method} {path} [{label}]: {response.status_code}")
            elif "www-authenticate" not in response.headers:
                refusals.append(f"{service} {method} {path} [{label}]: no WWW-Authenticate")
        # Control: with the right token the same request gets past the check (its
        # harmless body or unknown id is refused instead), so the 401s above are real.
        response = httpx.request(
            method, url, headers={**stack.admin_headers(), "Content-Type": "application/json"},
            content=body, timeout=10,
        )
        if response.status_code in {401, 403} or response.status_code >= 500:
            refusals.append(f"{service} {method} {path} [right token]: {response.status_code}")
    assert not refusals, "\n".join(refusals)


def catalog_keys() -> list[str]:
    data = yaml.safe_load(EXAMPLE_CATALOG.read_text(encoding="utf-8"))
    items = data["kpis"] if isinstance(data, dict) else data
    return [item["key"] for item in items]


# --- SQL injection --------------------------------------------------------------------


def on_database(stack: Stack, work: Callable[[AsyncEngine], Awaitable[T]]) -> T:
    """Run ``work`` with an engine on the stack's database (the session's test database)."""

    async def run() -> T:
        engine = create_engine(stack.settings.database)
        try:
            return await work(engine)
        finally:
            await engine.dispose()

    return asyncio.run(run())


async def _state(engine: AsyncEngine) -> dict[str, Any]:
    """What an injection would change: keys, catalog, silences, alerts."""
    queries = {
        "active keys": "SELECT count(*) FROM ingest_write_keys WHERE revoked_at IS NULL",
        "keys": "SELECT count(*) FROM ingest_write_keys",
        "catalog": "SELECT count(*) FROM kpi_definitions",
        "silences": "SELECT count(*) FROM silences WHERE ends_at > now()",
        "catalog rows": "SELECT count(*) FROM kpi_definitions",
        "acknowledged alerts": "SELECT count(*) FROM alerts WHERE acked_at IS NOT NULL",
    }
    found: dict[str, Any] = {}
    async with engine.connect() as conn:
        tables = set(
            (
                await conn.execute(
                    text("SELECT table_name FROM information_schema.tables "
                         "WHERE table_schema = 'public'")
                )
            ).scalars()
        )
        for name, sql in queries.items():
            table_name = sql.split(" FROM ")[1].split()[0]
            assert table_name in tables, f"no table {table_name}: {sorted(tables)}"
            found[name] = (await conn.execute(text(sql))).scalar_one()
    return found


def test_injection_in_every_parameter_has_no_effect(
    stack: Stack, schemas: dict[str, dict[str, Any]]
) -> None:
    before = on_database(stack, _state)
    problems: list[str] = []
    sent = 0
    for service, schema in schemas.items():
        for method, path, operation in operations(schema):
            names = [p["name"] for p in parameters(operation, "query")]
            has_path = bool(parameters(operation, "path"))
            if not names and not has_path:
                continue
            credential = (
                stack.key_headers("web") if service == "ingest" and "/admin/" not in path
                else stack.admin_headers()
            )
            body = b"{}" if method in {"POST", "PUT"} else None
            for payload in INJECTIONS:
                targets: list[tuple[str, dict[str, str]]] = []
                if has_path:
                    targets.append((fill_path(path, operation, payload), {}))
                for name in names:
                    targets.append((fill_path(path, operation), {name: payload}))
                for target, query in targets:
                    response = httpx.request(
                        method, f"{stack.url(service)}{target}", params=query,
                        headers={**credential, "Content-Type": "application/json"},
                        content=body, timeout=10,
                    )
                    sent += 1
                    if response.status_code >= 500:
                        problems.append(f"{service} {method} {target} {query}: "
                                        f"{response.status_code} {response.text[:300]}")
                    elif method == "GET" and response.status_code == 200 and query:
                        # A filter with an injected value matches nothing.
                        rows = _rows(response)
                        if rows:
                            problems.append(f"{service} GET {path} {query} matched {len(rows)}")
    # Write keys and injection-looking KPI keys in bodies and headers, too.
    for payload in INJECTIONS:
        response = httpx.post(
            f"{stack.ingest}/v1/events", json={"type": "x"},
            headers={"Authorization": f"Bearer kp_web_{payload}"}, timeout=10,
        )
        if response.status_code != 401:
            problems.append(f"write key {payload!r}: {response.status_code}")
        response = httpx.get(
            f"{stack.scoring}/v1/kpis/{payload}", headers=stack.admin_headers(), timeout=10
        )
        if response.status_code != 404:
            problems.append(f"GET /v1/kpis/{payload!r}: {response.status_code}")
    after = on_database(stack, _state)
    assert sent > 50
    assert not problems, "\n".join(problems)
    assert after == before, f"injections changed the database: {before} -> {after}"
    # The catalog is intact: every KPI of the example catalog still answers.
    for key in catalog_keys():
        answer = httpx.get(f"{stack.scoring}/v1/kpis/{key}", headers=stack.admin_headers())
        assert answer.status_code == 200, key


def _rows(response: httpx.Response) -> list[object] | None:
    """The rows a listing answered: a JSON list, or a CSV file's lines after its header."""
    if response.headers.get("content-type", "").startswith("text/csv"):
        return [line for line in response.text.splitlines()[1:] if line.strip()]
    data = response.json()
    return data if isinstance(data, list) else None


def test_injection_looking_values_are_stored_verbatim(stack: Stack) -> None:
    payload = INJECTIONS[0]
    kpi_key = f"{payload} {uuid.uuid4().hex[:6]}"
    created = httpx.post(
        f"{stack.alerts}/v1/silences",
        json={"kpi_key": kpi_key, "duration_s": 60, "reason": INJECTIONS[2]},
        headers=stack.admin_headers(), timeout=10,
    )
    assert created.status_code == 201, created.text
    silence = created.json()
    assert silence["kpi_key"] == kpi_key
    listed = httpx.get(
        f"{stack.alerts}/v1/silences", headers=stack.admin_headers(), timeout=10
    ).json()
    assert [s["kpi_key"] for s in listed if s["id"] == silence["id"]] == [kpi_key]
    ended = httpx.delete(
        f"{stack.alerts}/v1/silences/{silence['id']}", headers=stack.admin_headers(), timeout=10
    )
    assert ended.status_code == 204


# --- Bodies are bounded before parsing ------------------------------------------------


def _send_request_head(
    sock: socket.socket, method: str, path: str, headers: dict[str, str]
) -> None:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())


def _status(data: bytes) -> int | None:
    match = re.match(rb"HTTP/1\.[01] (\d{3})", data)
    return int(match.group(1)) if match else None


def stream_endless_body(
    port: int, method: str, path: str, headers: dict[str, str], *, cap: int = 48 * MIB,
    timeout: float = 20,
) -> tuple[int | None, int, float]:
    """Send a chunked body that never ends (up to ``cap``) until the server answers.

    Returns (status or None, bytes sent when the answer came, seconds).
    """
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 64 * 1024)
    started = time.monotonic()
    sent = 0
    received = b""
    chunk = b"[" * (64 * 1024)
    framed = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
    pending = b""
    try:
        _send_request_head(
            sock, method, path, {**headers, "Content-Type": "application/json",
                                 "Transfer-Encoding": "chunked"},
        )
        sock.setblocking(False)
        while time.monotonic() - started < timeout:
            wanted = [sock] if sent < cap or pending else []
            readable, writable, _ = select.select([sock], wanted, [], 0.2)
            if readable:
                data = sock.recv(65536)
                if not data:
                    break
                received += data
                if _status(received) is not None:
                    break
            elif writable:
                pending = pending or framed
                try:
                    done = sock.send(pending)
                except (BlockingIOError, InterruptedError):
                    continue
                except (BrokenPipeError, ConnectionResetError):
                    sock.setblocking(True)
                    sock.settimeout(5)
                    with contextlib.suppress(OSError):
                        received += sock.recv(65536)
                    break
                sent += done
                pending = pending[done:]
    finally:
        sock.close()
    return _status(received), sent, time.monotonic() - started


def declared_length_answer(
    port: int, method: str, path: str, headers: dict[str, str], declared: int
) -> tuple[int | None, float]:
    """Send only the head with ``Content-Length: declared``; the answer, without a body."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        started = time.monotonic()
        _send_request_head(
            sock, method, path, {**headers, "Content-Type": "application/json",
                                 "Content-Length": str(declared)},
        )
        data = b""
        try:
            while _status(data) is None:
                more = sock.recv(65536)
                if not more:
                    break
                data += more
        except TimeoutError:
            return None, time.monotonic() - started
        return _status(data), time.monotonic() - started


def body_operations(
    stack: Stack, schemas: dict[str, dict[str, Any]]
) -> list[tuple[str, str, str, dict[str, str]]]:
    """(service, method, concrete path, credentials) for every operation that reads a body."""
    found = []
    for service, schema in schemas.items():
        for method, path, operation in operations(schema):
            if method not in {"POST", "PUT", "PATCH"}:
                continue
            concrete = fill_path(path, operation)
            if "{secret}" in path:
                concrete = path.replace("{secret}", stack.secrets.mailchimp)
            elif "{source}" in path:
                concrete = path.replace("{source}", "support")
            if service != "ingest" or "/admin/" in path:
                headers = stack.admin_headers()
            elif "/webhooks/" in path:
                headers = {}
            else:
                headers = stack.key_headers("web")
            found.append((service, method, concrete, headers))
    return found


def test_endless_chunked_bodies_are_refused_with_413(
    stack: Stack, schemas: dict[str, dict[str, Any]]
) -> None:
    limit = stack.settings.ingest.max_request_bytes
    problems = []
    operations_checked = body_operations(stack, schemas)
    assert len(operations_checked) >= 15, operations_checked
    for service, method, path, headers in operations_checked:
        status, sent, seconds = stream_endless_body(
            stack.processes[service].port, method, path, headers
        )
        if status != 413 or seconds > 10:
            problems.append(
                f"{service} {method} {path}: {status} after {sent / MIB:.1f} MiB sent, "
                f"{seconds:.1f} s (expected 413 while the body is still coming)"
            )
        elif sent > limit + 16 * MIB:
            problems.append(f"{service} {method} {path}: read {sent / MIB:.1f} MiB before 413")
    stack.assert_alive()
    assert not problems, "\n".join(problems)


def test_oversized_content_length_is_refused_before_the_body(
    stack: Stack, schemas: dict[str, dict[str, Any]]
) -> None:
    problems = []
    for service, method, path, headers in body_operations(stack, schemas):
        status, seconds = declared_length_answer(
            # Over every limit: 1 MiB, and twice ingest's for the bodies FastAPI parses.
            stack.processes[service].port, method, path, headers, 4 * MIB
        )
        if status != 413 or seconds > 5:
            problems.append(f"{service} {method} {path}: {status} after {seconds:.1f} s")
    assert not problems, "\n".join(problems)


def test_a_small_content_length_lie_reads_no_further(stack: Stack) -> None:
    """Content-Length: 100 followed by 2 MB: only 100 bytes are read as the body."""
    with socket.create_connection(("127.0.0.1", stack.processes["ingest"].port), timeout=10) as s:
        started = time.monotonic()
        _send_request_head(
            s, "POST", "/v1/events",
            {**stack.key_headers("web"), "Content-Type": "application/json",
             "Content-Length": "100"},
        )
        s.sendall(b"{" * 100)
        with contextlib.suppress(OSError):  # the server may close once it answered
            s.sendall(b"x" * (2 * MIB))
        data = s.recv(65536)
    status = _status(data)
    assert status is not None and 400 <= status < 500, data[:300]
    assert time.monotonic() - started < 10
    stack.assert_alive()


# --- Replayed webhooks ----------------------------------------------------------------


def standard_webhook(stack: Stack, body: bytes, msg_id: str) -> dict[str, str]:
    key = base64.b64decode(stack.secrets.standard.removeprefix("whsec_"))
    stamp = str(int(time.time()))
    mac = hmac.new(key, f"{msg_id}.{stamp}.".encode() + body, hashlib.sha256).digest()
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": stamp,
        "webhook-signature": "v1," + base64.b64encode(mac).decode(),
        "Content-Type": "application/json",
    }


async def count_in_topic(settings: Settings, topic: str, key: bytes) -> int:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka.bootstrap_servers, group_id=None,
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        partitions: list[TopicPartition] = []
        for _ in range(20):
            numbers = consumer.partitions_for_topic(topic)
            if numbers:
                partitions = [TopicPartition(topic, p) for p in sorted(numbers)]
                break
            await consumer._client.force_metadata_update()
        assert partitions, f"no partitions for {topic}"
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        count = 0
        async with asyncio.timeout(30):
            while any([await consumer.position(tp) < ends[tp] for tp in partitions]):
                batches = await consumer.getmany(timeout_ms=500)
                count += sum(1 for records in batches.values() for r in records if r.key == key)
        return count
    finally:
        await consumer.stop()


def kpi_value(stack: Stack, key: str) -> float:
    response = httpx.get(
        f"{stack.scoring}/v1/kpis/{key}", headers=stack.admin_headers(), timeout=10
    )
    assert response.status_code == 200, response.text
    value = response.json()["kpi"]["value"]
    return float(value) if value is not None else 0.0


def probe_kpi(stack: Stack, event_type: str) -> str:
    """A KPI (through the admin API) counting only ``support/event_type`` events."""
    template = httpx.get(
        f"{stack.scoring}/v1/kpis/complaints", headers=stack.admin_headers(), timeout=10
    ).json()["definition"]
    key = event_type
    definition = {
        **template,
        "key": key,
        "name": f"Replay probe {key}",
        "formula": {"count": {"source": "support", "type": event_type}},
        "leading_indicators": [],
    }
    response = httpx.put(f"{stack.scoring}/v1/kpis/{key}", json=definition,
                         headers=stack.admin_headers(), timeout=10)
    assert response.status_code == 200, response.text
    return key


def test_replayed_webhook_is_counted_once(stack: Stack) -> None:
    # A KPI of its own, so that no other test's events move it.
    event_type = f"replay_probe_{uuid.uuid4().hex[:8]}"
    key = probe_kpi(stack, event_type)
    msg_id = f"msg_{uuid.uuid4().hex}"
    body = orjson.dumps({"type": event_type, "timestamp": time.time(),
                         "data": {"subject_id": "customer-7", "channel": "email"}})
    url = f"{stack.ingest}/v1/webhooks/standard/support"
    try:
        first = httpx.post(url, content=body, headers=standard_webhook(stack, body, msg_id))
        assert first.status_code == 200, first.text
        assert first.json()["replayed"] is False and first.json()["accepted"] == [msg_id]
        # The same delivery again, freshly signed (within the tolerance, as a replay is).
        replay = httpx.post(url, content=body, headers=standard_webhook(stack, body, msg_id))
        assert replay.status_code == 200, replay.text
        assert replay.json()["replayed"] is True and replay.json()["accepted"] == []
        # A delivery with a wrong signature is refused outright.
        forged = standard_webhook(stack, body + b" ", msg_id)
        assert httpx.post(url, content=body, headers=forged).status_code == 401

        topic = stack.settings.kafka.topics().events
        assert asyncio.run(count_in_topic(stack.settings, topic, msg_id.encode())) == 1

        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and kpi_value(stack, key) < 1:
            time.sleep(0.5)
        assert kpi_value(stack, key) == 1
        time.sleep(3)  # a second count would have arrived by now
        assert kpi_value(stack, key) == 1
    finally:
        httpx.delete(f"{stack.scoring}/v1/kpis/{key}", headers=stack.admin_headers(), timeout=10)


# --- Stored hashed, never logged (last: they check what the tests above sent) ----------


def secrets_in_play(stack: Stack) -> dict[str, str]:
    found = {"admin token": stack.admin_token,
             "alerts webhook secret": stack.alerts_webhook_secret}
    for source, key in stack.write_keys.items():
        found[f"{source} write key"] = key
        found[f"{source} write key's random part"] = key.split("_", 2)[2]
    for index, secret in enumerate(stack.secrets.plain_values()):
        found[f"webhook secret {index}"] = secret
    return found


def exercise_with_secrets(stack: Stack) -> dict[str, str]:
    """Use every key, token and secret (right and wrong); return the new ones made."""
    made: dict[str, str] = {}
    event = {"type": "session_started", "properties": {"channel": "organic"}}
    for source, key in stack.write_keys.items():
        response = httpx.post(f"{stack.ingest}/v1/events", json={**event, "source": source},
                              headers={"Authorization": f"Bearer {key}"})
        assert response.status_code == 200, response.text
    web = stack.write_keys["web"]
    basic = base64.b64encode(f"{web}:".encode()).decode()
    track = {"event": "Signed Up", "userId": "u1", "properties": {"plan": "pro"}}
    assert httpx.post(f"{stack.ingest}/v1/track", json=track,
                      headers={"Authorization": f"Basic {basic}"}).status_code == 200
    in_body = httpx.post(f"{stack.ingest}/v1/track", json={**track, "writeKey": web})
    assert in_body.status_code == 200
    # A key for another source, an unknown key shaped like a real one, a revoked key.
    assert httpx.post(f"{stack.ingest}/v1/track", json=track,
                      headers=stack.key_headers("crm")).status_code == 403
    unknown = "kp_web_" + base64.urlsafe_b64encode(uuid.uuid4().bytes * 2).decode().rstrip("=")
    made["unknown key"] = unknown
    assert httpx.post(f"{stack.ingest}/v1/events", json=event,
                      headers={"Authorization": f"Bearer {unknown}"}).status_code == 401
    created = httpx.post(f"{stack.ingest}/v1/admin/keys", json={"source": "web", "name": "rot"},
                         headers=stack.admin_headers())
    assert created.status_code == 201, created.text
    made["admin-API key"] = created.json()["key"]
    revoked = httpx.delete(f"{stack.ingest}/v1/admin/keys/{created.json()['id']}",
                           headers=stack.admin_headers())
    assert revoked.status_code == 200
    revoked_key = {"Authorization": f"Bearer {made['admin-API key']}"}
    assert httpx.post(f"{stack.ingest}/v1/events", json=event,
                      headers=revoked_key).status_code == 401
    # The admin token where it belongs and where it does not.
    for service in SERVICES:
        httpx.get(f"{stack.url(service)}/v1/kpis", headers=stack.admin_headers())
        httpx.get(f"{stack.url(service)}/healthz", headers=stack.admin_headers())
    assert httpx.put(f"{stack.scoring}/v1/kpis/x", json={"key": "x"},
                     headers=stack.admin_headers()).status_code == 422
    assert httpx.post(f"{stack.ingest}/v1/events", json=event,
                      headers=stack.admin_headers()).status_code == 401
    # Webhooks: signed right, signed wrong, Mailchimp's secret in the URL.
    body = orjson.dumps({"type": "complaint_received", "data": {"subject_id": "c1"}})
    url = f"{stack.ingest}/v1/webhooks/standard/support"
    msg_id = f"msg_{uuid.uuid4().hex}"
    assert httpx.post(url, content=body,
                      headers=standard_webhook(stack, body, msg_id)).status_code == 200
    assert httpx.post(url, content=body + b" ",
                      headers=standard_webhook(stack, body, msg_id)).status_code == 401
    secret = stack.secrets.mailchimp
    assert httpx.get(f"{stack.ingest}/v1/webhooks/mailchimp/{secret}").status_code == 200
    assert httpx.get(f"{stack.ingest}/v1/webhooks/mailchimp/{secret}x").status_code == 401
    # A person: created, reading with their token, signing in, then a revoked token.
    person = stack.create_user(f"logs-{uuid.uuid4().hex[:6]}@example.com", "viewer", ["sales"])
    made["personal token"] = person["token"]
    made["one-time password"] = person["password"]
    bearer = {"Authorization": f"Bearer {person['token']}"}
    assert httpx.get(f"{stack.scoring}/v1/kpis", headers=bearer).status_code == 200
    signed = httpx.post(f"{stack.scoring}/v1/session",
                        json={"email": person["email"], "password": person["password"]})
    assert signed.status_code == 200, signed.text
    made["session cookie"] = signed.cookies["kpipulse_session"]
    return made


async def columns_containing(engine: AsyncEngine, needle: str) -> list[str]:
    """Every table.column (any text-like type) of the database whose value contains ``needle``."""
    async with engine.connect() as conn:
        rows = (
            await conn.execute(
                text(
                    "SELECT table_name, column_name FROM information_schema.columns "
                    "WHERE table_schema = 'public' AND data_type IN "
                    "('text', 'character varying', 'character', 'json', 'jsonb', 'bytea')"
                )
            )
        ).all()
        assert rows, "no text columns found"
        found = []
        for table_name, column_name in rows:
            value = cast(column(column_name), Text)
            query = sql_select(func.count()).select_from(table(table_name)).where(
                value.contains(needle, autoescape=True)
            )
            if (await conn.execute(query)).scalar_one():
                found.append(f"{table_name}.{column_name}")
        return found


def test_keys_and_secrets_are_stored_hashed_and_never_logged(stack: Stack) -> None:
    made = exercise_with_secrets(stack)
    needles = {**secrets_in_play(stack), **made}
    # Control: the search finds what is there (the hash of a key is stored).
    web_hash = hashlib.sha256(stack.write_keys["web"].encode()).hexdigest()
    assert on_database(stack, lambda e: columns_containing(e, web_hash)) == [
        "ingest_write_keys.key_hash"
    ]

    async def search_all(engine: AsyncEngine) -> dict[str, list[str]]:
        return {
            label: places
            for label, value in needles.items()
            if (places := await columns_containing(engine, value))
        }

    stored = on_database(stack, search_all)
    assert not stored, f"plain secrets stored in the database: {stored}"

    time.sleep(1)  # let the last log lines reach the files
    logs = stack.logs()
    for name, log in logs.items():
        assert len(log.splitlines()) > 3, f"{name} logged almost nothing: {log!r}"
    leaked = [
        f"{label} in the {service} log"
        for label, value in needles.items()
        for service, log in logs.items()
        if value in log
    ]
    assert not leaked, leaked
    # Owner webhook and Slack URLs are secrets too: stored (they are needed to send), never
    # logged (httpx logs URLs; the catalog log line lists what changed).
    urls = [
        value
        for kpi in yaml.safe_load(EXAMPLE_CATALOG.read_text(encoding="utf-8"))
        for owner in kpi.get("owners", [])
        for name, value in owner.items()
        if name in {"webhook_url", "slack_webhook_url"}
    ]
    assert urls, "the example catalog has no owner URLs to look for"
    leaked_urls = [f"{url} in the {service} log" for url in urls
                   for service, log in logs.items() if url in log]
    assert not leaked_urls, leaked_urls
