"""Starter catalogs, one per department of the guide: ``kpipulse catalog init``.

Each holds one KPI for each of the guide's six essential kinds (financial, potential
customers, conversion, team success, satisfaction with the product, satisfaction with
after-sales service), marked ``# kind: ...`` in the file, money in VND.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Final

from shared.settings import Settings

_HERE: Final = Path(__file__).resolve().parent
TEMPLATES: Final = ("marketing", "customer_service", "hr", "sales")
KINDS: Final = (
    "financial",
    "leads",
    "conversion",
    "team",
    "product_satisfaction",
    "service_satisfaction",
)


def template_text(name: str) -> str:
    if name not in TEMPLATES:
        raise KeyError(name)
    return (_HERE / f"{name}.yaml").read_text(encoding="utf-8")


def register(actions: Any) -> None:
    """``catalog init`` among the ``catalog`` actions."""
    init = actions.add_parser("init", help="write a starter catalog for a department")
    init.add_argument("--template", required=True, choices=TEMPLATES)
    init.add_argument("file", type=Path, nargs="?", help="where to write it (default: stdout)")
    init.add_argument("--force", action="store_true", help="overwrite an existing file")
    init.set_defaults(run=_init)


def _init(args: argparse.Namespace, _settings: Settings) -> int:
    text = template_text(args.template)
    if args.file is None:
        sys.stdout.write(text)
        return 0
    if args.file.exists() and not args.force:
        print(f"{args.file}: exists; pass --force to overwrite it", file=sys.stderr)
        return 1
    args.file.write_text(text, encoding="utf-8")
    print(f"{args.file}: {args.template} starter catalog written; check it with "
          f"`kpipulse catalog check {args.file}`")
    return 0
