"""The SMTP content filter end to end: a real aiosmtpd listener, a real SMTP sink as next hop,
the real store (SQLite). Guarantees under test: 250 only when delivered or durably kept, 4xx when
the next hop is down (and the retry delivers exactly once), 5xx passed through."""

from __future__ import annotations

import asyncio
import smtplib
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from mailsift.config.schema import Settings
from mailsift.interfaces.cli.serve import run_gateway
from mailsift.store.store import Store
from mailsift.testing.messages import make_message

pytestmark = pytest.mark.timeout(120)


@dataclass
class Sink:
    """Records what the next hop receives; ``reply`` can be changed to simulate refusals."""

    messages: list[tuple[str, list[str], bytes]] = field(default_factory=list)
    reply: str = "250 2.0.0 Ok: queued"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.reply.startswith("250"):
            self.messages.append((envelope.mail_from, list(envelope.rcpt_tos),
                                  envelope.original_content or envelope.content))
        return self.reply


class SinkController(Controller):
    """A next hop that, like Postfix, accepts lines longer than RFC 5321's 1000 octets."""

    def factory(self) -> Any:
        from aiosmtpd.smtp import SMTP

        cls = type("LongLineSMTP", (SMTP,), {"line_length_limit": 1 << 20})
        return cls(self.handler, **self.SMTP_kwargs)


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Running:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.loop = asyncio.new_event_loop()
        self.stop_event: asyncio.Event | None = None
        self.ports: dict[str, int] = {}
        ready = threading.Event()

        async def main() -> None:
            self.stop_event = asyncio.Event()
            fut: asyncio.Future[dict[str, int]] = self.loop.create_future()
            task = asyncio.create_task(run_gateway(settings, self.stop_event, fut))
            self.ports = await fut
            ready.set()
            await task

        self.thread = threading.Thread(target=self.loop.run_until_complete, args=(main(),))
        self.thread.start()
        assert ready.wait(60), "gateway did not start"

    def close(self) -> None:
        assert self.stop_event is not None
        self.loop.call_soon_threadsafe(self.stop_event.set)
        self.thread.join(30)
        self.loop.close()


def make_settings(tmp: Path, sink_port: int, **extra: Any) -> Settings:
    data: dict[str, Any] = {
        "store": {"data_dir": str(tmp / "data")},
        "gateway": {"next_hop_port": sink_port, "workers": 0, "relay_connections": 2,
                    "next_hop_timeout": 5, "spool_retry_seconds": 0.5},
        "smtp": {"port": 0},
        "http": {"enabled": False},
        "milter": {"enabled": False},
        "scan": {"offline": True},
    }
    for section, values in extra.items():
        data.setdefault(section, {}).update(values)
    return Settings.model_validate(data)


@pytest.fixture()
def sink() -> Iterator[tuple[Sink, int]]:
    handler = Sink()
    port = free_port()
    ctl = SinkController(handler, hostname="127.0.0.1", port=port)
    ctl.start()
    yield handler, port
    ctl.stop()


def send(port: int, raw: bytes, rcpts: list[str], mail_from: str = "alice@example.org",
         xforward: str | None = None) -> tuple[int, str]:
    with smtplib.SMTP("127.0.0.1", port, timeout=60) as client:
        client.ehlo("client.example")
        if xforward:
            code, _ = client.docmd("XFORWARD", xforward)
            assert code == 250
        try:
            client.sendmail(mail_from, rcpts, raw)
        except smtplib.SMTPDataError as exc:
            return exc.smtp_code, exc.smtp_error.decode()
        except smtplib.SMTPRecipientsRefused as exc:
            code, msg = next(iter(exc.recipients.values()))
            return code, msg.decode()
        return 250, "ok"


PHISH = make_message(
    subject="Your account has been suspended",
    from_="PayPal <service@paypa1-secure.example>",
    html=('<p>Unusual sign-in activity. Verify your account now or it will be suspended.</p>'
          '<a href="http://192.0.2.55/login">https://www.paypal.com/signin</a>'
          '<form action="http://192.0.2.55/c"><input type="password"></form>'),
    text="Verify your account now: http://192.0.2.55/login",
)


def test_clean_mail_is_relayed_with_result_headers(tmp_path: Path, sink: tuple[Sink, int]) -> None:
    handler, port = sink
    gw = Running(make_settings(tmp_path, port))
    try:
        raw = make_message(headers={"X-Mailsift-Category": "clean (forged by sender)"})
        assert send(gw.ports["smtp"], raw, ["bob@example.net"])[0] == 250
        assert len(handler.messages) == 1
        mail_from, rcpts, data = handler.messages[0]
        assert (mail_from, rcpts) == ("alice@example.org", ["bob@example.net"])
        assert b"X-Mailsift-Ref: ms-" in data and b"X-Mailsift-Category: clean" in data
        assert b"forged by sender" not in data
        assert data.endswith(raw.split(b"\n\n", 1)[1].replace(b"\n", b"\r\n")) or b"Hello" in data
        # the same message retried after its 250 is recognised and not delivered twice
        assert send(gw.ports["smtp"], raw, ["bob@example.net"])[0] == 250
        assert len(handler.messages) == 1
    finally:
        gw.close()


