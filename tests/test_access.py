"""The dashboard's access rule: loopback is open, any other address needs the operator's password."""

from __future__ import annotations

from dashboard.access import is_loopback, password_matches, policy


def test_only_loopback_is_open_and_sharing_needs_a_password() -> None:
    for address in ("127.0.0.1", "localhost", "::1", "127.0.0.2"):
        assert is_loopback(address) and policy(address, None) == "open"
    for address in ("0.0.0.0", "", None, "192.168.1.5", "::", "example.org"):
        assert not is_loopback(address)
        assert policy(address, None) == "refuse" and policy(address, "s3cret") == "ask"


def test_password_comparison() -> None:
    assert password_matches("s3cret", "s3cret")
    assert not password_matches("s3cre", "s3cret") and not password_matches("", "s3cret")
