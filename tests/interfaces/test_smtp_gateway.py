"""The SMTP content filter end to end: a real aiosmtpd listener, a real SMTP sink as next hop,
the real store (SQLite). Guarantees under test: 250 only when delivered or durably kept, 4xx when
the next hop is down (and the retry delivers exactly once), 5xx passed through."""

from __future__ import annotations

import itertools
import smtplib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mailsift.config.schema import Settings
from mailsift.store.query import TraceQuery
from mailsift.store.store import Store
from mailsift.testing.gateway import RunningGateway, send_smtp
from mailsift.testing.messages import make_message
from mailsift.testing.sink import SmtpSink, free_port
from mailsift.testing.waiting import wait_until

pytestmark = pytest.mark.timeout(120)


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
def sink() -> Iterator[SmtpSink]:
    with SmtpSink() as s:
        yield s


def send(port: int, raw: bytes, rcpts: list[str], mail_from: str = "alice@example.org",
         xforward: str | None = None) -> tuple[int, str]:
    return send_smtp(port, raw, rcpts, mail_from, xforward=xforward)


PHISH = make_message(
    subject="Your account has been suspended",
    from_="PayPal <service@paypa1-secure.example>",
    html=('<p>Unusual sign-in activity. Verify your account now or it will be suspended.</p>'
          '<a href="http://192.0.2.55/login">https://www.paypal.com/signin</a>'
          '<form action="http://192.0.2.55/c"><input type="password"></form>'),
    text="Verify your account now: http://192.0.2.55/login",
)


def test_clean_mail_is_relayed_with_result_headers(tmp_path: Path, sink: SmtpSink) -> None:
    port = sink.port
    gw = RunningGateway(make_settings(tmp_path, port)).start()
    try:
        raw = make_message(headers={"X-Mailsift-Category": "clean (forged by sender)"})
        assert send(gw.ports["smtp"], raw, ["bob@example.net"])[0] == 250
        assert len(sink.messages) == 1
        got = sink.messages[0]
        mail_from, rcpts, data = got.mail_from, got.rcpt_to, got.data
        assert (mail_from, rcpts) == ("alice@example.org", ("bob@example.net",))
        assert b"X-Mailsift-Ref: ms-" in data and b"X-Mailsift-Category: clean" in data
        assert b"forged by sender" not in data
        assert data.endswith(raw.split(b"\n\n", 1)[1].replace(b"\n", b"\r\n")) or b"Hello" in data
        # the same message retried after its 250 is recognised and not delivered twice
        assert send(gw.ports["smtp"], raw, ["bob@example.net"])[0] == 250
        assert len(sink.messages) == 1
    finally:
        gw.stop()


def test_phish_is_quarantined_durably_not_relayed(tmp_path: Path, sink: SmtpSink) -> None:
    port = sink.port
    settings = make_settings(tmp_path, port)
    gw = RunningGateway(settings).start()
    try:
        assert send(gw.ports["smtp"], PHISH, ["bob@example.net"])[0] == 250
    finally:
        gw.stop()
    assert sink.messages == []
    with Store.open(settings.store) as store:
        from mailsift.store.query import TraceQuery

        page = store.trace.search(TraceQuery(action="quarantine"))
        assert len(page.items) == 1
        assert store.trace.raw(page.items[0].message) == PHISH.replace(b"\n", b"\r\n") or \
            store.trace.raw(page.items[0].message).endswith(b"\r\n")


def test_reject_and_per_recipient_split(tmp_path: Path, sink: SmtpSink) -> None:
    port = sink.port
    settings = make_settings(tmp_path, port, policy={
        "actions": {"phish_high": "reject", "phish": "reject"},
        "policies": [{"name": "lenient", "recipients": ["pilot@example.net"],
                      "actions": {"phish_high": "deliver", "phish": "deliver"}}],
    })
    gw = RunningGateway(settings).start()
    try:
        code, text = send(gw.ports["smtp"], PHISH, ["bob@example.net"])
        assert code == 550 and "ref ms-" in text
        code, _ = send(gw.ports["smtp"], PHISH, ["bob@example.net", "pilot@example.net"])
        assert code == 250
        # pilot gets it; bob's reject became quarantine because the message was accepted
        assert [m.rcpt_to for m in sink.messages] == [("pilot@example.net",)]
    finally:
        gw.stop()
    with Store.open(settings.store) as store:
        from mailsift.store.query import TraceQuery

        rows = store.trace.search(TraceQuery(recipient="bob@example.net")).items
        statuses = sorted(r.status for r in rows)
        assert statuses == ["quarantined", "rejected"]


