"""Ingest throughput per ingest CPU-second, beside its two same-run ceilings.

Three processes are measured under the same closed-loop load, interleaved round by round
so that noise from the shared machine hits all of them alike:

* ``kpipulse ingest`` (the real service, acks=all), loaded by ``wrk`` (keep-alive);
* a bare uvicorn/Starlette endpoint that only parses the JSON (the HTTP ceiling);
* raw aiokafka producing the same envelope bytes with the same producer settings and
  the same number of requests in flight (the Kafka-client ceiling).

CPU is the process's utime+stime from /proc over the measured window; figures are the
median over rounds. Usage: ``python -m bench.ingest [--seconds 8] [--rounds 3]``.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from typing import Any

import httpx
import orjson

from bench import wrk
from bench.common import (
    LOGS,
    RESULTS,
    BenchStack,
    Service,
    free_port,
    machine,
    median,
    ratio,
    write_result,
)
from bench.events import envelope_bytes, generated

TARGETS = {
    "batch_events_per_cpu_s": 50_000,
    "batch_ratio_to_raw": 0.6,
    "single_requests_per_cpu_s": 5_000,
    "single_ratio_to_bare": 0.5,
}


def _prepare(batch: int) -> dict[str, Any]:
    """Body files for wrk and the matching envelope records for the raw producer."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    events = generated(40 * batch, sources=("web",))
    single = RESULTS / "ingest-single.jsonl"
    single.write_bytes(b"\n".join(orjson.dumps(e) for e in events[:4000]) + b"\n")
    batches = RESULTS / "ingest-batch.jsonl"
    batches.write_bytes(
        b"\n".join(
            orjson.dumps({"batch": events[i : i + batch]}) for i in range(0, len(events), batch)
        )
        + b"\n"
    )
    records = RESULTS / "ingest-records.tsv"
    with records.open("wb") as out:
        for event in events:
            key, value = envelope_bytes(event)
            out.write(key + b"\t" + value + b"\n")
    sizes = [len(orjson.dumps(e)) for e in events]
    return {
        "single": single,
        "batch": batches,
        "records": records,
        "mean_event_json_bytes": sum(sizes) / len(sizes),
        "batch_body_bytes": batches.stat().st_size // max(1, len(events) // batch),
    }


def _measure_http(svc: Service, lua: Any, connections: int, seconds: float,
                  per_request: int) -> dict[str, float]:
    url = f"http://127.0.0.1:{svc.port}/v1/events"
    wrk.run(url, lua, connections=connections, seconds=2)  # warm-up
    cpu0 = svc.cpu()
    result = wrk.run(url, lua, connections=connections, seconds=seconds)
    cpu = svc.cpu() - cpu0
    if result.non_2xx or result.socket_errors:
        print(f"  warning: {svc.name}: {result.non_2xx} non-2xx, "
              f"{result.socket_errors} socket errors", file=sys.stderr)
    return {
        "requests": result.ok,
        "events": result.ok * per_request,
        "cpu_s": cpu,
        "wall_s": result.seconds,
        "requests_per_cpu_s": result.ok / cpu,
        "events_per_cpu_s": result.ok * per_request / cpu,
        "events_per_s": result.ok * per_request / result.seconds,
        "cpu_share": cpu / result.seconds,
        "p50_ms": result.p50_ms,
        "p99_ms": result.p99_ms,
        "errors": result.non_2xx + result.socket_errors,
    }


def _measure_raw(records: Any, topic: str, per_request: int, concurrency: int,
                 seconds: float, api: str = "send") -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, "-m", "bench.rawproduce", str(records), topic, str(per_request),
         str(concurrency), "2", str(seconds), api],
        capture_output=True, text=True, check=False, timeout=seconds + 120,
    )
    if done.returncode != 0:
        raise RuntimeError(f"raw producer ({api}) failed: {done.stderr[-3000:]}")
    raw = orjson.loads(done.stdout.strip().splitlines()[-1])
    return {
        "events": raw["records"],
        "cpu_s": raw["cpu_s"],
        "wall_s": raw["wall_s"],
        "events_per_cpu_s": raw["records"] / raw["cpu_s"],
        "requests_per_cpu_s": raw["records"] / per_request / raw["cpu_s"],
        "events_per_s": raw["records"] / raw["wall_s"],
        "cpu_share": raw["cpu_s"] / raw["wall_s"],
    }


