"""Bounded, printable text types for the fields people type into a KPI definition.

Every free-text field of a definition ends somewhere with a size (a PostgreSQL column, an
email header, a Slack block), and some end in places where a control character changes
the meaning: a newline in an email subject is a header injection, so ``email.message``
refuses it and the mail never goes out; a NUL cannot be stored in PostgreSQL text.
Refusing them where the text comes in names the culprit; every later stage can then
rely on it.
"""

from __future__ import annotations

import re
from typing import Annotated, Final

from email_validator import EmailNotValidError, validate_email
from pydantic import AfterValidator, StringConstraints

# C0 and C1 controls, DEL, and the Unicode line and paragraph separators (which
# ``str.splitlines`` and several mail clients treat as line breaks).
_CONTROL: Final = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
# Multi-line prose may keep tabs and line breaks, nothing else below the space.
_CONTROL_IN_PROSE: Final = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u2028\u2029]")
_CONTROL_SPACES: Final = re.compile("[\\s\x00-\x1f\x7f-\x9f\u2028\u2029]+")

#: RFC 5321 limits a forward path to 256 octets, angle brackets included.
MAX_EMAIL: Final = 254


def _single_line(value: str) -> str:
    found = _CONTROL.search(value)
    if found is not None:
        raise ValueError(
            f"must be one line of printable text (control character {found.group()!r} "
            f"at position {found.start()})"
        )
    return value


def _prose(value: str) -> str:
    found = _CONTROL_IN_PROSE.search(value)
    if found is not None:
        raise ValueError(
            f"must be printable text (control character {found.group()!r} "
            f"at position {found.start()})"
        )
    return value


def one_address(value: str) -> str:
    """``value`` as one normalised email address; ValueError naming why it is not."""
    # A maintained parser, not a regex: "a@x.com, b@evil" must not become two recipients.
    # Deliverability is not checked (no DNS at validation time); a host name without a
    # public suffix ("ops@mailhost") is allowed for a company relay, the names reserved
    # from mail (localhost, .invalid, .test, .local...) are not.
    try:
        parsed = validate_email(value, check_deliverability=False, globally_deliverable=False)
    except EmailNotValidError as exc:
        raise ValueError(f"must be exactly one email address: {exc}") from None
    return parsed.normalized


def _url(value: str) -> str:
    if not value.startswith(("https://", "http://")) or any(c.isspace() for c in value):
        raise ValueError("must be an http(s) URL without spaces")
    return _single_line(value)


#: Validators to put after a ``StringConstraints`` in an ``Annotated`` type.
SINGLE_LINE: Final = AfterValidator(_single_line)
PROSE: Final = AfterValidator(_prose)
HTTP_URL: Final = AfterValidator(_url)

EmailAddress = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=3, max_length=MAX_EMAIL),
    AfterValidator(one_address),
]


def fold_line(text: str) -> str:
    """``text`` on one line: every control character or run of them becomes one space.

    For what is rendered into a single-line slot (an email subject) from data that may
    predate the validation above, or come from somewhere that never had it.
    """
    return _CONTROL_SPACES.sub(" ", text).strip()
