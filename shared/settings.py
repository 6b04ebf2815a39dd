"""Settings for every service, read once at start-up and passed down.

Environment variables use the ``KPIPULSE_`` prefix and ``__`` between nested levels,
e.g. ``KPIPULSE_KAFKA__BOOTSTRAP_SERVERS=127.0.0.1:9092``. Nothing imports a settings
object globally: ``load_settings()`` is called in the entry point and the result is
handed to the factories that need it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AwareDatetime,
    BaseModel,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.contracts.events import Source
from shared.contracts.topics import TopicNames


class SettingsError(Exception):
    """A setting is missing or invalid; the message names the environment variable."""


class KafkaSettings(BaseModel):
    bootstrap_servers: str = "127.0.0.1:9092"
    partitions: int = Field(default=6, ge=1, le=1000)
    # Of the topics `kpipulse topics create` makes. One broker (development, tests) takes
    # 1 and 1; production: 3 and 2, so a broker can fail or restart without refusing a
    # write (acks=all waits for min_insync_replicas copies) or losing an acknowledged one.
    replication_factor: int = Field(default=1, ge=1, le=16)
    min_insync_replicas: int = Field(default=1, ge=1, le=16)
    # Producer: acks=all and idempotence are not configurable on purpose, a 2xx must
    # mean the events are durable. Linger trades a few ms of latency for batching.
    linger_ms: int = Field(default=5, ge=0, le=1000)
    request_timeout_ms: int = Field(default=5000, ge=100)
    publish_timeout_s: float = Field(default=5.0, gt=0)
    client_id: str = "kpipulse"
    # Consumer: the client fetches a partition again only once its buffered records were
    # handed out. A fetch answered at once carries the few records that arrived since the
    # last one, waits a whole batch cycle in the buffer, and what arrives meanwhile waits
    # at the broker for the fetch after it. Held at the broker (until fetch_min_bytes are
    # there or fetch_max_wait_ms passed), a fetch carries what arrived during the cycle;
    # best when the wait is about the consumer's batch cycle (bench/fetch_wait.py).
    fetch_max_wait_ms: int = Field(default=50, ge=0, le=10_000)
    fetch_min_bytes: int = Field(default=1024 * 1024, ge=1)
    # Empty in deployments; tests set a unique prefix so runs sharing a broker never
    # read each other's messages.
    topic_prefix: str = Field(default="", pattern=r"^[a-zA-Z0-9._-]*$")

    def topics(self) -> TopicNames:
        return TopicNames.with_prefix(self.topic_prefix)

    @model_validator(mode="after")
    def _enough_replicas(self) -> KafkaSettings:
        if self.min_insync_replicas > self.replication_factor:
            raise ValueError(
                f"KPIPULSE_KAFKA__MIN_INSYNC_REPLICAS ({self.min_insync_replicas}) exceeds "
                f"KPIPULSE_KAFKA__REPLICATION_FACTOR ({self.replication_factor}): no write "
                "could ever be acknowledged"
            )
        return self


class DatabaseSettings(BaseModel):
    url: str = "postgresql+asyncpg://kpipulse:kpipulse@127.0.0.1:5432/kpipulse"
    pool_size: int = Field(default=10, ge=1)
    echo: bool = False

    @field_validator("url")
    @classmethod
    def _async_driver(cls, value: str) -> str:
        if not value.startswith(("postgresql+asyncpg://", "sqlite+aiosqlite://")):
            raise ValueError(
                "must use an async driver: postgresql+asyncpg://… or sqlite+aiosqlite://…"
            )
        return value


class HttpSettings(BaseModel):
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)


class IngestSettings(BaseModel):
    http: HttpSettings = HttpSettings(port=8000)
    max_event_bytes: int = Field(default=64 * 1024, ge=1024)
    max_request_bytes: int = Field(default=1024 * 1024, ge=1024)
    max_batch_events: int = Field(default=2500, ge=1)
    rate_limit_per_second: float = Field(default=2000.0, gt=0)
    rate_limit_burst: int = Field(default=5000, ge=1)
    webhook_tolerance_s: int = Field(default=300, ge=1)
    retry_after_s: int = Field(default=5, ge=1)
    # Write-key lookups are cached this long; a revocation reaches other instances
    # within it (the instance that revoked forgets the key at once).
    key_cache_ttl_s: float = Field(default=10.0, ge=0)
    # Event times are refused beyond this far ahead of the server's clock, and before
    # the earliest instant (the scorer's buckets are not meant for year 9999 or 1).
    max_future_skew_s: int = Field(default=24 * 3600, ge=0)
    earliest_event_time: AwareDatetime = datetime(2000, 1, 1, tzinfo=UTC)
    # Properties, context (any field of an event) nested deeper are refused; well below
    # the depth at which validators and JSON encoders give up.
    max_nesting_depth: int = Field(default=32, ge=1, le=200)
    # A dead letter carries the rejected input's bytes up to this size, then a marker.
    max_dead_letter_bytes: int = Field(default=64 * 1024, ge=1024)
    # Unknown write keys remembered (apart from known ones, which they cannot evict).
    key_cache_negative_entries: int = Field(default=10_000, ge=100)
    # Failed authentications (unknown keys, bad webhook signatures) per client address:
    # a token bucket of this rate and burst, then 429 with Retry-After.
    auth_failures_per_second: float = Field(default=1.0, gt=0)
    auth_failure_burst: int = Field(default=20, ge=1)
    # Per-provider webhook secrets; two may be valid at once during a rotation.
    hubspot_secrets: list[SecretStr] = []
    sendgrid_public_keys: list[str] = []
    mailchimp_secrets: list[SecretStr] = []
    zendesk_secrets: list[SecretStr] = []
    # Standard Webhooks: one list of secrets per source, e.g. {"crm": ["whsec_…"]}. The
    # source is in the URL, which the signature does not cover, so a secret may serve
    # one source only.
    standard_webhook_secrets: dict[Source, list[SecretStr]] = {}

    @field_validator("standard_webhook_secrets", mode="before")
    @classmethod
    def _per_source(cls, value: object) -> object:
        if isinstance(value, list):
            raise ValueError(
                "must map each source to its own secrets, e.g. {\"crm\": [\"whsec_...\"]}: "
                "the source in the URL is not signed, so one secret must not serve several"
            )
        return value

    @model_validator(mode="after")
    def _one_source_per_secret(self) -> IngestSettings:
        owners: dict[str, str] = {}
        for source, secrets in self.standard_webhook_secrets.items():
            for secret in secrets:
                other = owners.setdefault(secret.get_secret_value(), source)
                if other != source:
                    raise ValueError(
                        f"standard_webhook_secrets: one secret serves {other!r} and "
                        f"{source!r}; give each source its own"
                    )
        return self


class ScoringSettings(BaseModel):
    http: HttpSettings = HttpSettings(port=8001)
    group_id: str = "kpipulse-scoring"
    # The catalog file applied at every start; it manages the KPIs it names and no
    # others. Empty: no file, every KPI is managed through the API.
    catalog_path: Path | None = Path("catalog/example.yaml")
    # Moved to the top level (KPIPULSE_TIME_ZONE): one calendar for every service.
    time_zone: str | None = None
    dedupe_horizon_s: int = Field(default=24 * 3600, ge=60)
    min_correlation_points: int = Field(default=6, ge=3)
    max_lag_periods: int = Field(default=3, ge=0)
    max_batch: int = Field(default=5000, ge=1)
    # The evaluator re-reads a window's settled buckets at least this often: the longest
    # a late event folded by another scorer instance takes to show in this one's values.
    settled_refresh_s: float = Field(default=10.0, gt=0)
    # Whether each fold's commit waits for its WAL to reach the disk. Off: a Postgres
    # crash may lose the last folds (the last moment's, state and offsets together), and
    # the scorer reads those events again from Kafka.
    fold_commit_waits_for_disk: bool = False
    # Where the scorecard page fetches active alerts from ("" = same origin, dev mode).
    alerts_api: str = "http://127.0.0.1:8002"

    @field_validator("time_zone")
    @classmethod
    def _moved(cls, value: str | None) -> str | None:
        if value is not None:
            raise ValueError(
                "the company's time zone is one setting for every service now: "
                "set KPIPULSE_TIME_ZONE instead"
            )
        return value

    @field_validator("catalog_path", mode="before")
    @classmethod
    def _empty_is_no_file(cls, value: object) -> object:
        # Path("") is "." (the working directory): an empty setting means no file.
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        return value


class SmtpSettings(BaseModel):
    host: str = "127.0.0.1"
    port: int = Field(default=1025, ge=1, le=65535)
    username: str | None = None
    password: SecretStr | None = None
    use_tls: bool = False
    start_tls: bool = False
    sender: str = "kpipulse@localhost"
    timeout_s: float = Field(default=10.0, gt=0)


class DigestSettings(BaseModel):
    # The weekly digest covers Monday to Monday in the company's time zone
    # (``time_zone``) and is sent from this hour on Monday, once per week.
    enabled: bool = True
    send_hour: int = Field(default=8, ge=0, le=23)
    # Who reads each department's digest (emails); a department without readers here
    # goes to ``alerts.default_email``. Owners get their own digest on their own routes.
    department_emails: dict[str, list[str]] = {}
    interval_s: float = Field(default=60.0, gt=0)


class AlertsSettings(BaseModel):
    http: HttpSettings = HttpSettings(port=8002)
    group_id: str = "kpipulse-alerts"
    hold_down_s: int = Field(default=0, ge=0)
    recovery_margin: float = Field(default=0.02, ge=0)
    repeat_interval_s: int = Field(default=4 * 3600, ge=60)
    expiry_warning_days: int = Field(default=14, ge=0)
    scheduler_interval_s: float = Field(default=30.0, gt=0)
    delivery_max_attempts: int = Field(default=8, ge=1)
    delivery_base_backoff_s: float = Field(default=1.0, gt=0)
    # No default: alerts refuses to start without one while any KPI has a webhook owner.
    webhook_secret: SecretStr = SecretStr("")
    # Owner webhooks must be https unless this allows http (local receivers, tests).
    allow_http_webhooks: bool = False
    # Hosts (names or IP addresses) owner webhooks may reach although they resolve to
    # loopback, private or link-local addresses.
    webhook_allowed_hosts: list[str] = []
    webhook_max_response_bytes: int = Field(default=64 * 1024, ge=1024)
    # Where recipients reach this service (the acknowledgement links in alert emails).
    public_url: str = "http://127.0.0.1:8002"
    # Signs those links; empty: derived from the admin token; both empty: no links.
    ack_link_secret: SecretStr = SecretStr("")
    ack_link_ttl_s: int = Field(default=7 * 86400, ge=60)
    default_email: str | None = None
    scorecard_url: str = "http://127.0.0.1:8001/"
    # Origins of the scorecard page allowed to read the alerts API from a browser.
    cors_origins: list[str] = ["http://127.0.0.1:8001", "http://localhost:8001"]
    smtp: SmtpSettings = SmtpSettings()
    # Per-KPI overrides of the defaults above, keyed by KPI key (JSON in the env var).
    hold_down_overrides_s: dict[str, int] = {}
    recovery_margin_overrides: dict[str, float] = {}
    # Delivery: the worker wakes on every committed transition and polls as a fallback;
    # a claimed row whose lease ran out belonged to a dead worker and is re-sent.
    delivery_max_backoff_s: float = Field(default=300.0, gt=0)
    outbox_poll_interval_s: float = Field(default=0.5, gt=0)
    outbox_lease_s: float = Field(default=60.0, gt=0)
    outbox_batch: int = Field(default=50, ge=1)
    webhook_timeout_s: float = Field(default=10.0, gt=0)
    trend_points: int = Field(default=6, ge=1, le=100)
    digest: DigestSettings = DigestSettings()
    max_batch: int = Field(default=1000, ge=1)


class CompanySettings(BaseModel):
    # The language of the page, emails and notifications unless a person chose their own
    # (shared/i18n); the digest's week runs in ``time_zone``, the company's zone.
    locale: Literal["en", "vi"] = "en"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="KPIPULSE_",
        env_nested_delimiter="__",
        extra="forbid",
        frozen=True,
    )

    environment: Literal["dev", "test", "prod"] = "prod"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    # The company's calendar (IANA name): review periods, expiry dates, the page and the
    # times in alert notices all use it.
    time_zone: str = "UTC"
    admin_token: SecretStr = SecretStr("")
    company: CompanySettings = CompanySettings()
    # Scrapers send it (or the admin token) to see the KPI value gauges on /metrics.
    metrics_token: SecretStr = SecretStr("")
    # Mark the page's session cookie Secure even when TLS ends at a proxy in front.
    session_cookie_secure: bool = False
    # Failed sign-ins one client address may make in 5 minutes before it waits (per
    # process). Behind a proxy every user shares its address: raise it there.
    sign_in_failures_per_address: int = Field(default=20, ge=1)
    kafka: KafkaSettings = KafkaSettings()
    database: DatabaseSettings = DatabaseSettings()
    ingest: IngestSettings = IngestSettings()
    scoring: ScoringSettings = ScoringSettings()
    alerts: AlertsSettings = AlertsSettings()

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}: use an IANA name such as "
                             "Asia/Ho_Chi_Minh") from None
        return value

    @property
    def tz(self) -> ZoneInfo:
        """The company's time zone."""
        return ZoneInfo(self.time_zone)


def _env_name(loc: tuple[int | str, ...]) -> str:
    return "KPIPULSE_" + "__".join(str(part).upper() for part in loc)


def load_settings(**overrides: object) -> Settings:
    """Build the settings from the environment, or fail with the variables named."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = "; ".join(
            f"{_env_name(err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        raise SettingsError(f"invalid settings: {problems}") from exc
