"""Closed-loop HTTP load with ``wrk`` (Debian package ``wrk``), keep-alive connections.

wrk is C and costs far less CPU per request than a Python client, which matters on a
2-core machine where the load generator competes with the process under test. A small
Lua script cycles through pre-built bodies (one per line of a file).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

_LUA = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
{auth}
local bodies = {{}}
for line in io.lines("{path}") do bodies[#bodies + 1] = line end
local i = 0
request = function()
  i = i % #bodies + 1
  return wrk.format(nil, nil, nil, bodies[i])
end
"""


@dataclass(frozen=True)
class WrkResult:
    requests: int
    seconds: float
    non_2xx: int
    socket_errors: int
    p50_ms: float
    p99_ms: float

    @property
    def ok(self) -> int:
        return self.requests - self.non_2xx


def available() -> bool:
    return shutil.which("wrk") is not None


def script(bodies: Path, key: str | None, out: Path) -> Path:
    auth = f'wrk.headers["Authorization"] = "Bearer {key}"' if key else ""
    out.write_text(_LUA.format(auth=auth, path=bodies))
    return out


def run(url: str, lua: Path, *, connections: int, seconds: float, threads: int = 1) -> WrkResult:
    done = subprocess.run(
        [
            "wrk",
            f"-t{threads}",
            f"-c{connections}",
            f"-d{max(1, round(seconds))}s",
            "--timeout",
            "10s",
            "--latency",
            "-s",
            str(lua),
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=seconds + 60,
    )
    return parse(done.stdout)


def get(url: str, *, connections: int, seconds: float, token: str | None = None) -> WrkResult:
    """``GET url`` over ``connections`` keep-alive connections for ``seconds`` (as the
    bearer of ``token``: every read API wants a caller)."""
    auth = ["-H", f"Authorization: Bearer {token}"] if token else []
    done = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--timeout", "30s",
         "--latency", *auth, url],
        capture_output=True,
        text=True,
        check=True,
        timeout=seconds + 90,
    )
    return parse(done.stdout)


def _ms(text: str) -> float:
    found = re.match(r"([\d.]+)(us|ms|s|m)", text)
    if not found:
        return float("nan")
    value, unit = float(found.group(1)), found.group(2)
    return value * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}[unit]


def parse(out: str) -> WrkResult:
    total = re.search(r"(\d+) requests in ([\d.]+)(\w+)", out)
    if not total:
        raise RuntimeError(f"unexpected wrk output:\n{out}")
    unit = total.group(3)
    seconds = float(total.group(2)) * {"s": 1.0, "ms": 0.001, "m": 60.0}.get(unit, 1.0)
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out
    )
    p50 = re.search(r"^\s+50%\s+(\S+)", out, re.M)
    p99 = re.search(r"^\s+99%\s+(\S+)", out, re.M)
    return WrkResult(
        requests=int(total.group(1)),
        seconds=seconds,
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
        socket_errors=sum(int(g) for g in errors.groups()) if errors else 0,
        p50_ms=_ms(p50.group(1)) if p50 else float("nan"),
        p99_ms=_ms(p99.group(1)) if p99 else float("nan"),
    )
