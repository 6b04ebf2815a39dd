"""Who may read and change a KPI, and how owner URLs are kept out of every read."""

from __future__ import annotations

import pytest

from shared.identity.domain import (
    ADMIN_TOKEN_PRINCIPAL,
    REDACTED_URL,
    IdentityError,
    KpiAccess,
    Principal,
    Role,
    can_edit,
    can_read,
    fingerprint,
    keep_secrets,
    mask_target,
    normalise_email,
    parse_groups,
    redact,
)

FINANCE = KpiAccess.of(["finance", "leadership"], [{"name": "Thu", "email": "Thu@example.com"}])
OPEN = KpiAccess.of([], [])


def person(role: Role, *groups: str, email: str = "ann@example.com") -> Principal:
    return Principal(email, role, frozenset(groups), user_id=1)


@pytest.mark.parametrize(
    ("who", "reads", "edits"),
    [
        (person(Role.VIEWER, "sales"), False, False),
        (person(Role.VIEWER, "finance"), True, False),
        (person(Role.EDITOR, "finance"), True, True),
        (person(Role.EDITOR, "sales"), False, False),
        (person(Role.VIEWER, email="thu@example.com"), True, True),  # the owner
        (person(Role.ADMIN), True, True),
        (ADMIN_TOKEN_PRINCIPAL, True, True),
    ],
)
def test_viewers_groups_owners_and_roles(who: Principal, reads: bool, edits: bool) -> None:
    assert can_read(who, FINANCE) is reads
    assert can_edit(who, FINANCE) is edits


def test_a_kpi_without_viewers_is_read_by_everyone_and_changed_by_few() -> None:
    assert can_read(person(Role.VIEWER), OPEN)
    assert not can_edit(person(Role.EDITOR, "sales"), OPEN)
    assert can_edit(person(Role.ADMIN), OPEN)


def test_emails_and_groups_are_checked() -> None:
    assert normalise_email("  Ann@Example.COM ") == "ann@example.com"
    with pytest.raises(IdentityError, match="not an email"):
        normalise_email("ann")
    assert parse_groups(["sales", " leadership ", ""]) == {"sales", "leadership"}
    with pytest.raises(IdentityError, match="bad group"):
        parse_groups(["sales;drop"])


def test_owner_urls_are_redacted_wherever_they_nest() -> None:
    url = "https://hooks.slack.example.com/services/T/B/secret"
    change = {"field": "owners", "old": [{"name": "A", "slack_webhook_url": url}], "new": []}
    shown = redact(change)
    assert url not in str(shown)
    assert shown["old"][0]["slack_webhook_url"] == fingerprint(url)
    assert fingerprint(url).startswith(REDACTED_URL)
    assert fingerprint(url) != fingerprint(url + "x")  # a change stays visible


def test_a_redacted_url_written_back_keeps_the_stored_one() -> None:
    url = "https://ops.example.com/hooks/finance"
    stored = [{"name": "Thu", "webhook_url": url}]
    sent = [{"name": "Thu", "webhook_url": fingerprint(url)}]
    assert keep_secrets(sent, stored) == stored
    with pytest.raises(IdentityError, match="matches no stored URL"):
        keep_secrets([{"name": "X", "webhook_url": fingerprint("https://other")}], stored)


def test_notification_targets_are_masked() -> None:
    hook = "https://user:pw@hooks.example.com/services/secret"
    assert mask_target(hook, admin=True) == "https://hooks.example.com/[redacted]"
    assert mask_target("lan@example.com", admin=True) == "lan@example.com"
    assert mask_target("lan@example.com", admin=False) == "l***@example.com"
