"""Flow rules through a real Postfix (after-queue content filter): redirect and BCC reach the
next hop as the rules say, the direction comes from Postfix's XFORWARD client, and outbound
mail leaves without our headers.

swaks -> Postfix smtpd -> content_filter (XFORWARD) -> ``mailsift serve`` -> re-injection
smtpd -> relayhost -> sink.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from integration_support import (
    MailsiftProcess,
    content_filter_setup,
    find_by_message_id,
    ham,
    require_postfix_and_swaks,
    swaks,
    write_eml,
)

from mailsift.testing.postfix import PostfixInstance
from mailsift.testing.sink import SmtpSink

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

RULES = (Path(__file__).parents[1] / "mailflow" / "rules" / "review_and_moved.toml").read_text()


@dataclass
class Flow:
    sink: SmtpSink
    mailsift: MailsiftProcess
    postfix: PostfixInstance

    def recipients(self, message_id: str, count: int, timeout: float = 20.0) -> list[str]:
        def got() -> list[str]:
            return sorted(r for m in self.sink.messages if m.message_id == message_id
                          for r in m.rcpt_to)

        assert self.postfix.wait(lambda: len(got()) >= count, timeout), (
            f"{message_id}: {got()}\n{self.postfix.log()[-3000:]}\n{self.mailsift.log()}")
        return got()


@pytest.fixture(scope="module")
def flow(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flow]:
    require_postfix_and_swaks()
    root = tmp_path_factory.mktemp("mailflow")
    with content_filter_setup(root, RULES) as (sink, mailsift, postfix):
        yield Flow(sink, mailsift, postfix)


def test_bcc_adds_the_review_mailbox(flow: Flow, eml_dir: Path) -> None:
    mid = "<mf-bcc@customer.test>"
    code, _ = swaks(flow.postfix.smtp_port, write_eml(eml_dir, "mf-bcc.eml", ham(mid)),
                    to="cfo@customer.test", mail_from="ann@customer.test")
    assert code == 250
    assert flow.recipients(mid, 2) == ["cfo@customer.test", "review@customer.test"]
    with flow.mailsift.store() as store:
        (record,) = find_by_message_id(store, mid)
        assert record.client_ip == "127.0.0.1"  # from Postfix's XFORWARD
        assert record.verdict["direction"] == "internal"
        assert "flow rule review-cfo [enforce]: bcc review@customer.test" in record.explanation
        assert sorted(r.recipient for r in record.recipients) == [
            "cfo@customer.test", "review@customer.test"]


def test_redirect_replaces_the_recipient(flow: Flow, eml_dir: Path) -> None:
    mid = "<mf-redirect@customer.test>"
    code, _ = swaks(flow.postfix.smtp_port, write_eml(eml_dir, "mf-redir.eml", ham(mid)),
                    to="old@customer.test", mail_from="ann@customer.test")
    assert code == 250
    assert flow.recipients(mid, 1) == ["new@customer.test"]
    assert flow.postfix.wait(lambda: not flow.postfix.queue(), 20)
    assert flow.recipients(mid, 1) == ["new@customer.test"]  # and never old@


def test_outbound_mail_leaves_without_our_headers(flow: Flow, eml_dir: Path) -> None:
    mid = "<mf-out@customer.test>"
    raw = ham(mid, headers={"X-Spam-Status": "No, score=0"})
    code, _ = swaks(flow.postfix.smtp_port, write_eml(eml_dir, "mf-out.eml", raw),
                    to="partner@example.net", mail_from="ann@customer.test")
    assert code == 250
    flow.recipients(mid, 1)
    (got,) = [m for m in flow.sink.messages if m.message_id == mid]
    head = got.data.split(b"\r\n\r\n", 1)[0].lower()
    assert b"x-mailsift-" not in head and b"x-spam-" not in head
