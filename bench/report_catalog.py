"""The catalog-scaling and footprint part of ``docs/benchmarks.md``, and ``docs/catalog.png``.

``bench/report.py`` includes this section when it renders the whole page; ``python -m
bench.report_catalog`` renders only this section (and the notes after it) into the
existing page, for a machine that has the catalog results but not the others.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from bench.common import REPO, read_result

DOC = REPO / "docs" / "benchmarks.md"
PLOT = REPO / "docs" / "catalog.png"
TITLE = "## Scaling with the catalog (`make bench-catalog`, `bench/catalog.py`)"
NOTES_START = "## Reading these figures"
MIB = 1024 * 1024


def _n(value: float | None, digits: int = 0) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if math.isinf(value):
        return "> window"  # a round in which no request completed
    return f"{value:,.{digits}f}"


def _scoring_rows(label: str, runs: list[dict[str, Any]]) -> list[str]:
    rows = []
    for r in runs:
        reads = r["reads"]
        rows.append(
            f"| {label} | {r['kpis']:,} | {_n(100 * r['idle_cpu_share'], 1)} % | "
            f"{_n(r['cpu_ms_per_refresh'], 1)} | {_n(r['published_per_s'], 1)} | "
            f"{_n(100 * r['on_time'])} % | "
            + " | ".join(
                f"{_n(reads[name]['p50_ms'], 1)} / {_n(reads[name]['p99_ms'], 1)}"
                for name in ("list", "detail", "scorecard")
            )
            + f" | {_n(r['rss_idle_bytes'] / MIB)} / {_n(r['rss_after_reads_bytes'] / MIB)} |"
        )
    return rows


def _dev_rows(label: str, runs: list[dict[str, Any]]) -> list[str]:
    return [
        f"| {label} | {r['kpis']:,} | {_n(100 * r['idle_cpu_share'], 1)} % | "
        f"{_n(r['list_p50_ms'], 1)} / {_n(r['list_p99_ms'], 1)} | "
        f"{_n(r['rss_idle_bytes'] / MIB)} / {_n(r['rss_after_reads_bytes'] / MIB)} |"
        for r in runs
    ]


def section(catalog: dict[str, Any] | None, footprint: dict[str, Any] | None) -> list[str]:
    lines = [TITLE, ""]
    if catalog is None:
        lines += ["Not run.", ""]
    else:
        st = catalog["settings"]
        lines += [
            "Catalogs of the example catalog's mix (`catalog/example.yaml` of "
            f"`{catalog.get('example_from', 'HEAD')}` repeated, keys suffixed); a day of "
            f"generated events ({st['events']:,}) folded first, then "
            f"{_n(st['settle'])} s to settle and {_n(st['idle'])} s idle. Reads: wrk GET, 2 "
            f"connections, {st['rounds']} interleaved round(s) of {_n(st['read_seconds'])} s "
            "per endpoint, medians of the rounds. *before* is the code of "
            f"`{catalog.get('baseline') or '-'}` run by the same harness right before *after* "
            "at each size; \"> window\" = a round in which no request completed. "
            f"Machine load average at the end: "
            f"{catalog['machine']['load_average']} (2 cores, shared with other sessions: "
            "compare before with after of the same run).",
            "",
            "| Code | KPIs | idle CPU (of a core) | CPU ms per refresh | refreshes/s | on time "
            "| list p50 / p99 ms | detail p50 / p99 ms | scorecard p50 / p99 ms "
            "| RSS idle / after reads MiB |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for label, runs in catalog["runs"].items():
            lines += _scoring_rows(label, runs["scoring"])
        dev = {label: runs["dev"] for label, runs in catalog["runs"].items() if runs["dev"]}
        if dev:
            lines += [
                "",
                "`kpipulse dev` (one process: ingest, scoring, alerts; SQLite and the embedded "
                "log) on the same catalogs:",
                "",
                "| Code | KPIs | idle CPU | list p50 / p99 ms | RSS idle / after reads MiB |",
                "|---|---:|---:|---:|---:|",
            ]
            for label, runs_ in dev.items():
                lines += _dev_rows(label, runs_)
        lines += ["", "![costs against catalog size](catalog.png)", "",
                  "A point missing from the plot: no request answered within the window.", ""]
    lines += ["### Footprint of the whole stack", ""]
    if footprint is None:
        return [*lines, "Not run.", ""]
    st = footprint["settings"]
    phases = {"at rest": footprint["at_rest"]}
    if "under_load" in footprint:
        phases[f"{_n(st['rate'])} events/s"] = footprint["under_load"]
    lines += [
        "Kafka (one KRaft broker, a JVM with `-Xms256m -Xmx768m`), PostgreSQL (postmaster "
        "and backends, PSS) and the three services with the example catalog, over "
        f"{_n(st['seconds'])} s at rest, then under an open-loop load of single-event "
        f"requests ({footprint.get('load', {}).get('generator', 'vegeta')}, its own CPU "
        "shown apart):",
        "",
        "| Process | " + " | ".join(f"CPU {p} (of a core) | MiB {p}" for p in phases) + " |",
        "|---|" + "---:|---:|" * len(phases),
    ]
    names = list(next(iter(phases.values())))
    extra = [n for p in phases.values() for n in p if n not in names]
    for name in [*names, *extra]:
        cells = []
        for found in phases.values():
            p = found.get(name)
            cells += [f"{_n(100 * p['cpu_share'], 1)} %", _n(p["memory_bytes"] / MIB)] if p \
                else ["-", "-"]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    totals = []
    for found in phases.values():
        stack = [p for name, p in found.items() if name != "load generator"]
        totals += [f"**{_n(100 * sum(p['cpu_share'] for p in stack), 1)} %**",
                   f"**{_n(sum(p['memory_bytes'] for p in stack) / MIB)}**"]
    lines += ["| **the stack** | " + " | ".join(totals) + " |", ""]
    if "load" in footprint:
        answered = footprint["load"]
        latency = answered["post_200_ms"]
        lines += [
            f"Under load, {_n(100 * answered['success_ratio'], 1)} % of the requests were "
            f"answered 200, POST→200 p50 {_n(latency['p50'], 1)} ms, p99 "
            f"{_n(latency['p99'], 1)} ms.",
            "",
        ]
    return lines


def plot(catalog: dict[str, Any] | None, path: Path) -> bool:
    if catalog is None:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (lat, cpu) = plt.subplots(1, 2, figsize=(11, 4.5), dpi=110)
    for label, runs in catalog["runs"].items():
        style = "--" if label == "before" else "-"
        points = runs["scoring"]
        x = [r["kpis"] for r in points]
        for name in ("list", "detail", "scorecard"):
            lat.plot(x, [r["reads"][name]["p99_ms"] for r in points], "o" + style,
                     label=f"{name} p99 ({label})")
        cpu.plot(x, [100 * r["idle_cpu_share"] for r in points], "o" + style,
                 label=f"scoring idle CPU % ({label})")
    for axis, ylabel in ((lat, "latency (ms)"), (cpu, "% of a core")):
        axis.set_xscale("log")
        axis.set_yscale("log")
        axis.set_xlabel("KPIs in the catalog")
        axis.set_ylabel(ylabel)
        axis.grid(True, which="both", alpha=0.3)
        axis.legend(fontsize=7)
    lat.axhline(100, color="grey", linewidth=0.8)
    cpu.axhline(5, color="grey", linewidth=0.8)
    fig.suptitle("Scoring's costs against the catalog's size (targets in grey, at 1,000 KPIs)")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return True


def main() -> None:
    catalog, footprint = read_result("catalog"), read_result("footprint")
    plot(catalog, PLOT)
    page = DOC.read_text()
    # The page before this section (or before the notes, where it goes), then the section
    # and the current notes; what followed the notes (the latency plot) is kept.
    head = page.split(TITLE, 1)[0] if TITLE in page else page.split(NOTES_START, 1)[0]
    tail = page[page.rindex("![latency") :] if "![latency" in page else ""
    notes = (REPO / "bench" / "NOTES.md").read_text().rstrip()
    DOC.write_text("\n".join([head.rstrip() + "\n", *section(catalog, footprint), notes, "",
                              tail]).rstrip() + "\n")
    print(f"written the catalog section of {DOC} and {PLOT}")


if __name__ == "__main__":
    main()