def _summary(rounds: list[dict[str, dict[str, float]]]) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for name in rounds[0]:
        out[name] = {
            metric: median([r[name][metric] for r in rounds]) for metric in rounds[0][name]
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--single-connections", type=int, default=32)
    parser.add_argument("--batch-connections", type=int, default=8)
    parser.add_argument("--modes", default="single,batch", help="e.g. 'batch' to profile one")
    args = parser.parse_args()
    if not wrk.available():
        sys.exit("wrk is needed: apt-get install wrk")

    files = _prepare(args.batch)
    with BenchStack("ingest") as stack:
        key = stack.write_key("web")
        ingest = stack.service("ingest", port_setting="KPIPULSE_INGEST__HTTP__PORT")
        ingest.start()
        bare_port = free_port()
        bare = Service(
            "bare", [sys.executable, "-m", "bench.bare_http", str(bare_port)], stack.env,
            bare_port, log_path=LOGS / f"{stack.database}-bare.log",
        )
        stack.services.append(bare)
        bare.start()
        ingest.wait_healthy()
        bare.wait_healthy()
        _check_ingest(ingest.port, key)
        lua = {
            (who, mode): wrk.script(
                files[mode], key if who == "ingest" else None,
                RESULTS / f"ingest-{who}-{mode}.lua",
            )
            for who in ("ingest", "bare")
            for mode in ("single", "batch")
        }
        modes = {
            name: shape
            for name, shape in {
                "single": (1, args.single_connections),
                "batch": (args.batch, args.batch_connections),
            }.items()
            if name in args.modes.split(",")
        }
        rounds: dict[str, list[dict[str, dict[str, float]]]] = {mode: [] for mode in modes}
        for number in range(args.rounds):
            for mode, (per_request, conns) in modes.items():
                print(f"round {number + 1}/{args.rounds}, {mode} …", flush=True)
                measured = {
                    "ingest": _measure_http(ingest, lua["ingest", mode], conns, args.seconds,
                                            per_request),
                    "bare_http": _measure_http(bare, lua["bare", mode], conns, args.seconds,
                                               per_request),
                    "raw_aiokafka": _measure_raw(files["records"], stack.topics["events"],
                                                 per_request, conns, args.seconds),
                    # The client's cheapest path at the same concurrency: one sender
                    # merging the requests into send_batch calls, as ingest does.
                    "raw_aiokafka_send_batch": _measure_raw(
                        files["records"], stack.topics["events"], per_request, conns,
                        args.seconds, api="batch",
                    ),
                }
                rounds[mode].append(measured)
                time.sleep(1)

    if len(modes) < 2:
        print(orjson.dumps({m: _summary(r) for m, r in rounds.items()},
                           option=orjson.OPT_INDENT_2).decode())
        return  # a partial run (profiling) is not a result
    single, batch = _summary(rounds["single"]), _summary(rounds["batch"])

    def to_raw(mode: dict[str, dict[str, float]], raw: str) -> float:
        return ratio(mode["ingest"]["events_per_cpu_s"], mode[raw]["events_per_cpu_s"])

    batch_to_send = to_raw(batch, "raw_aiokafka")
    batch_to_batch_api = to_raw(batch, "raw_aiokafka_send_batch")
    figures = {
        "single_requests_per_cpu_s": single["ingest"]["requests_per_cpu_s"],
        "single_ratio_to_bare": ratio(single["ingest"]["requests_per_cpu_s"],
                                      single["bare_http"]["requests_per_cpu_s"]),
        "single_ratio_to_raw": to_raw(single, "raw_aiokafka"),
        "single_ratio_to_raw_batch_api": to_raw(single, "raw_aiokafka_send_batch"),
        "batch_events_per_cpu_s": batch["ingest"]["events_per_cpu_s"],
        # Ingest produces with send_batch, so the honest ceiling is the raw client on
        # that same path; the ratio to per-record send() is reported beside it, and
        # the target is judged on the stricter of the two.
        "batch_ratio_to_raw": min(batch_to_send, batch_to_batch_api),
        "batch_ratio_to_raw_send": batch_to_send,
        "batch_ratio_to_raw_batch_api": batch_to_batch_api,
        "batch_ratio_to_bare": ratio(batch["ingest"]["events_per_cpu_s"],
                                     batch["bare_http"]["events_per_cpu_s"]),
    }
    met = {name: figures[name] >= target for name, target in TARGETS.items()}
    result = {
        "machine": machine(),
        "settings": {
            "seconds": args.seconds,
            "rounds": args.rounds,
            "batch_size": args.batch,
            "single_connections": args.single_connections,
            "batch_connections": args.batch_connections,
            "load_generator": "wrk (1 thread, keep-alive)",
            "mean_event_json_bytes": files["mean_event_json_bytes"],
            "batch_body_bytes": files["batch_body_bytes"],
            "producer": "acks=all, idempotent, linger_ms=5, max_batch_size=512 KiB; ingest "
                        "and raw batch API: one sender merging concurrent requests",
        },
        "single": single,
        "batch": batch,
        "rounds": rounds,
        "figures": figures,
        "targets": TARGETS,
        "met": met,
    }
    path = write_result("ingest", result)
    print(
        f"single: ingest {figures['single_requests_per_cpu_s']:,.0f} req/CPU-s "
        f"(bare {single['bare_http']['requests_per_cpu_s']:,.0f}; ratio "
        f"{figures['single_ratio_to_bare']:.2f}, target ≥ 5,000 and ≥ 0.5)\n"
        f"batch:  ingest {figures['batch_events_per_cpu_s']:,.0f} events/CPU-s "
        f"(raw aiokafka send() {batch['raw_aiokafka']['events_per_cpu_s']:,.0f}, ratio "
        f"{figures['batch_ratio_to_raw_send']:.2f}; raw send_batch "
        f"{batch['raw_aiokafka_send_batch']['events_per_cpu_s']:,.0f}, ratio "
        f"{figures['batch_ratio_to_raw_batch_api']:.2f}; target ≥ 50,000 and ≥ 0.6 "
        f"of the stricter)\n"
        f"targets met: {met}\nwritten to {path}"
    )


def _check_ingest(port: int | None, key: str) -> None:
    """One real request first: the load must be 200s, not 4xx answered fast."""
    events = generated(2, sources=("web",))
    response = httpx.post(
        f"http://127.0.0.1:{port}/v1/events",
        content=orjson.dumps({"batch": events}),
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
        timeout=10,
    )
    body = response.json()
    if response.status_code != 200 or len(body.get("accepted", [])) != 2:
        raise RuntimeError(f"ingest refused the bench events: {response.status_code} {body}")


if __name__ == "__main__":
    main()
