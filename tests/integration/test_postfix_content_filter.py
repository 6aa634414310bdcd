"""mailsift as Postfix's after-queue content filter, end to end with a real Postfix.

swaks -> Postfix smtpd -> content_filter (XFORWARD) -> ``mailsift serve`` -> re-injection
smtpd -> relayhost -> sink. What must hold: clean mail reaches the sink with our headers,
phish is quarantined in the store and never reaches the sink, a 2 MB attachment arrives
byte-exact, a malformed message is neither lost nor stuck in Postfix's queue.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from integration_support import (
    MailsiftProcess,
    attachment_of,
    big,
    content_filter_setup,
    find_by_message_id,
    ham,
    malformed,
    phish,
    require_postfix_and_swaks,
    swaks,
    write_eml,
)

from mailsift.testing.postfix import PostfixInstance
from mailsift.testing.sink import ReceivedMessage, SmtpSink

pytestmark = [pytest.mark.slow, pytest.mark.postfix, pytest.mark.timeout(120)]


@dataclass
class Flow:
    sink: SmtpSink
    mailsift: MailsiftProcess
    postfix: PostfixInstance

    def delivered(self, message_id: str, timeout: float = 20.0) -> ReceivedMessage:
        def found() -> bool:
            return any(m.message_id == message_id for m in self.sink.messages)

        assert self.postfix.wait(found, timeout), (
            f"{message_id} not delivered\n{self.postfix.log()[-3000:]}\n{self.mailsift.log()}")
        return next(m for m in self.sink.messages if m.message_id == message_id)

    def queue_empty(self, timeout: float = 20.0) -> bool:
        return self.postfix.wait(lambda: not self.postfix.queue(), timeout)


@pytest.fixture(scope="module")
def flow(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flow]:
    require_postfix_and_swaks()
    root = tmp_path_factory.mktemp("content-filter")
    with content_filter_setup(root) as (sink, mailsift, postfix):
        yield Flow(sink, mailsift, postfix)


def test_clean_mail_is_delivered_with_result_headers(flow: Flow, eml_dir: Path) -> None:
    mid = "<cf-ham@example.org>"
    raw = ham(mid, headers={"X-Mailsift-Category": "clean (forged by the sender)"})
    code, _ = swaks(flow.postfix.smtp_port, write_eml(eml_dir, "cf-ham.eml", raw))
    assert code == 250
    got = flow.delivered(mid)
    assert got.header("X-Mailsift-Category") == ["clean"]
    assert got.header("X-Mailsift-Ref")[0].startswith("ms-")
    assert got.header("Authentication-Results")[0].startswith("mailsift.local")
    # Postfix's two smtpd hops (public, re-injection) both left their Received header
    assert len(got.header("Received")) >= 2
    with flow.mailsift.store() as store:
        (record,) = find_by_message_id(store, mid)
        assert [r.status for r in record.recipients] == ["delivered"]
        # XFORWARD carried the real client (swaks on 127.0.0.1), not just "our own MTA"
        assert record.client_ip == "127.0.0.1"
        assert record.id == got.header("X-Mailsift-Ref")[0]


def test_phish_is_quarantined_and_never_delivered(flow: Flow, eml_dir: Path) -> None:
    mid = "<cf-phish@example.org>"
    code, _ = swaks(flow.postfix.smtp_port, write_eml(eml_dir, "cf-phish.eml", phish(mid)))
    assert code == 250  # after-queue: Postfix owns it now; mailsift must keep it
    assert flow.queue_empty(), flow.postfix.queue()
    with flow.mailsift.store() as store:
        (record,) = find_by_message_id(store, mid)
        assert record.action == "quarantine"
        assert [r.status for r in record.recipients] == ["quarantined"]
        assert b"Message-ID: <cf-phish@example.org>" in store.trace.raw(record.id)
    assert all(m.message_id != mid for m in flow.sink.messages)
    # Postfix logs our reply after DATA as the delivery status: it must say what happened
    # (issue 19: "status=sent (250 ... Ok: phish_high ...)" read as delivered)
    log = flow.postfix.log()
    line = next((ln for ln in log.splitlines() if record.id in ln and "status=sent" in ln),
                log[-3000:])
    assert "Ok: quarantined as phish" in line, line


def test_two_megabyte_attachment_arrives_byte_exact(flow: Flow, eml_dir: Path) -> None:
    mid = "<cf-big@example.org>"
    raw = big(mid)
    assert len(raw) > 2 * 1024 * 1024
    code, _ = swaks(flow.postfix.smtp_port, write_eml(eml_dir, "cf-big.eml", raw))
    assert code == 250
    got = flow.delivered(mid, timeout=40)
    assert attachment_of(got.data) == attachment_of(raw)
    assert got.header("X-Mailsift-Category") == ["clean"]


def test_malformed_message_is_neither_lost_nor_stuck(flow: Flow, eml_dir: Path) -> None:
    mid = "<cf-malformed@example.org>"
    code, _ = swaks(flow.postfix.smtp_port, write_eml(eml_dir, "cf-bad.eml", malformed(mid)))
    assert code == 250
    assert flow.queue_empty(30), (flow.postfix.queue(), flow.mailsift.log()[-3000:])
    delivered = [m for m in flow.sink.messages if m.message_id == mid]
    with flow.mailsift.store() as store:
        records = find_by_message_id(store, mid)
        quarantined = [r for r in records if r.action == "quarantine"]
    # exactly one of the two places has it, once
    assert len(delivered) + len(quarantined) == 1, (delivered, records)
    if delivered:
        assert delivered[0].header("X-Mailsift-Ref")


def test_a_bounce_with_the_null_sender_is_delivered_not_bounced(flow: Flow,
                                                                eml_dir: Path) -> None:
    """``MAIL FROM:<>`` through Postfix: mailsift had refused it (553 5.1.7) after a clean scan,
    so Postfix bounced the bounce and removed it: inbound DSNs were lost without notice."""
    mid = "<cf-dsn@example.org>"
    raw = ham(mid, headers={"Auto-Submitted": "auto-replied"})
    code, _ = swaks(flow.postfix.smtp_port, write_eml(eml_dir, "cf-dsn.eml", raw),
                    mail_from="<>")  # swaks: MAIL FROM:<>
    assert code == 250
    got = flow.delivered(mid)
    assert got.mail_from in ("", "<>")  # the null sender all the way to the next hop
    assert flow.queue_empty(), flow.postfix.queue()
    with flow.mailsift.store() as store:
        (record,) = find_by_message_id(store, mid)
        assert record.mail_from == ""
        assert [r.status for r in record.recipients] == ["delivered"]