def test_phish_is_quarantined_durably_not_relayed(tmp_path: Path, sink: tuple[Sink, int]) -> None:
    handler, port = sink
    settings = make_settings(tmp_path, port)
    gw = Running(settings)
    try:
        assert send(gw.ports["smtp"], PHISH, ["bob@example.net"])[0] == 250
    finally:
        gw.close()
    assert handler.messages == []
    with Store.open(settings.store) as store:
        from mailsift.store.query import TraceQuery

        page = store.trace.search(TraceQuery(action="quarantine"))
        assert len(page.items) == 1
        assert store.trace.raw(page.items[0].message) == PHISH.replace(b"\n", b"\r\n") or \
            store.trace.raw(page.items[0].message).endswith(b"\r\n")


def test_reject_and_per_recipient_split(tmp_path: Path, sink: tuple[Sink, int]) -> None:
    handler, port = sink
    settings = make_settings(tmp_path, port, policy={
        "actions": {"phish_high": "reject", "phish": "reject"},
        "policies": [{"name": "lenient", "recipients": ["pilot@example.net"],
                      "actions": {"phish_high": "deliver", "phish": "deliver"}}],
    })
    gw = Running(settings)
    try:
        code, text = send(gw.ports["smtp"], PHISH, ["bob@example.net"])
        assert code == 550 and "ref ms-" in text
        code, _ = send(gw.ports["smtp"], PHISH, ["bob@example.net", "pilot@example.net"])
        assert code == 250
        # pilot gets it; bob's reject became quarantine because the message was accepted
        assert [m[1] for m in handler.messages] == [["pilot@example.net"]]
    finally:
        gw.close()
    with Store.open(settings.store) as store:
        from mailsift.store.query import TraceQuery

        rows = store.trace.search(TraceQuery(recipient="bob@example.net")).items
        statuses = sorted(r.status for r in rows)
        assert statuses == ["quarantined", "rejected"]


def test_next_hop_down_gives_451_and_retry_delivers_once(tmp_path: Path) -> None:
    port = free_port()
    gw = Running(make_settings(tmp_path, port))
    handler = Sink()
    try:
        raw = make_message(subject="while the next hop is down")
        code, text = send(gw.ports["smtp"], raw, ["bob@example.net"])
        assert code == 451 and "ref ms-" in text
        ctl = SinkController(handler, hostname="127.0.0.1", port=port)
        ctl.start()
        try:
            assert send(gw.ports["smtp"], raw, ["bob@example.net"])[0] == 250
            assert send(gw.ports["smtp"], raw, ["bob@example.net"])[0] == 250
        finally:
            ctl.stop()
    finally:
        gw.close()
    assert len(handler.messages) == 1


def test_permanent_refusal_of_next_hop_is_passed_through(tmp_path: Path,
                                                         sink: tuple[Sink, int]) -> None:
    handler, port = sink
    handler.reply = "554 5.7.1 Relay access denied"
    gw = Running(make_settings(tmp_path, port))
    try:
        code, text = send(gw.ports["smtp"], make_message(), ["bob@example.net"])
        assert code == 554 and "Relay access denied" in text
    finally:
        gw.close()


def test_xforward_long_lines_and_8bit_are_kept(tmp_path: Path, sink: tuple[Sink, int]) -> None:
    handler, port = sink
    settings = make_settings(tmp_path, port)
    gw = Running(settings)
    long_line = "x" * 5000
    raw = ("From: Jörg <j@example.de>\r\nTo: b@example.net\r\nSubject: Grüße\r\n"
           "Message-ID: <8bit@example.de>\r\nMIME-Version: 1.0\r\n"
           "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
           f"Grüße {long_line}\r\n").encode()
    try:
        code, _ = send(gw.ports["smtp"], raw, ["b@example.net"],
                       xforward="ADDR=198.51.100.23 NAME=mx.example.de HELO=mx.example.de")
        assert code == 250
    finally:
        gw.close()
    data = handler.messages[0][2]
    assert data.endswith(raw.split(b"\r\n\r\n", 1)[1])
    with Store.open(settings.store) as store:
        from mailsift.store.query import TraceQuery

        item = store.trace.search(TraceQuery()).items[0]
        assert store.trace.get(item.message).client_ip == "198.51.100.23"
