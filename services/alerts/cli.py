"""``kpipulse alerts``: run the alerts service."""

from __future__ import annotations

import argparse
from typing import Any

from shared.settings import Settings


def _run(_args: argparse.Namespace, settings: Settings) -> int:
    from services.alerts.__main__ import main

    return main(settings)


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "alerts", help="run the alerts service (consumer, scheduler, delivery, API)"
    )
    parser.set_defaults(run=_run)
