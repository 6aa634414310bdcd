"""mailsift as a milter of a real Postfix (``smtpd_milters``), end to end.

The milter gives one answer per message, so the strictest recipient action applies: headers
are added to accepted mail (forged ones removed), quarantined mail is kept by mailsift and
discarded by Postfix (or put on hold), rejects carry 550 5.7.1 and the reference id, and a
tempfail verdict is a 451 the sender retries.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from integration_support import (
    MailsiftProcess,
    attachment_of,
    big,
    find_by_message_id,
    gtube,
    ham,
    malformed,
    milter_setup,
    phish,
    require_postfix_and_swaks,
    swaks,
    write_eml,
)

from mailsift.testing.postfix import PostfixInstance
from mailsift.testing.sink import ReceivedMessage, SmtpSink

pytestmark = [pytest.mark.slow, pytest.mark.postfix, pytest.mark.timeout(120)]

POLICIES = [
    {"name": "strict-reject", "recipients": ["reject@example.net"],
     "actions": {"phish_high": "reject", "phish": "reject"}},
    {"name": "defer-spam", "recipients": ["later@example.net"],
     "actions": {"spam_high": "tempfail"}},
]


@dataclass
class Milter:
    sink: SmtpSink
    mailsift: MailsiftProcess
    postfix: PostfixInstance

    def send(self, eml_dir: Path, name: str, raw: bytes, to: str = "bob@example.net"
             ) -> tuple[int, str]:
        return swaks(self.postfix.smtp_port, write_eml(eml_dir, name, raw), to=to)

    def delivered(self, message_id: str, timeout: float = 20.0) -> ReceivedMessage:
        def found() -> bool:
            return any(m.message_id == message_id for m in self.sink.messages)

        assert self.postfix.wait(found, timeout), (
            f"{message_id} not delivered\n{self.postfix.log()[-3000:]}\n{self.mailsift.log()}")
        return next(m for m in self.sink.messages if m.message_id == message_id)


@pytest.fixture(scope="module")
def milter(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Milter]:
    require_postfix_and_swaks()
    with milter_setup(tmp_path_factory.mktemp("milter"), "store",
                      {"policy": {"policies": POLICIES}}) as parts:
        yield Milter(*parts)


def test_clean_mail_gets_headers_and_forged_ones_are_removed(milter: Milter,
                                                             eml_dir: Path) -> None:
    mid = "<m-ham@example.org>"
    raw = ham(mid, headers={
        "X-Mailsift-Category": "clean (forged)",
        "Authentication-Results": "mailsift.local; dmarc=pass (forged in our name)",
    })
    code, _ = milter.send(eml_dir, "m-ham.eml", raw)
    assert code == 250
    got = milter.delivered(mid)
    assert got.header("X-Mailsift-Category") == ["clean"]
    assert got.header("X-Mailsift-Action") == ["deliver"]
    ref = got.header("X-Mailsift-Ref")[0]
    results = got.header("Authentication-Results")
    assert len(results) == 1 and "forged" not in results[0], results
    assert "forged" not in got.data.decode("utf-8", "replace")
    with milter.mailsift.store() as store:
        (record,) = find_by_message_id(store, mid)
        assert record.id == ref and record.action == "deliver"


def test_phish_is_kept_in_our_quarantine_and_discarded_by_postfix(milter: Milter,
                                                                  eml_dir: Path) -> None:
    mid = "<m-phish@example.org>"
    code, _ = milter.send(eml_dir, "m-phish.eml", phish(mid))
    assert code == 250  # a discard looks like acceptance to the sender
    assert milter.postfix.wait(lambda: not milter.postfix.queue(), 10)
    with milter.mailsift.store() as store:
        (record,) = find_by_message_id(store, mid)
        assert record.action == "quarantine"
        assert [r.status for r in record.recipients] == ["quarantined"]
        assert mid.encode() in store.trace.raw(record.id)
    assert "discard" in milter.postfix.log()
    assert all(m.message_id != mid for m in milter.sink.messages)


def test_reject_is_550_571_with_the_reference(milter: Milter, eml_dir: Path) -> None:
    mid = "<m-reject@example.org>"
    code, text = milter.send(eml_dir, "m-reject.eml", phish(mid), to="reject@example.net")
    assert code == 550 and text.startswith("5.7.1") and "ref ms-" in text, text
    ref = text.split("ref ", 1)[1].rstrip(")")
    with milter.mailsift.store() as store:
        record = store.trace.get(ref)
        assert record is not None and record.action == "reject"
        assert [r.status for r in record.recipients] == ["rejected"]


def test_strictest_recipient_action_applies(milter: Milter, eml_dir: Path) -> None:
    # bob's policy quarantines this phish, reject@'s rejects it: the milter rejects for both
    mid = "<m-mixed@example.org>"
    code, text = milter.send(eml_dir, "m-mixed.eml", phish(mid),
                             to="bob@example.net,reject@example.net")
    assert code == 550 and "ref ms-" in text
    assert all(m.message_id != mid for m in milter.sink.messages)


def test_tempfail_verdict_is_451(milter: Milter, eml_dir: Path) -> None:
    mid = "<m-later@example.org>"
    code, text = milter.send(eml_dir, "m-later.eml", gtube(mid), to="later@example.net")
    assert code == 451 and text.startswith("4."), text
    assert not milter.postfix.queue()


def test_junk_is_tagged(milter: Milter, eml_dir: Path) -> None:
    mid = "<m-junk@example.org>"
    code, _ = milter.send(eml_dir, "m-junk.eml", gtube(mid))
    assert code == 250
    got = milter.delivered(mid)
    (subject,) = got.header("Subject")
    assert subject.startswith("[SPAM] ")
    assert got.header("X-Spam-Flag") == ["YES"]
    assert got.header("X-Mailsift-Action") == ["junk"]


def test_two_megabyte_attachment(milter: Milter, eml_dir: Path) -> None:
    mid = "<m-big@example.org>"
    raw = big(mid)
    code, _ = milter.send(eml_dir, "m-big.eml", raw)
    assert code == 250
    got = milter.delivered(mid, timeout=40)
    assert attachment_of(got.data) == attachment_of(raw)
    assert got.header("X-Mailsift-Ref")


def test_malformed_message_is_accepted_once(milter: Milter, eml_dir: Path) -> None:
    mid = "<m-malformed@example.org>"
    code, _ = milter.send(eml_dir, "m-bad.eml", malformed(mid))
    assert code == 250
    assert milter.postfix.wait(lambda: not milter.postfix.queue(), 20)
    delivered = [m for m in milter.sink.messages if m.message_id == mid]
    with milter.mailsift.store() as store:
        records = find_by_message_id(store, mid)
    assert len(records) == 1, records
    if records[0].action == "quarantine":
        assert not delivered
    else:
        assert len(delivered) == 1 and delivered[0].header("X-Mailsift-Ref") == [records[0].id]


def test_hold_mode_puts_quarantine_in_postfix_hold_queue(
        tmp_path_factory: pytest.TempPathFactory, eml_dir: Path) -> None:
    require_postfix_and_swaks()
    with milter_setup(tmp_path_factory.mktemp("milter-hold"), "hold",
                      {"policy": {"policies": POLICIES}}) as parts:
        m = Milter(*parts)
        mid = "<m-hold@example.org>"
        code, _ = m.send(eml_dir, "m-hold.eml", phish(mid))
        assert code == 250

        def held() -> list[dict[str, Any]]:
            return [q for q in m.postfix.queue() if q.get("queue_name") == "hold"]

        assert m.postfix.wait(lambda: bool(held()), 10), (m.postfix.queue(), m.postfix.log())
        assert all(msg.message_id != mid for msg in m.sink.messages)
        assert "hold" in m.postfix.log()
