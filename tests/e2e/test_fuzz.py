"""Schemathesis against the OpenAPI schemas of the three running services: no 5xx, no crash.

Every operation each service publishes at ``/openapi.json`` is fuzzed with positive
(schema-valid) and negative (schema-violating) data, each example sent with the right
credential (write key or admin token), a wrong one or none, so both the refusals and
the code behind them are exercised. Operations the schema leaves without a body (the
Segment-compatible routes and the provider webhooks read raw JSON) get arbitrary and
event-shaped JSON instead, and webhook deliveries are signed with the stack's secrets
so that the provider mappings behind the signature check are fuzzed too.

``KPIPULSE_FUZZ_EXAMPLES`` sets the examples per operation and generation mode
(default 20, about two minutes for the three services; ``make fuzz`` runs more).
"""

from __future__ import annotations

import os
import time
from typing import Any

import httpx
import orjson
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, Verbosity, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import APIOperation, Case, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok

from shared.contracts.events import SOURCES
from tests.e2e.conftest import SERVICES, Stack
from tests.e2e.signing import SIGNED_WEBHOOKS, signed_headers

EXAMPLES = int(os.environ.get("KPIPULSE_FUZZ_EXAMPLES", "20"))
Operation = APIOperation[Any, Any, Any, Any]
AnyCase = Case[Any]

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300 + EXAMPLES * 30)]

# Values that have broken parsers before: huge and non-ASCII digit strings (int() refuses
# more than 4300 digits, and str.isdigit() accepts "²"), extreme dates and numbers.
HOSTILE: tuple[Any, ...] = (
    "9" * 5000,
    "²",
    "١٢٣",
    "0001-01-01T00:00:00Z",
    "9999-12-31T23:59:59+14:00",
    "2026-02-30T00:00:00Z",
    "NaN",
    "-Infinity",
    "\u0000",
    "\ud7ff\ue000\U0010ffff",
    "' OR 1=1 --",
    1e308,
    -1e308,
    2**63,
    -(2**63),
    18446744073709551615,
    0,
    -1,
    "",
    " ",
)

# Field names the Segment and provider mappings read.
KNOWN_KEYS = (
    "type", "event", "name", "userId", "anonymousId", "groupId", "previousId",
    "messageId", "timestamp", "sentAt", "originalTimestamp", "properties", "traits",
    "context", "integrations", "category", "writeKey", "batch", "revenue", "value",
    "subscriptionType", "eventId", "occurredAt", "objectId", "propertyName",
    "propertyValue", "portalId", "sg_event_id", "email", "id", "time", "detail",
    "subject_id", "data", "account_id", "event_id", "source", "occurred_at",
)

SEGMENT_KINDS = ("track", "page", "screen", "identify", "group", "alias")
TIME_KEYS = {"timestamp", "sentAt", "originalTimestamp", "occurredAt", "time", "occurred_at"}
HOSTILE_TIMES: tuple[Any, ...] = (
    "0001-01-01T00:00:00Z", "9999-12-31T23:59:59+14:00", "2026-02-30T00:00:00Z",
    "2026-01-01T00:00:00", "²", "9" * 5000, "1" * 19, 1e308, -1e308, 0, -1, 2**63,
)

_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30)
    | st.sampled_from(HOSTILE)
)
json_values = st.recursive(
    _scalars,
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=12) | st.sampled_from(KNOWN_KEYS), children, max_size=4),
    max_leaves=12,
)


def _field(name: str) -> st.SearchStrategy[Any]:
    """Values for a known field: mostly plausible for it, hostile or arbitrary otherwise."""
    if name == "type":
        kinds = (*SEGMENT_KINDS, "complaint_received", "ticket.created")
        return st.sampled_from(kinds) | json_values
    if name in TIME_KEYS:
        return st.sampled_from(HOSTILE_TIMES) | json_values
    return json_values


event_like = st.fixed_dictionaries({}, optional={key: _field(key) for key in KNOWN_KEYS})
json_bodies = (
    json_values
    | event_like
    | st.lists(event_like, max_size=3)
    | st.fixed_dictionaries({"batch": st.lists(event_like, max_size=3)}, optional={
        "sentAt": _field("sentAt"), "context": json_values, "writeKey": json_values})
)
# Delivery ids: short, and longer than any column would hold.
MESSAGE_ID_LENGTHS = st.sampled_from((0, 0, 0, 300))

# The credential an example is sent with; "valid" is weighted so the code behind the
# checks gets most of the examples.
AUTH = st.sampled_from(("valid", "valid", "valid", "none", "wrong"))


def _needs_admin(service: str, path: str) -> bool:
    return service != "ingest" or "/admin/" in path


def _credential(stack: Stack, service: str, case: AnyCase, source: str) -> str:
    if _needs_admin(service, case.path):
        return stack.admin_token
    if case.path in {"/v1/events"}:
        return stack.write_keys[source]
    return stack.write_keys["web"]  # the Segment-compatible routes take web keys


