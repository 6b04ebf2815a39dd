"""The outbound policy: which owner URLs and resolved addresses alerts may call."""

from __future__ import annotations

import pytest

from services.alerts.domain.destinations import address_problem, url_problem


@pytest.mark.parametrize(
    ("url", "allow_http", "problem"),
    [
        ("https://hooks.example.com/x", False, None),
        ("http://hooks.example.com/x", False, "must use https"),
        ("http://hooks.example.com/x", True, None),
        ("ftp://hooks.example.com/x", True, "scheme 'ftp'"),
        ("https:///x", False, "no host"),
        ("https://u:p@hooks.example.com/x", False, "credentials"),
    ],
)
def test_urls(url: str, allow_http: bool, problem: str | None) -> None:
    found = url_problem(url, allow_http=allow_http)
    assert (found is None) if problem is None else (found is not None and problem in found)


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("169.254.169.254", "metadata"),
        ("fd00:ec2::254", "metadata"),
        ("169.254.1.1", "link-local"),
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("192.168.0.1", "private"),
        ("::ffff:10.0.0.1", "private"),
        ("0.0.0.0", "unspecified"),
        ("100.64.0.1", "not a public address"),
        ("224.0.0.1", "multicast"),
    ],
)
def test_internal_addresses_are_refused(address: str, kind: str) -> None:
    problem = address_problem("hooks.example.com", address, frozenset())
    assert problem is not None and kind in problem


def test_public_addresses_and_allow_listed_hosts_pass() -> None:
    assert address_problem("hooks.example.com", "93.184.215.14", frozenset()) is None
    assert address_problem("2606:4700::1111", "2606:4700::1111", frozenset()) is None
    assert address_problem("receiver.local", "10.0.0.5", frozenset({"receiver.local"})) is None
    assert address_problem("x", "127.0.0.1", frozenset({"127.0.0.1"})) is None
