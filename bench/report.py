"""Render ``.cache/bench/*.json`` into ``docs/benchmarks.md`` and ``docs/latency.png``.

Usage: ``python -m bench.report``. Missing results are listed as not run.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from bench import report_catalog
from bench.common import REPO, machine, read_result

DOC = REPO / "docs" / "benchmarks.md"
PLOT = REPO / "docs" / "latency.png"


def _n(value: float, digits: int = 0) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:,.{digits}f}"


def _ok(met: bool) -> str:
    return "met" if met else "**missed**"


# Targets of the first round stated as ratios to raw client libraries, or as single
# requests per CPU-second, were retired (issue 21): shown for information, never judged.
RETIRED = "information (retired target)"


def _machine(found: dict[str, Any]) -> list[str]:
    pk = ", ".join(f"{k} {v}" for k, v in found.get("packages", {}).items())
    return [
        "## Machine",
        "",
        f"- Date: {found['date']}",
        f"- CPU: {found['nproc']} x {found['cpu_model']} (shared, noisy: every figure is a "
        "ratio against a baseline measured in the same run, or a median over rounds)",
        f"- Memory: {found['memory_gib']} GiB; kernel {found['kernel']}",
        f"- Python {found['python']}, Apache Kafka {found['kafka']} (KRaft, one broker, "
        f"replication 1), PostgreSQL {found['postgres']}",
        f"- Packages: {pk}",
        f"- Load average when the result was written: {found.get('load_average', '?')} "
        "(other sessions share the machine; wall-clock latencies suffer most)",
        "",
    ]


def _ingest(r: dict[str, Any]) -> list[str]:
    s, b, f, met = r["single"], r["batch"], r["figures"], r["met"]
    st = r["settings"]
    sb = b.get("raw_aiokafka_send_batch")
    lines = [
        "## Ingest (`make bench-ingest`, `bench/ingest.py`)",
        "",
        f"Closed loop with wrk (1 thread, keep-alive): {st['single_connections']} connections "
        f"for single events, {st['batch_connections']} for batches of {st['batch_size']} "
        f"(≈{_n(st['batch_body_bytes'] / 1024)} KiB bodies, mean event "
        f"{_n(st['mean_event_json_bytes'])} B); {st['rounds']} interleaved rounds of "
        f"{_n(st['seconds'])} s, medians. CPU = utime+stime of the measured process over "
        f"the window. Producer: {st['producer']}.",
        "",
        "| Mode | Process | per CPU-second | wall rate | CPU share | p50 / p99 |",
        "|---|---|---:|---:|---:|---:|",
        f"| single | **ingest** | {_n(s['ingest']['requests_per_cpu_s'])} req | "
        f"{_n(s['ingest']['events_per_s'])} req/s | {_n(s['ingest']['cpu_share'], 2)} | "
        f"{_n(s['ingest']['p50_ms'], 1)} / {_n(s['ingest']['p99_ms'], 1)} ms |",
        f"| single | bare uvicorn/Starlette (HTTP ceiling) | "
        f"{_n(s['bare_http']['requests_per_cpu_s'])} req | {_n(s['bare_http']['events_per_s'])}"
        f" req/s | {_n(s['bare_http']['cpu_share'], 2)} | {_n(s['bare_http']['p50_ms'], 1)} / "
        f"{_n(s['bare_http']['p99_ms'], 1)} ms |",
        f"| single | raw aiokafka `send()`, 1 record per request | "
        f"{_n(s['raw_aiokafka']['events_per_cpu_s'])} rec | "
        f"{_n(s['raw_aiokafka']['events_per_s'])} rec/s | {_n(s['raw_aiokafka']['cpu_share'], 2)}"
        " | - |",
        f"| batch | **ingest** | {_n(b['ingest']['events_per_cpu_s'])} events | "
        f"{_n(b['ingest']['events_per_s'])} events/s | {_n(b['ingest']['cpu_share'], 2)} | "
        f"{_n(b['ingest']['p50_ms'], 1)} / {_n(b['ingest']['p99_ms'], 1)} ms |",
        f"| batch | raw aiokafka `send()` per record (Kafka-client ceiling) | "
        f"{_n(b['raw_aiokafka']['events_per_cpu_s'])} events | "
        f"{_n(b['raw_aiokafka']['events_per_s'])} events/s | "
        f"{_n(b['raw_aiokafka']['cpu_share'], 2)} | - |",
    ]
    if sb:
        lines.append(
            f"| batch | raw aiokafka `create_batch`/`send_batch`, one merging sender | "
            f"{_n(sb['events_per_cpu_s'])} events | {_n(sb['events_per_s'])} events/s | "
            f"{_n(sb['cpu_share'], 2)} | - |"
        )
    lines += [
        f"| batch | bare uvicorn/Starlette (HTTP ceiling) | "
        f"{_n(b['bare_http']['events_per_cpu_s'])} events | "
        f"{_n(b['bare_http']['events_per_s'])} events/s | {_n(b['bare_http']['cpu_share'], 2)}"
        f" | {_n(b['bare_http']['p50_ms'], 1)} / {_n(b['bare_http']['p99_ms'], 1)} ms |",
        "",
        "| Target | Measured | Result |",
        "|---|---:|---|",
        f"| batched ≥ 50,000 events per CPU-s | {_n(f['batch_events_per_cpu_s'])} | "
        f"{_ok(met['batch_events_per_cpu_s'])} |",
        f"| batched / raw aiokafka (the stricter of `send()` "
        f"{_n(f.get('batch_ratio_to_raw_send', f['batch_ratio_to_raw']), 2)} and "
        f"`send_batch` {_n(f.get('batch_ratio_to_raw_batch_api', float('nan')), 2)}; was ≥ 0.6)"
        f" | {_n(f['batch_ratio_to_raw'], 2)} | {RETIRED} |",
        f"| single requests per CPU-s (was ≥ 5,000) | {_n(f['single_requests_per_cpu_s'])} | "
        f"{RETIRED} |",
        f"| single / the bare endpoint (was ≥ 0.5) | {_n(f['single_ratio_to_bare'], 2)} | "
        f"{RETIRED} |",
        "",
    ]
    return lines


def _scoring(r: dict[str, Any]) -> list[str]:
    f, met, sc = r["figures"], r["met"], r["scorer"]
    raw, rd = r["raw_aiokafka"], r["raw_aiokafka_decode"]
    lines = [
        "## Scoring (`make bench-scoring`, `bench/scoring.py`)",
        "",
        f"{_n(r['settings']['events'])} generator events pre-filled into a private topic "
        f"({r['settings']['partitions']} partitions); the scorer runs the example catalog "
        "against a fresh database. Steady state = from the first commit to the last (start-up "
        "excluded; the figure including start-up is given too).",
        "",
        "| Process | events per CPU-s | events/s (wall) |",
        "|---|---:|---:|",
        f"| raw aiokafka consumption (ceiling) | {_n(raw['events_per_cpu_s'])} | "
        f"{_n(raw['events_per_s'])} |",
        f"| raw aiokafka + `EventEnvelope` decoding | {_n(rd['events_per_cpu_s'])} | "
        f"{_n(rd['events_per_s'])} |",
        f"| **scorer**, folded & committed (steady) | {_n(sc['events_per_cpu_s'])} | "
        f"{_n(sc['events_per_s'])} |",
        f"| scorer including start-up | {_n(sc['events_per_cpu_s_from_start'])} | "
        f"{_n(sc['committed'] / sc['wall_s_from_start'])} |",
        "",
        f"PostgreSQL used {_n(sc['postgres_cpu_s'], 1)} CPU-s during the catch-up (all "
        f"backends), the scorer {_n(sc['cpu_s_from_start'], 1)}.",
        "",
        "Latency, open loop, Kafka timestamp → offset committed in Postgres (10 ms polls):",
        "",
        "| Offered events/s | achieved | share of max | p50 ms | p90 ms | p99 ms | max ms "
        "| scorer batches: mean events, mean ms | drained |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for p in r["latency"]:
        batches = p.get("scorer_batches")
        shape = (
            f"{_n(batches['mean_events'])}, {_n(batches['mean_ms'])}" if batches else "—"
        )
        lines.append(
            f"| {_n(p['offered_rate'])} | {_n(p['achieved_rate'])} | "
            f"{p['fraction_of_max']:.0%} | {_n(p['p50_ms'])} | "
            f"{_n(p['p90_ms'])} | {_n(p['p99_ms'])} | {_n(p['max_ms'])} | {shape} | "
            f"{'yes' if p['drained'] else 'no'} |"
        )
    lines += [
        "",
        "| Target | Measured | Result |",
        "|---|---:|---|",
        f"| ≥ 50,000 events per CPU-s | {_n(f['events_per_cpu_s'])} | "
        f"{_ok(met['events_per_cpu_s'])} |",
        f"| scorer / raw consumption (was ≥ 0.5) | {_n(f['ratio_to_raw'], 3)} | {RETIRED} |",
        f"| p99 ≤ 250 ms at half max ({_n(f['max_rate'] / 2)} events/s) | "
        f"{_n(f['p99_ms_at_half_max'])} ms | {_ok(met['p99_ms_at_half_max'])} |",
        "",
    ]
    return lines


def _alerts(r: dict[str, Any] | None) -> list[str]:
    lines = ["## Alert latency (`make bench-alerts`, `bench/alerts_latency.py`)", ""]
    if r is None or "skipped" in r:
        why = "not run" if r is None else r["skipped"]
        return [*lines, f"Not measured: {why}.", ""]
    return [
        *lines,
        f"{r['settings']['probes']} probe KPIs breached and recovered in turn for "
        f"{_n(r['settings']['seconds'])} s, hold-down 0, no background load; email received "
        "by an aiosmtpd server in the bench process.",
        "",
        "| Episodes | p50 ms | p99 ms | max ms | p99 from POST sent | resolve p99 | timeouts |",
        "|---:|---:|---:|---:|---:|---:|---:|",
        f"| {r['episodes']} | {_n(r['p50_ms'])} | {_n(r['p99_ms'])} | {_n(r['max_ms'])} | "
        f"{_n(r['p99_from_post_ms'])} | {_n(r['resolved_p99_ms'])} | {r['timeouts']} |",
        "",
        f"Target p99 ≤ 2,000 ms from ingest's 200 to the email: {_ok(r['met']['p99_ms'])}.",
        "",
    ]


def _e2e(r: dict[str, Any] | None) -> list[str]:
    lines = ["## End to end (`make bench-e2e`, `bench/e2e.py`)", ""]
    if r is None:
        return [*lines, "Not run.", ""]
    st, m = r["settings"], r["machine"]
    lines += [
        f"Measured {m['date']} on {m['nproc']} x {m['cpu_model']}, Kafka {m['kafka']}, "
        f"PostgreSQL {m['postgres']}.",
        "",
        f"ingest, scoring and alerts as processes on the local Kafka and PostgreSQL. Load: "
        f"{st['generator']}, {_n(st['seconds'])} s per offered rate, every request one event "
        "with its own id, 10 s client timeout. POST→200 from vegeta's results, over the "
        "requests answered 200. POST→visible: a probe event every "
        f"{st['probe_gap_s'][0]:g}-{st['probe_gap_s'][1]:g} s (after the previous one "
        "showed) counted by a probe KPI with `update_every: "
        f"{st['probe_update_every_s']}s`, whose `GET /v1/kpis/{{key}}` is polled every "
        f"{_n(st['poll_ms'])} ms until its value counts the probe; *idle* = no load. "
        "Plot: `docs/latency.png`.",
        "",
        "Until 2026-12-08 this section showed figures from a Python load generator and a "
        "per-event Kafka offset tracker; they were withdrawn because those two competed with "
        "the services for the machine's two cores, so they measured the harness more than "
        "the product.",
        "",
        "| Offered req/s | sent/s | 200/s | success | not 200 | accept queue overflows "
        "| POST→200 p50 / p90 / p99 / max ms | POST→visible p50 / p90 / p99 ms (probes) |",
        "|---:|---:|---:|---:|---|---:|---:|---:|",
    ]
    for p in r["points"]:
        v, a = p["visible_ms"], p.get("post_200_ms")
        visible = (f"{_n(v['p50'])} / {_n(v['p90'])} / {_n(v['p99'])} ({v['n']}"
                   + (f", {v['lost']} not seen in time" if v["lost"] else "") + ")")
        if a is None:
            lines.append(f"| idle | - | - | - | - | {_n(p.get('listen_overflows'))} | - "
                         f"| {visible} |")
            continue
        other = ", ".join(f"{'no answer' if code == '0' else code}: {_n(n)}" for code, n in
                          sorted(p["status_codes"].items()) if code != "200") or "-"
        lines.append(
            f"| {_n(p['offered_rate'])} | {_n(p['sent_rate'])} | {_n(p['ok_rate'])} | "
            f"{p['success_ratio']:.1%} | {other} | {_n(p.get('listen_overflows'))} | "
            f"{_n(a['p50'], 1)} / {_n(a['p90'], 1)} / "
            f"{_n(a['p99'], 1)} / {_n(a['max'], 1)} | {visible} |"
        )
    lines += [
        "",
        "*Accept queue overflows*: connection attempts the kernel dropped during the step "
        "because a listening socket's queue was full (`ListenOverflows`, machine-wide); "
        "vegeta sees them as resets, or as answers delayed by the client's SYN "
        "retransmissions (1 s, then 3 s, ...).",
        "",
        "CPU over each step's window (from the attack's start to vegeta's exit), % of one "
        f"core; the machine has {r['machine']['nproc']} cores. *Harness* = vegeta + the "
        "bench process (probes, polls, the SMTP sink); *others* = the machine's busy time "
        "not accounted to any process named here (other sessions on the shared machine; "
        "0 when the per-process figures, counted in clock ticks, add up to a little more "
        "than the machine's).",
        "",
        "| Offered req/s | window s | vegeta | bench process | **harness** | ingest | scoring "
        "| alerts | Kafka | PostgreSQL | others | machine | load average (1 min) |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for p in r["points"]:
        c = p["cpu_pct_of_core"]
        harness = c.get("vegeta", 0.0) + c["bench"]
        cells = [c.get(k, float("nan")) for k in
                 ("vegeta", "bench")] + [harness] + [c.get(k, float("nan")) for k in
                 ("ingest", "scoring", "alerts", "kafka", "postgres", "others", "machine")]
        shown = [_n(x, 1) for x in cells]
        shown[2] = f"**{shown[2]}**"
        rate = _n(p["offered_rate"]) if p["offered_rate"] else "idle"
        lines.append(f"| {rate} | {_n(p['window_s'], 1)} | " + " | ".join(shown)
                     + f" | {p['load_average']['before'][0]} → "
                       f"{p['load_average']['after'][0]} |")
    return [*lines, ""]


def plot(e2e: dict[str, Any] | None, path: Path) -> bool:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if e2e is None:
        return False
    loaded = [p for p in e2e["points"] if p["offered_rate"] > 0]
    idle = next((p for p in e2e["points"] if p["offered_rate"] == 0), None)
    fig, ax = plt.subplots(figsize=(8, 5), dpi=110)
    x = [p["offered_rate"] for p in loaded]
    for q, style in (("p50", "o-"), ("p99", "o--")):
        ax.plot(x, [p["post_200_ms"][q] for p in loaded], style, color="tab:blue",
                label=f"POST → 200 {q}")
    for q, style in (("p50", "s-"), ("p90", "s-."), ("p99", "s--")):
        ax.plot(x, [p["visible_ms"][q] for p in loaded], style, color="tab:orange",
                label=f"POST → KPI value visible {q}")
    if idle is not None:
        ax.axhline(idle["visible_ms"]["p50"], color="tab:orange", lw=0.8, ls=":",
                   label="POST → visible p50, idle")
    for p in loaded:
        if p["success_ratio"] < 1:
            ax.annotate(f"{p['success_ratio']:.0%} answered 200", (p["offered_rate"],
                        p["post_200_ms"]["p99"]), textcoords="offset points",
                        xytext=(-115, -3), fontsize=8)
    ax.set_xscale("log")
    ax.set_xticks(x, [f"{rate:,.0f}" for rate in x])
    ax.minorticks_off()
    ax.set_yscale("log")
    ax.set_xlabel("offered rate (single-event requests/s, vegeta, open loop)")
    ax.set_ylabel("latency (ms)")
    ax.grid(True, which="both", alpha=0.3)
    ax.set_title("KPI Pulse end to end: latency against offered rate")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return True


def _published(heading: str) -> list[str] | None:
    """The section of the current docs/benchmarks.md whose heading starts with
    ``heading``, up to the next ``## `` heading: a step not run this time (``make
    bench-e2e`` runs one) keeps its published figures rather than turning into "Not run"."""
    if not DOC.exists():
        return None
    lines = DOC.read_text().splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith(heading)), None)
    if start is None:
        return None
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")),
               len(lines))
    return lines[start:end]


def _or_published(rendered: list[str] | None, heading: str) -> list[str]:
    return rendered or _published(heading) or [heading, "", "Not run.", ""]


def main() -> None:
    ingest, scoring = read_result("ingest"), read_result("scoring")
    alerts, e2e = read_result("alerts_latency"), read_result("e2e")
    catalog, footprint = read_result("catalog"), read_result("footprint")
    # The machine section describes the ingest, scoring and alert runs; the end-to-end
    # and catalog sections name their own.
    found = next((r["machine"] for r in (ingest, scoring, alerts) if r and "machine" in r),
                 None)
    lines = [
        "# Benchmarks",
        "",
        "Generated by `make bench` (`python -m bench.report` renders `.cache/bench/*.json`). "
        "Targets are checked here, never by timed assertions in tests. Every throughput "
        "figure is per CPU-second of the measured process (utime+stime from /proc), beside "
        "a ceiling measured in the same run.",
        "",
        *(_machine(found) if found else _published("## Machine") or _machine(machine())),
        *_or_published(_ingest(ingest) if ingest else None, "## Ingest"),
        *_or_published(_scoring(scoring) if scoring else None, "## Scoring"),
        *_or_published(_alerts(alerts) if alerts else None, "## Alert latency"),
        *_or_published(_e2e(e2e) if e2e else None, "## End to end"),
        *_or_published(report_catalog.section(catalog, footprint)
                       if catalog or footprint else None, "## Scaling with the catalog"),
    ]
    report_catalog.plot(catalog, report_catalog.PLOT)
    notes = REPO / "bench" / "NOTES.md"
    if notes.exists():
        lines += [notes.read_text().rstrip(), ""]
    DOC.parent.mkdir(parents=True, exist_ok=True)
    if plot(e2e, PLOT) or PLOT.exists():
        lines += ["![latency against offered rate](latency.png)", ""]
    DOC.write_text("\n".join(lines))
    print(f"written {DOC}" + (f" and {PLOT}" if e2e else ""))


if __name__ == "__main__":
    main()
