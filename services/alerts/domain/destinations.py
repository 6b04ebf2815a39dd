"""Where owner webhooks may point: https, and never at this network's own machines.

Owner URLs come from whoever edits the catalog; the alerts process sits inside the
network. A URL naming a loopback, private, link-local (cloud metadata) or otherwise
special address would let a catalog edit reach internal services, so such destinations
are refused unless the operator allow-listed the host. The address check runs on the
addresses a name resolved to, right before connecting to one of them (see
``channels/guarded.py``), so a name that resolves differently later cannot slip by.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Collection
from typing import Final
from urllib.parse import urlsplit

# Cloud metadata endpoints: link-local already, named so the message says what they are.
METADATA: Final = frozenset(
    {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")}
)


def url_problem(url: str, *, allow_http: bool) -> str | None:
    """Why this URL may not be called at all, or None."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "not a URL"
    allowed = ("https", "http") if allow_http else ("https",)
    if parts.scheme not in allowed:
        return f"scheme '{parts.scheme}' refused: owner webhooks must use https"
    if not parts.hostname:
        return "the URL names no host"
    if parts.username or parts.password:
        return "credentials in the URL are refused"
    return None


def address_problem(host: str, address: str, allowed_hosts: Collection[str]) -> str | None:
    """Why connecting to ``address`` (which ``host`` resolved to) is refused, or None."""
    if host.lower() in allowed_hosts or address in allowed_hosts:
        return None
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip in METADATA:
        return f"{host} resolves to {ip}, a cloud metadata address"
    kinds = (
        ("loopback", ip.is_loopback),
        ("link-local", ip.is_link_local),
        ("unspecified", ip.is_unspecified),
        ("multicast", ip.is_multicast),
        ("private", ip.is_private),
        ("reserved", ip.is_reserved),
    )
    for kind, found in kinds:
        if found:
            return f"{host} resolves to {ip}, a {kind} address (allow-list the host to permit)"
    if not ip.is_global:
        return f"{host} resolves to {ip}, not a public address"
    return None
