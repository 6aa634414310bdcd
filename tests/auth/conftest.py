"""Fixtures for authentication tests: session keys, a local DNS server, an authenticate helper."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pytest

from mailsift.auth import Authenticator, make_resolver
from mailsift.config.schema import AuthSettings, DnsSettings
from mailsift.core.auth import AuthResults
from mailsift.core.envelope import Connection, Envelope
from mailsift.core.protocols import Resolver
from mailsift.parsing import parse_message
from mailsift.testing.dns import DnsServer
from mailsift.testing.signing import SigningKey, generate_ed25519_key, generate_rsa_key

FAST_DNS = DnsSettings(timeout=0.3, lifetime=0.5, cache_size=0)


@pytest.fixture(scope="session")
def keys() -> dict[str, SigningKey]:
    return {
        "rsa": generate_rsa_key(),
        "ed": generate_ed25519_key(),
        "other": generate_rsa_key(),
        "list": generate_rsa_key(),
        "fwd": generate_rsa_key(),
    }


@pytest.fixture
def dns() -> Iterator[Callable[[Mapping[str, Any]], DnsServer]]:
    """``dns(zones)`` starts a server for this test; all are stopped afterwards."""
    servers: list[DnsServer] = []

    def start(zones: Mapping[str, Any]) -> DnsServer:
        srv = DnsServer(zones).start()
        servers.append(srv)
        return srv

    yield start
    for srv in servers:
        srv.stop()


def resolver_for(srv: DnsServer) -> Resolver:
    return make_resolver(FAST_DNS, srv.address)


@pytest.fixture(name="resolver_for")
def resolver_for_fixture() -> Callable[[DnsServer], Resolver]:
    """``resolver_for(server)``: a cache-less resolver with short timeouts for that server."""
    return resolver_for


def envelope(ip: str | None, mail_from: str | None, helo: str | None = None) -> Envelope:
    return Envelope(mail_from=mail_from, rcpt_to=("bob@rcpt.example",),
                    connection=Connection(client_ip=ip, helo=helo))


@pytest.fixture
def authenticate() -> Callable[..., AuthResults]:
    def run(
        raw: bytes,
        srv: DnsServer | None,
        *,
        ip: str | None = "192.0.2.10",
        mail_from: str | None = "alice@example.com",
        helo: str | None = "mail.example.com",
        **settings: Any,
    ) -> AuthResults:
        resolver = resolver_for(srv) if srv is not None else None
        auth = Authenticator(AuthSettings(**settings), resolver)
        return auth.authenticate(parse_message(raw), envelope(ip, mail_from, helo))

    return run
