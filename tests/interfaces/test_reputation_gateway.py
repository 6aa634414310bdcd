"""Reputation lists and connection-level defence through the real SMTP gateway.

* A client IP listed on the test DNS list ends in the configured action (reject: 550), one not
  listed or answered 127.255.255.254 is delivered: the real DNS server answers, nothing is
  monkeypatched.
* Two ``mailsift serve`` processes sharing Redis share their rate-limit counts and greylist
  triplets (a unique key prefix per test: other agents use the same Redis).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mailsift.config.schema import Settings
from mailsift.store.query import TraceQuery
from mailsift.store.store import Store
from mailsift.testing.dns import DnsServer
from mailsift.testing.gateway import RunningGateway, send_smtp
from mailsift.testing.messages import make_message
from mailsift.testing.sink import SmtpSink, free_port

# two gateway processes sharing Redis: out of `make test-fast`
pytestmark = [pytest.mark.timeout(180), pytest.mark.slow]

ZONES = {
    "2.2.0.192.zen.test": {"A": ["127.0.0.2"]},
    "9.2.0.192.zen.test": {"A": ["127.255.255.254"]},
    "11.2.0.192.zen.test": {"behaviour": "servfail"},
}
REDIS = "redis://127.0.0.1:6379/0"


@pytest.fixture()
def sink() -> Iterator[SmtpSink]:
    with SmtpSink() as s:
        yield s


@pytest.fixture(scope="module")
def dns() -> Iterator[DnsServer]:
    with DnsServer(ZONES) as srv:
        yield srv


def _settings(tmp: Path, sink: SmtpSink, dns: DnsServer) -> Settings:
    return Settings.model_validate({
        "store": {"data_dir": str(tmp / "data")},
        "gateway": {"next_hop_port": sink.port, "workers": 0, "relay_connections": 2,
                    "next_hop_timeout": 5},
        "smtp": {"port": 0},
        "http": {"port": 0},
        "milter": {"enabled": False},
        "dns": {"nameservers": ["127.0.0.1"], "port": dns.port, "timeout": 0.5,
                "lifetime": 1.0},
        "reputation": {"ip_lists": [{"name": "ZEN", "zone": "zen.test",
                                     "codes": {"127.0.0.2": 6.0}}], "budget": 0.8},
        "policy": {"actions": {"spam": "reject"}},
    })


def test_listed_client_ends_in_the_configured_action(tmp_path: Path, sink: SmtpSink,
                                                     dns: DnsServer) -> None:
    settings = _settings(tmp_path, sink, dns)
    with RunningGateway(settings) as gw:
        port = gw.ports["smtp"]
        listed = send_smtp(port, make_message(message_id="<l@x>"), ["bob@example.net"],
                           xforward="ADDR=192.0.2.2 NAME=spammer.example HELO=spammer.example")
        assert listed[0] == 550, listed
        assert not sink.messages
        for n, ip in enumerate(("192.0.2.200", "192.0.2.9", "192.0.2.11")):
            reply = send_smtp(port, make_message(message_id=f"<ok{n}@x>"), ["bob@example.net"],
                              xforward=f"ADDR={ip} NAME=mx.example HELO=mx.example")
            assert reply[0] == 250, (ip, reply)  # not listed, refused, SERVFAIL: delivered
        assert len(sink.messages) == 3
        with urllib.request.urlopen(f"http://127.0.0.1:{gw.ports['http']}/metrics") as resp:
            metrics = resp.read().decode()
    assert 'mailsift_dnslist_hits_total{code="RBL_ZEN"} 1.0' in metrics
    assert 'mailsift_dnslist_errors_total{code="REPUTATION_LIST_REFUSED"} 1.0' in metrics
    store = Store.open(settings.store)
    try:
        page = store.trace.search(TraceQuery(finding="RBL_ZEN"))
        assert len(page.items) == 1
        pivot = store.trace.search(TraceQuery(listed="192.0.2.2"))  # trace pivot by listed IP
        assert [r.message for r in pivot.items] == [page.items[0].message]
        record = store.trace.get(page.items[0].message)
        assert record is not None
        found = {f["code"]: f for f in record.findings}
        assert found["RBL_ZEN"]["evidence"] == ["192.0.2.2 (client) listed: 127.0.0.2"]
    finally:
        store.close()


# --- two gateway processes sharing Redis ------------------------------------------------------


def _config(tmp: Path, name: str, sink: SmtpSink, smtp_port: int, prefix: str,
            extra: str) -> Path:
    path = tmp / f"{name}.toml"
    path.write_text(f"""