def test_next_hop_down_gives_451_and_retry_delivers_once(tmp_path: Path) -> None:
    port = free_port()
    gw = RunningGateway(make_settings(tmp_path, port)).start()
    later = SmtpSink(port)
    try:
        raw = make_message(subject="while the next hop is down")
        code, text = send(gw.ports["smtp"], raw, ["bob@example.net"])
        assert code == 451 and "ref ms-" in text
        later.start()
        try:
            assert send(gw.ports["smtp"], raw, ["bob@example.net"])[0] == 250
            assert send(gw.ports["smtp"], raw, ["bob@example.net"])[0] == 250
        finally:
            later.stop()
    finally:
        gw.stop()
    assert len(later.messages) == 1


def test_permanent_refusal_of_next_hop_is_passed_through(tmp_path: Path,
                                                         sink: SmtpSink) -> None:
    port = sink.port
    sink.reply = "554 5.7.1 Relay access denied"
    gw = RunningGateway(make_settings(tmp_path, port)).start()
    try:
        code, text = send(gw.ports["smtp"], make_message(), ["bob@example.net"])
        assert code == 554 and "Relay access denied" in text
    finally:
        gw.stop()


def test_xforward_long_lines_and_8bit_are_kept(tmp_path: Path, sink: SmtpSink) -> None:
    port = sink.port
    settings = make_settings(tmp_path, port)
    gw = RunningGateway(settings).start()
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
        gw.stop()
    data = sink.messages[0].data
    assert data.endswith(raw.split(b"\r\n\r\n", 1)[1])
    with Store.open(settings.store) as store:
        from mailsift.store.query import TraceQuery

        item = store.trace.search(TraceQuery()).items[0]
        assert store.trace.get(item.message).client_ip == "198.51.100.23"


def test_smtputf8_addresses_are_relayed(tmp_path: Path, sink: SmtpSink) -> None:
    sender, rcpt = "j\u00f6rg@b\u00fccher.example", "\u7528\u6237@\u4f8b\u5b50.example"
    raw = (f"From: {sender}\r\nTo: {rcpt}\r\nSubject: Gr\u00fc\u00dfe\r\n"
           "Message-ID: <utf8@example.de>\r\n\r\nGr\u00fc\u00dfe\r\n").encode()
    gw = RunningGateway(make_settings(tmp_path, sink.port)).start()
    try:
        with smtplib.SMTP("127.0.0.1", gw.ports["smtp"], timeout=60) as client:
            client.ehlo("client.example")
            assert client.has_extn("smtputf8")
            assert client.sendmail(sender, [rcpt], raw, mail_options=["SMTPUTF8"]) == {}
    finally:
        gw.stop()
    got = sink.messages[0]
    assert (got.mail_from, got.rcpt_to) == (sender, (rcpt,))
    assert {"SMTPUTF8", "BODY=8BITMIME"} <= set(got.mail_options)
    assert got.data.endswith(raw.split(b"\r\n\r\n", 1)[1])


def test_list_changes_reach_the_scan_workers(tmp_path: Path, sink: SmtpSink) -> None:
    """Workers keep the lists between messages and get them again when they change."""
    from mailsift.core.lists import ListEntry

    settings = make_settings(tmp_path, sink.port, gateway={"workers": 1,
                                                           "lists_refresh_seconds": 0.1})

    def category(n: int) -> str:
        raw = make_message(subject=f"note {n}", message_id=f"<lists-{n}@example.org>")
        code, reply = send(gw.ports["smtp"], raw, ["bob@example.net"])
        assert code in (250, 550), reply
        with Store.open(settings.store) as store:
            (record,) = [r for r in store.trace.search(TraceQuery()).items
                         if r.subject == f"note {n}"]
            return record.category

    numbers = itertools.count(1)
    gw = RunningGateway(settings).start()
    try:
        assert category(next(numbers)) == "clean" and category(next(numbers)) == "clean"
        with Store.open(settings.store) as store:
            entry = store.lists.add(ListEntry(kind="domain", value="example.org",
                                              action="block"))
        # the gateway re-reads the lists every 0.1 s and hands them to the worker: a new
        # message each round until one is blocked, then the next one must be blocked too
        wait_until(lambda: category(next(numbers)) != "clean", timeout=30,
                   what="the block entry to reach the scan worker")
        assert category(next(numbers)) != "clean"
        with Store.open(settings.store) as store:
            store.lists.remove(entry.entry_id)
        wait_until(lambda: category(next(numbers)) == "clean", timeout=30,
                   what="the removed block entry to leave the scan worker")
        assert category(next(numbers)) == "clean"
    finally:
        gw.stop()


