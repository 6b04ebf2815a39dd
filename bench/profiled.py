"""Run a ``kpipulse`` service under a profiler and save the profile on exit.

The harness uses this instead of ``kpipulse <service>`` for the services named in
``BENCH_PROFILE`` (comma-separated), e.g. ``BENCH_PROFILE=ingest make bench-ingest``.
``BENCH_PROFILER=cprofile`` (default) measures CPU time per function (cProfile with a
process-time clock: idle waits cost nothing, unlike a wall-clock profile of an event
loop); ``BENCH_PROFILER=pyinstrument`` samples wall time with low overhead. Results go
to ``.cache/bench/profile-<service>-<pid>.{txt,pstats,html}``.
"""

from __future__ import annotations

import cProfile
import io
import os
import pstats
import signal
import sys
import time
from types import FrameType

from bench.common import RESULTS


def _exit(_signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(0)


def main() -> int:
    from services.cli import main as cli_main

    name = sys.argv[1]
    # uvicorn re-raises SIGTERM after its graceful shutdown; without a handler of our
    # own the process would die before the profile is written.
    signal.signal(signal.SIGTERM, _exit)
    RESULTS.mkdir(parents=True, exist_ok=True)
    base = RESULTS / f"profile-{name}-{os.getpid()}"
    if os.environ.get("BENCH_PROFILER", "cprofile") == "pyinstrument":
        from pyinstrument import Profiler

        sampler = Profiler(interval=0.001, async_mode="disabled")
        sampler.start()
        try:
            return cli_main([name, *sys.argv[2:]])
        finally:
            sampler.stop()
            base.with_suffix(".txt").write_text(sampler.output_text(unicode=True, color=False))
            base.with_suffix(".html").write_text(sampler.output_html())
    profile = cProfile.Profile(time.process_time)
    profile.enable()
    try:
        return cli_main([name, *sys.argv[2:]])
    finally:
        profile.disable()
        profile.dump_stats(str(base.with_suffix(".pstats")))
        out = io.StringIO()
        stats = pstats.Stats(profile, stream=out).strip_dirs()
        stats.sort_stats("cumulative").print_stats(60)
        stats.sort_stats("tottime").print_stats(40)
        base.with_suffix(".txt").write_text(out.getvalue())


if __name__ == "__main__":
    sys.exit(main())
