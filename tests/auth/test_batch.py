"""The DNS-list resolver (all questions of a message on one socket) against the real local DNS
server: answers, NXDOMAIN, SERVFAIL/REFUSED/silence as temporary errors, the cache, the retry
to the next server, forged replies ignored, and the outage hold."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import dns.message
import dns.rrset
import pytest

from mailsift.auth.batch import BatchResolver, make_batch_resolver
from mailsift.core.errors import ConfigError, DnsTempError
from mailsift.core.protocols import DnsAnswer
from mailsift.testing.dns import DnsServer

ZONES = {
    "2.2.0.192.zen.test": {"A": ["127.0.0.2", "127.0.0.4"], "ttl": 120},
    "fail.zen.test": {"behaviour": "servfail"},
    "refuse.zen.test": {"behaviour": "refused"},
    "slow.zen.test": {"behaviour": "timeout"},
}


@pytest.fixture(scope="module")
def server() -> Iterator[DnsServer]:
    with DnsServer(ZONES) as srv:
        yield srv


def _ask(resolver: BatchResolver, *names: str, budget: float = 0.5
         ) -> dict[str, DnsAnswer | DnsTempError]:
    batch = resolver.start(list(names))
    return batch.collect(time.monotonic() + budget)


def test_answers_and_errors(server: DnsServer) -> None:
    res = make_batch_resolver((), 53, server=server.address, retry_after=0.2)
    started = time.monotonic()
    got = _ask(res, "2.2.0.192.zen.test", "9.9.9.9.zen.test", "fail.zen.test",
               "refuse.zen.test", "slow.zen.test")
    assert time.monotonic() - started < 1.0
    listed = got["2.2.0.192.zen.test"]
    assert isinstance(listed, DnsAnswer)
    assert sorted(listed.records) == ["127.0.0.2", "127.0.0.4"] and listed.ttl == 120
    nx = got["9.9.9.9.zen.test"]
    assert isinstance(nx, DnsAnswer) and nx.nxdomain
    assert isinstance(got["fail.zen.test"], DnsTempError)
    assert "SERVFAIL" in str(got["fail.zen.test"])
    assert isinstance(got["refuse.zen.test"], DnsTempError)
    assert "timeout" in str(got["slow.zen.test"])


def test_cache_positive_and_negative(server: DnsServer) -> None:
    res = make_batch_resolver((), 53, server=server.address)
    _ask(res, "2.2.0.192.zen.test", "8.8.8.8.zen.test")
    before = server.count()
    got = _ask(res, "2.2.0.192.zen.test", "8.8.8.8.zen.test")
    assert server.count() == before
    assert isinstance(got["8.8.8.8.zen.test"], DnsAnswer)


def _silent_port() -> tuple[socket.socket, int]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    return sock, sock.getsockname()[1]


def test_unanswered_questions_go_to_the_next_server(server: DnsServer) -> None:
    silent, port = _silent_port()
    try:
        res = BatchResolver([("127.0.0.1", port), ("127.0.0.1", server.port)],
                            retry_after=0.1)
        got = _ask(res, "2.2.0.192.zen.test", budget=1.0)
        assert isinstance(got["2.2.0.192.zen.test"], DnsAnswer)
    finally:
        silent.close()


def test_forged_replies_are_ignored() -> None:
    """A reply with our id but another question, or not a reply, is not an answer."""
    sock, port = _silent_port()

    def forge() -> None:
        data, peer = sock.recvfrom(4096)
        query = dns.message.from_wire(data)
        other = dns.message.make_query("7.7.7.7.zen.test", "A")
        other.id = query.id
        reply = dns.message.make_response(other)
        reply.answer.append(dns.rrset.from_text("7.7.7.7.zen.test.", 60, "IN", "A",
                                                "127.0.0.2"))
        sock.sendto(reply.to_wire(), peer)
        sock.sendto(data, peer)  # the query itself echoed back (QR not set)

    thread = threading.Thread(target=forge, daemon=True)
    thread.start()
    try:
        res = BatchResolver([("127.0.0.1", port)], retry_after=5.0)
        got = _ask(res, "2.2.0.192.zen.test", budget=0.4)
        assert isinstance(got["2.2.0.192.zen.test"], DnsTempError)
    finally:
        thread.join(2)
        sock.close()


def test_outage_hold_stops_asking() -> None:
    silent, port = _silent_port()
    try:
        res = BatchResolver([("127.0.0.1", port)], retry_after=0.05)
        for _ in range(BatchResolver.OUTAGE_AFTER):
            assert isinstance(_ask(res, "1.zen.test", budget=0.1)["1.zen.test"], DnsTempError)
        started = time.monotonic()
        got = _ask(res, "2.zen.test", budget=1.0)["2.zen.test"]
        assert time.monotonic() - started < 0.05
        assert "not asked" in str(got)
    finally:
        silent.close()


def test_factory() -> None:
    res = make_batch_resolver(("192.0.2.53", "2001:db8::53"), 5353)
    assert res.nameservers == (("192.0.2.53", 5353), ("2001:db8::53", 5353))
    assert make_batch_resolver((), 53, server="127.0.0.1:5300").nameservers == (
        ("127.0.0.1", 5300),)
    with pytest.raises(ConfigError):
        make_batch_resolver((), 53, server="127.0.0.1:x")