def test_a_bounce_with_the_null_sender_is_relayed_with_the_null_sender(
        tmp_path: Path, sink: SmtpSink) -> None:
    """``MAIL FROM:<>`` (DSNs, delivery receipts): aiosmtpd hands over the literal ``<>``,
    which the relay used to refuse (553 5.1.7) after a clean scan."""
    settings = make_settings(tmp_path, sink.port)
    dsn = make_message(subject="Delivery Status Notification (Failure)",
                       from_="Mail Delivery System <MAILER-DAEMON@mx.example.org>",
                       text="Your message could not be delivered.\n")
    with RunningGateway(settings) as gw:
        code, text = send(gw.ports["smtp"], dsn, ["bob@example.net"], mail_from="")
        assert code == 250, text
    got = sink.messages[0]
    assert got.mail_from == "<>" and got.rcpt_to == ("bob@example.net",)
    with Store.open(settings.store) as store:
        record = store.trace.get(store.trace.search(TraceQuery()).items[0].message)
        assert record is not None
        assert record.mail_from == ""  # the null sender, not the literal "<>"



def test_a_hostile_charset_is_scanned_and_traced_not_deferred_for_ever(
        tmp_path: Path, sink: SmtpSink) -> None:
    """Issue 18.2: the 105-byte ``Subject: =?idna?q?h=E9llo?=`` answered 451 on every retry,
    with no trace row."""
    raw = (b"From: a@example.org\r\nTo: b@example.net\r\nSubject: =?idna?q?h=E9llo?=\r\n"
           b"\r\nhello\r\n")
    settings = make_settings(tmp_path, sink.port)
    with RunningGateway(settings) as gw:
        code, text = send(gw.ports["smtp"], raw, ["b@example.net"])
    assert code == 250, text
    with Store.open(settings.store) as store:
        (item,) = store.trace.search(TraceQuery()).items
        assert item.status in ("delivered", "quarantined")


def test_a_null_recipient_is_refused_at_rcpt(tmp_path: Path, sink: SmtpSink) -> None:
    with RunningGateway(make_settings(tmp_path, sink.port)) as gw:
        code, text = send(gw.ports["smtp"], make_message(), ["<>"])
    assert code // 100 == 5 and "5.1.3" in text
    assert sink.messages == []


def test_next_hop_refusing_every_recipient_passes_its_5xx_through(
        tmp_path: Path, sink: SmtpSink) -> None:
    """Issue 18.3: every recipient refused at RCPT gave "no recipient accepted", which crashed
    (``int("no ")``) into "451 Temporary local problem" for ever."""
    sink.refuse = {"bob@example.net", "carol@example.net"}
    settings = make_settings(tmp_path, sink.port)
    with RunningGateway(settings) as gw:
        code, text = send(gw.ports["smtp"], make_message(),
                          ["bob@example.net", "carol@example.net"])
    assert (code, text) == (550, "5.1.1 no such user")
    with Store.open(settings.store) as store:
        items = store.trace.search(TraceQuery()).items
        assert sorted(i.status for i in items) == ["failed", "failed"]


def test_security_xforward_only_from_trusted_clients(tmp_path: Path, sink: SmtpSink) -> None:
    """Issue 18.10: any client could claim another client address with XFORWARD (and so pass
    SPF as someone else); only ``[smtp] xforward_hosts`` may."""
    settings = make_settings(tmp_path, sink.port, smtp={"xforward_hosts": ["192.0.2.0/24"]})
    with (RunningGateway(settings) as gw,
          smtplib.SMTP("127.0.0.1", gw.ports["smtp"], timeout=60) as client):
        client.ehlo("client.example")
        assert not client.has_extn("xforward")
        code, _ = client.docmd("XFORWARD", "ADDR=198.51.100.23")
        assert code == 550
    trusted = make_settings(tmp_path / "t", sink.port, smtp={"xforward_hosts": ["127.0.0.1"]})
    with RunningGateway(trusted) as gw:
        code, _ = send(gw.ports["smtp"], make_message(), ["b@example.net"],
                       xforward="ADDR=198.51.100.23")
        assert code == 250
    with Store.open(trusted.store) as store:
        item = store.trace.search(TraceQuery()).items[0]
        assert store.trace.get(item.message).client_ip == "198.51.100.23"