def _send_raw_json(
    stack: Stack, service: str, case: AnyCase, body: Any, auth: str, source: str, msg_id: str
) -> httpx.Response:
    """Send ``case`` with a JSON body of our own (its schema declares none), signed if due."""
    base = stack.url(service)
    path = case.formatted_path
    provider = path.removeprefix("/v1/webhooks/").split("/")[0]
    if provider == "mailchimp" and auth == "valid":
        path = f"/v1/webhooks/mailchimp/{stack.secrets.mailchimp}"
    content = orjson.dumps(body)
    headers = {k: v for k, v in case.headers.items() if k.lower() != "authorization"}
    headers["Content-Type"] = "application/json"
    url = f"{base}{path}"
    if path.startswith("/v1/webhooks/") and provider in SIGNED_WEBHOOKS:
        if auth == "valid":
            headers.update(signed_headers(stack.secrets, provider, url, content, msg_id))
        elif auth == "wrong":
            headers.update(signed_headers(stack.secrets, provider, url, content + b" ", msg_id))
    elif not path.startswith("/v1/webhooks/") and auth != "none":
        key = _credential(stack, service, case, source) if auth == "valid" else "kp_web_wrong"
        headers["Authorization"] = f"Bearer {key}"
    return httpx.request(
        case.method, url, params=case.query or None, headers=headers, content=content,
        timeout=15,
    )


def _declares_body(operation: Operation) -> bool:
    return bool(operation.definition.raw.get("requestBody"))


def fuzz_operation(
    stack: Stack, service: str, operation: Operation, mode: GenerationMode
) -> list[str]:
    """Run ``EXAMPLES`` examples against one operation; the failures, described."""
    raw_json = operation.method.upper() in {"POST", "PUT"} and not _declares_body(operation)
    failures: list[str] = []
    counter = iter(range(10**9))

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=False,
        suppress_health_check=list(HealthCheck),
        phases=[Phase.generate, Phase.shrink],
        verbosity=Verbosity.quiet,
        report_multiple_bugs=False,
    )
    @given(
        case=operation.as_strategy(generation_mode=mode),
        auth=AUTH,
        source=st.sampled_from(SOURCES),
        body=json_bodies,
        padding=MESSAGE_ID_LENGTHS,
    )
    def run(case: AnyCase, auth: str, source: str, body: Any, padding: int) -> None:
        if raw_json:
            msg_id = f"fuzz-{os.getpid()}-{next(counter)}-{time.time_ns()}" + "x" * padding
            response: Any = _send_raw_json(stack, service, case, body, auth, source, msg_id)
        else:
            case.headers.pop("Authorization", None)
            if auth == "valid":
                credential = _credential(stack, service, case, source)
                case.headers["Authorization"] = f"Bearer {credential}"
            elif auth == "wrong":
                case.headers["Authorization"] = "Bearer wrong-token-0123456789"
            response = case.call(base_url=stack.url(service), timeout=15)
        case.validate_response(response, checks=[not_a_server_error])

    try:
        run()
    except Unsatisfiable:
        # Nothing in this operation can be made invalid (no parameters, no body): the
        # positive run covered it.
        assert mode is GenerationMode.NEGATIVE, f"{operation.label}: no positive example"
    except (Exception, BaseExceptionGroup) as exc:  # schemathesis' FailureGroup is a base group
        failures.append(f"{service} {operation.label} ({mode.value}): {exc}")
    return failures


def fuzz_service(stack: Stack, service: str) -> tuple[list[str], list[str]]:
    schema = schemathesis.openapi.from_url(f"{stack.url(service)}/openapi.json")
    labels: list[str] = []
    failures: list[str] = []
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), f"{service}: an operation is invalid: {result.err()}"
        operation = result.ok()
        labels.append(operation.label)
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            failures.extend(fuzz_operation(stack, service, operation, mode))
    return labels, failures


def _unhandled_errors(log: str) -> list[str]:
    """Requests that raised out of the app (uvicorn answered 500 for them)."""
    return [line[:2000] for line in log.splitlines() if "Exception in ASGI application" in line]


@pytest.mark.parametrize("service", SERVICES)
def test_no_server_errors_and_no_crash(stack: Stack, service: str) -> None:
    started = time.monotonic()
    labels, failures = fuzz_service(stack, service)
    elapsed = time.monotonic() - started
    assert labels, f"{service} published no operations"
    # No crash: every process still answers, and is still ready (Kafka, database).
    stack.assert_alive()
    ready = httpx.get(f"{stack.url(service)}/readyz", timeout=10)
    assert ready.status_code == 200, ready.text
    log = stack.logs()[service]
    unhandled = _unhandled_errors(log)
    assert not failures, (
        f"{len(failures)} of {len(labels)} {service} operations answered 5xx "
        f"({EXAMPLES} examples each, {elapsed:.0f} s):\n\n" + "\n\n".join(failures)
    )
    assert not unhandled, f"{service} logged unhandled errors:\n" + "\n".join(unhandled[:5])