[store]
data_dir = "{tmp / name}"
[gateway]
next_hop_port = {sink.port}
workers = 0
relay_connections = 1
[smtp]
port = {smtp_port}
[http]
enabled = false
[milter]
enabled = false
[scan]
offline = true
[ratelimit]
redis_url = "{REDIS}"
key_prefix = "{prefix}"
exempt_networks = []
{extra}
""")
    return path


class _Serve:
    def __init__(self, config: Path, port: int, log: Path) -> None:
        self.port = port
        with log.open("ab") as out:
            self.proc = subprocess.Popen([sys.executable, "-m", "mailsift", "serve", "--config",
                                          str(config)], stdout=out, stderr=subprocess.STDOUT,
                                         env={**os.environ, "PYTHONWARNINGS": "ignore"})
        self.log = log

    def wait(self, timeout: float = 90.0) -> None:
        import socket

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(self.log.read_text(errors="replace"))
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"no listener on {self.port}: {self.log.read_text(errors='replace')}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


@pytest.fixture()
def two_nodes(tmp_path: Path, sink: SmtpSink,
              request: pytest.FixtureRequest) -> Iterator[tuple[_Serve, _Serve]]:
    import redis

    prefix = f"mstest:{uuid.uuid4().hex[:12]}:"
    extra: str = request.param
    nodes = []
    for name in ("a", "b"):
        port = free_port()
        cfg = _config(tmp_path, name, sink, port, prefix, extra)
        nodes.append(_Serve(cfg, port, tmp_path / f"{name}.log"))
    try:
        for node in nodes:
            node.wait()
        yield nodes[0], nodes[1]
    finally:
        for node in nodes:
            node.stop()
        client = redis.Redis.from_url(REDIS)
        keys = list(client.scan_iter(f"{prefix}*"))
        if keys:
            client.delete(*keys)
        client.close()


RATE = """
[[ratelimit.limits]]
key = "sender"
limit = 2
window_seconds = 300
"""
GREY = """
[greylist]
enabled = true
delay_seconds = 2
retry_window_seconds = 600
"""


@pytest.mark.parametrize("two_nodes", [RATE], indirect=True)
def test_rate_limit_is_shared_by_two_gateway_processes(two_nodes: Any, sink: SmtpSink) -> None:
    a, b = two_nodes
    sender = "burst@sender.example"
    assert send_smtp(a.port, make_message(message_id="<r1@x>"), ["bob@example.net"],
                     sender)[0] == 250
    assert send_smtp(b.port, make_message(message_id="<r2@x>"), ["bob@example.net"],
                     sender)[0] == 250
    code, text = send_smtp(a.port, make_message(message_id="<r3@x>"), ["bob@example.net"],
                           sender)
    assert code == 451 and "Too many messages from sender burst@sender.example" in text
    assert send_smtp(b.port, make_message(message_id="<r4@x>"), ["bob@example.net"],
                     sender)[0] == 451
    # another sender is not affected
    assert send_smtp(b.port, make_message(message_id="<r5@x>"), ["bob@example.net"],
                     "calm@sender.example")[0] == 250
    assert len(sink.messages) == 3


@pytest.mark.parametrize("two_nodes", [GREY], indirect=True)
def test_greylist_is_shared_by_two_gateway_processes(two_nodes: Any, sink: SmtpSink) -> None:
    a, b = two_nodes
    raw = make_message(message_id="<g1@x>")
    xf = "ADDR=192.0.2.77 NAME=mx.sender.example HELO=mx.sender.example"
    code, text = send_smtp(a.port, raw, ["bob@example.net"], xforward=xf)
    assert code == 451 and "Greylisted" in text
    assert send_smtp(b.port, raw, ["bob@example.net"], xforward=xf)[0] == 451  # too early
    time.sleep(2.2)
    # the retry reaches the other node, from another address of the same /24: it passes
    xf2 = "ADDR=192.0.2.78 NAME=mx2.sender.example HELO=mx2.sender.example"
    assert send_smtp(b.port, raw, ["bob@example.net"], xforward=xf2)[0] == 250
    assert len(sink.messages) == 1


OUTBOUND = """
[[ratelimit.limits]]
key = "outbound_sender"
limit = 3
window_seconds = 300
[direction]
accepted_domains = ["customer.test"]
internal_networks = ["10.0.0.0/8"]
"""


@pytest.mark.parametrize("two_nodes", [OUTBOUND], indirect=True)
def test_outbound_sender_limit_is_shared_and_holds_mail(two_nodes: Any, sink: SmtpSink) -> None:
    """Issue 23: a sender of ours past its outbound limit is answered 4xx on either node (the
    MTA in front keeps the message and retries: nothing is lost); inbound mail from outside and
    other senders of ours are not counted."""
    a, b = two_nodes
    ours, xf = "clerk@customer.test", "ADDR=10.1.2.3"
    for i, node in enumerate((a, b, a)):
        raw = make_message(message_id=f"<o{i}@customer.test>", from_=ours)
        assert send_smtp(node.port, raw, ["x@example.net"], ours, xforward=xf)[0] == 250
    held = make_message(message_id="<o3@customer.test>", from_=ours)
    for node in (b, a):
        code, text = send_smtp(node.port, held, ["x@example.net"], ours, xforward=xf)
        assert code == 451
        assert "Too many messages from outbound sender clerk@customer.test" in text
    # internal mail and another sender of ours pass; so does inbound mail from outside
    assert send_smtp(b.port, make_message(message_id="<in1@customer.test>", from_=ours),
                     ["bob@customer.test"], ours, xforward=xf)[0] == 250
    assert send_smtp(b.port, make_message(message_id="<o9@customer.test>"),
                     ["x@example.net"], "calm@customer.test", xforward=xf)[0] == 250
    assert send_smtp(a.port, make_message(message_id="<ext@example.org>"),
                     ["bob@customer.test"], "someone@example.org",
                     xforward="ADDR=198.51.100.9")[0] == 250
    assert sink.wait_for(6)
    assert "<o3@customer.test>" not in [m.message_id for m in sink.messages]
