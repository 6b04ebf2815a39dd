"""The KPI value message scoring publishes and alerts consumes (schema v1)."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Final, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

from shared.contracts.text import HTTP_URL, SINGLE_LINE, EmailAddress

KPI_VALUE_SCHEMA_VERSION: Final = 1

# Bounds shared by the catalog (scoring) and this message (alerts), so that whatever the
# catalog accepts fits where alerts stores it: kpi_latest.name is VARCHAR(300), an
# outbox target (an address or a URL) VARCHAR(1000), kpi keys VARCHAR(200). A message
# over them is refused at decoding and dead-lettered, instead of failing its insert and
# stalling the consumer.
MAX_NAME: Final = 300
MAX_OWNER_NAME: Final = 200
MAX_URL: Final = 1000
MAX_OWNERS: Final = 20
MAX_LINKED_KPIS: Final = 50
KPI_KEY_PATTERN: Final = r"^[a-z][a-z0-9_]{0,63}$"

KpiKey = Annotated[str, StringConstraints(pattern=KPI_KEY_PATTERN)]
KpiName = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_NAME), SINGLE_LINE
]
OwnerName = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_OWNER_NAME),
    SINGLE_LINE,
]
WebhookUrl = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=8, max_length=MAX_URL), HTTP_URL
]

KpiStatus = Literal["breach", "below_target", "on_target", "no_data"]
Direction = Literal["higher_is_better", "lower_is_better", "target_band"]


class Owner(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: OwnerName
    email: EmailAddress | None = None
    webhook_url: WebhookUrl | None = None
    slack_webhook_url: WebhookUrl | None = None


class KpiValueMessage(BaseModel):
    """A KPI's value as of an event time, with the thresholds in force when computed."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: Literal[1] = 1
    kpi_key: KpiKey
    name: KpiName
    value: float | None
    numerator: float | None = None
    denominator: float | None = None
    window_s: int = Field(gt=0)
    as_of: AwareDatetime
    computed_at: AwareDatetime
    status: KpiStatus
    score: float | None = Field(default=None, ge=0, le=100)
    minimum: float
    target: float
    direction: Direction
    owners: list[Owner] = Field(default_factory=list, max_length=MAX_OWNERS)
    expires_on: date | None = None
    update_every_s: int = Field(gt=0)
    leading_indicators_in_breach: list[KpiKey] = Field(
        default_factory=list, max_length=MAX_LINKED_KPIS
    )
    # The KPI left the catalog: the last message about it. Its fields are its last known
    # definition (value None, status no_data); consumers stop watching it. Added within
    # v1 with a default: deploy alerts before scoring (they refuse unknown fields).
    retired: bool = False
    # Share of the window that has data (the KPI or its data began inside it): below 1
    # the value is partial. Below-minimum alerts wait for a full window unless the KPI
    # sets ``require_full_window: false``. Added within v1 with defaults, as above.
    coverage: float = Field(default=1.0, ge=0, le=1)
    require_full_window: bool = True
    # Where the KPI sits and what it counts, for the weekly digest per department. Added
    # within v1 with defaults, as above.
    department: str | None = None
    unit: str | None = None
    # A reported KPI (values entered by people per review period): the start of the last
    # ended period that has no value yet, which its owners are reminded of once. None
    # when nothing is due, and for computed KPIs. Added within v1 with a default, as above.
    value_due_period: AwareDatetime | None = None

    @property
    def partial(self) -> bool:
        return self.coverage < 1.0

    def to_bytes(self) -> bytes:
        return self.model_dump_json().encode()

    @classmethod
    def from_bytes(cls, raw: bytes) -> KpiValueMessage:
        return cls.model_validate_json(raw)
