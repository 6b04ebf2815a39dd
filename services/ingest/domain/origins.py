"""Which web origins may use a write key from a browser.

The web write key is public: it sits in every page that loads the tracking snippet, so
anyone can copy it into their own site. A company can list the origins its key belongs
to; a browser then reports the page's origin with every cross-origin request, and
requests from other origins are refused. It restricts browsers only: a server can send
any ``Origin`` (or none), which is why a request without one is not refused.

An origin is ``scheme://host[:port]`` as browsers send it (lower case, no path, default
ports omitted). ``https://*.example.com`` allows every subdomain of example.com (not
example.com itself, which is listed on its own).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import urlsplit

MAX_ORIGINS = 50
_DEFAULT_PORTS = {"http": 80, "https": 443}
# Host names as browsers send them (IDNs in punycode), IPv4, or IPv6 without brackets.
_HOST = re.compile(r"[a-z0-9.-]+|[0-9a-f:.]+")


class OriginError(ValueError):
    """An allowed-origin entry is not an origin; the text says why."""


def normalize_origin(value: str) -> str:
    """``value`` as browsers would send it, or OriginError naming what is wrong."""
    try:
        parts = urlsplit(value.strip())
    except ValueError as exc:  # e.g. an unclosed "[" of an IPv6 address
        raise OriginError(f"origin {value!r}: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise OriginError(f"origin {value!r}: must start with http:// or https://")
    if parts.path not in ("", "/") or parts.query or parts.fragment or "@" in parts.netloc:
        raise OriginError(f"origin {value!r}: only scheme://host[:port], no path or user")
    host = (parts.hostname or "").lower()
    wildcard = host.startswith("*.")
    bare = host[2:] if wildcard else host
    if not _HOST.fullmatch(bare) or not all(label for label in bare.split(".")):
        raise OriginError(f"origin {value!r}: not a host name")
    try:
        port = parts.port
    except ValueError:
        raise OriginError(f"origin {value!r}: invalid port") from None
    suffix = "" if port is None or port == _DEFAULT_PORTS[scheme] else f":{port}"
    shown = f"[{host}]" if ":" in host else host  # IPv6, as browsers write it
    return f"{scheme}://{shown}{suffix}"


def normalize_origins(values: Iterable[str]) -> tuple[str, ...]:
    """Each entry normalised, duplicates dropped, order kept; OriginError on a bad one."""
    found: dict[str, None] = {}
    for value in values:
        found[normalize_origin(value)] = None
    if len(found) > MAX_ORIGINS:
        raise OriginError(f"at most {MAX_ORIGINS} allowed origins per write key")
    return tuple(found)


def origin_allowed(origin: str, allowed: Iterable[str]) -> bool:
    """Whether a request's ``Origin`` header matches one of the normalised ``allowed``."""
    candidate = origin.strip().lower()
    scheme, sep, rest = candidate.partition("://")
    if not sep:
        return False  # "null" (sandboxed frames, file:) and junk
    for entry in allowed:
        if entry == candidate:
            return True
        entry_scheme, _, entry_rest = entry.partition("://")
        if entry_rest.startswith("*.") and entry_scheme == scheme:
            # "*.example.com[:port]" matches "<one or more labels>.example.com[:port]".
            tail = entry_rest[1:]
            if rest.endswith(tail) and len(rest) > len(tail):
                return True
    return False
