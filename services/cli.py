"""The ``kpipulse`` command: one subcommand per service plus the operator's tools.

Settings are read once here and handed to whatever runs; a bad setting stops the
command with the variable named, before anything starts.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import sys
from collections.abc import Callable

from pydantic import ValidationError

from shared.settings import KafkaSettings, Settings, SettingsError, load_settings

# Each service contributes its subcommands (its process, and its operator tools).
_SERVICE_CLIS: tuple[str, ...] = (
    "services.ingest.cli",
    "services.scoring.cli",
    "services.alerts.cli",
    "services.simulator.cli",
    "services.dev",
    "shared.identity.cli",
)

Command = Callable[[argparse.Namespace, Settings], int]

# Services refuse to start on a database that lacks their migrations.
_NEEDS_SCHEMA = frozenset({"ingest", "scoring", "alerts"})


def _migrate(args: argparse.Namespace, settings: Settings) -> int:
    from shared.db.migrate import downgrade, upgrade

    if args.downgrade:
        downgrade(settings.database.url, args.downgrade)
        print(f"database downgraded to {args.downgrade}")
    else:
        upgrade(settings.database.url)
        print("database schema is up to date")
    return 0


def _topics(args: argparse.Namespace, settings: Settings) -> int:
    from shared.bus.topics import TopicSetupError, ensure_topics

    kafka = settings.kafka
    asked = {
        "partitions": args.partitions,
        "replication_factor": args.replication_factor,
        "min_insync_replicas": args.min_insync_replicas,
    }
    try:
        kafka = KafkaSettings.model_validate(
            kafka.model_dump() | {k: v for k, v in asked.items() if v is not None}
        )
    except ValidationError as exc:
        for error in exc.errors():
            where = "".join(f"--{str(part).replace('_', '-')}: " for part in error["loc"])
            message = error["msg"].removeprefix("Value error, ")
            print(f"kpipulse topics create: {where}{message}", file=sys.stderr)
        return 2
    try:
        states = asyncio.run(ensure_topics(kafka, kafka.topics().all(), timeout_s=args.timeout))
    except TopicSetupError as exc:
        print(f"kpipulse topics create: {exc}", file=sys.stderr)
        return 2
    for state in states:
        print(
            f"{state.name}: {'created' if state.created else 'exists'} ({state.partitions} "
            f"partitions, replication factor {state.replication_factor}, min.insync.replicas "
            f"{state.min_insync_replicas})"
        )
    differing = [s for s in states if s.differences]
    for state in differing:
        print(f"{state.name} differs from the settings: {'; '.join(state.differences)}",
              file=sys.stderr)
    if differing:
        # Existing topics are never altered here: see the README, "Kafka topics".
        print("kpipulse topics create: existing topics left as they are (README: Kafka topics)",
              file=sys.stderr)
        return 1
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kpipulse", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    migrate = sub.add_parser("migrate", help="apply the database migrations")
    migrate.add_argument("--downgrade", metavar="REVISION", help="downgrade instead (e.g. base)")
    migrate.set_defaults(run=_migrate)

    topics = sub.add_parser("topics", help="manage the Kafka topics")
    topics_sub = topics.add_subparsers(dest="action", required=True)
    create = topics_sub.add_parser("create", help="create the topics that are missing")
    create.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for Kafka")
    create.add_argument("--partitions", type=int, help="default: KPIPULSE_KAFKA__PARTITIONS")
    create.add_argument(
        "--replication-factor", type=int,
        help="copies of each partition (production: 3); "
        "default: KPIPULSE_KAFKA__REPLICATION_FACTOR",
    )
    create.add_argument(
        "--min-insync-replicas", type=int,
        help="copies a write waits for (production: 2); "
        "default: KPIPULSE_KAFKA__MIN_INSYNC_REPLICAS",
    )
    create.set_defaults(run=_topics)

    for module in _SERVICE_CLIS:
        importlib.import_module(module).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"kpipulse: {exc}", file=sys.stderr)
        return 2
    run: Command = args.run
    if args.command in _NEEDS_SCHEMA:
        from shared.db.migrate import SchemaOutOfDate, require_current_schema

        try:
            require_current_schema(settings.database.url)
        except SchemaOutOfDate as exc:
            print(f"kpipulse {args.command}: {exc}", file=sys.stderr)
            return 2
    return run(args, settings)


if __name__ == "__main__":
    sys.exit(main())
