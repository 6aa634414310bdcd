"""Issue 23: mail-flow rules through the milter of a real Postfix. The edits a rule makes (subject
prepend, added and removed headers, the banner) and its recipients (BCC, redirect) are carried
out with milter actions (chgheader/insheader, replacebody, addrcpt/delrcpt), and outbound mail
leaves without our internal headers -- the same outcome as the SMTP content filter."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from integration_support import milter_setup, require_postfix_and_swaks, swaks, write_eml

from mailsift.testing.messages import make_message
from mailsift.testing.postfix import PostfixInstance
from mailsift.testing.sink import ReceivedMessage, SmtpSink

pytestmark = [pytest.mark.slow, pytest.mark.postfix, pytest.mark.timeout(180)]

RULES = [
    {"name": "tag-bob", "if": {"recipient": ["bob@customer.test"]},
     "then": {"prepend_subject": "[FLOW] ", "add_header": {"X-Flow": "tagged"},
              "remove_header": ["X-Remove-Me"], "banner_text": "CAUTION: handle with care",
              "bcc": ["review@customer.test"]}},
    {"name": "moved", "if": {"recipient": ["old@customer.test"]},
     "then": {"redirect": ["new@customer.test"]}},
]


@pytest.fixture(scope="module")
def flow(tmp_path_factory: pytest.TempPathFactory
         ) -> Iterator[tuple[SmtpSink, PostfixInstance]]:
    require_postfix_and_swaks()
    with milter_setup(tmp_path_factory.mktemp("milter-flow"), sections={
            "direction": {"accepted_domains": ["customer.test"],
                          "internal_networks": ["127.0.0.0/8"]},
            "mailflow": {"rules": RULES}}) as (sink, _mailsift, postfix):
        yield sink, postfix


def delivered(sink: SmtpSink, postfix: PostfixInstance, message_id: str,
              copies: int = 1) -> list[ReceivedMessage]:
    def found() -> bool:
        return len([m for m in sink.messages if m.message_id == message_id]) >= copies

    assert postfix.wait(found, 30), postfix.log()[-3000:]
    return [m for m in sink.messages if m.message_id == message_id]


def test_edits_and_bcc_through_milter_actions(flow: tuple[SmtpSink, PostfixInstance],
                                              tmp_path: Path) -> None:
    sink, postfix = flow
    raw = make_message(subject="Quarterly numbers", message_id="<flow-1@customer.test>",
                       from_="ann@customer.test", to="bob@customer.test",
                       headers={"X-Remove-Me": "secret"}, text="The numbers are in.\n")
    code, _ = swaks(postfix.smtp_port, write_eml(tmp_path, "f1.eml", raw),
                    to="bob@customer.test", mail_from="ann@customer.test")
    assert code == 250
    copies = delivered(sink, postfix, "<flow-1@customer.test>")
    rcpts = {r for m in copies for r in m.rcpt_to}
    assert rcpts == {"bob@customer.test", "review@customer.test"}
    got = copies[0]
    assert got.header("Subject") == ["[FLOW] Quarterly numbers"]
    assert got.header("X-Flow") == ["tagged"]
    assert got.header("X-Remove-Me") == []
    body = got.data.split(b"\r\n\r\n", 1)[1].decode()
    assert body.index("CAUTION: handle with care") < body.index("The numbers are in.")
    assert got.header("X-Mailsift-Category") == ["clean"]  # internal mail keeps our headers


def test_redirect_replaces_the_recipient(flow: tuple[SmtpSink, PostfixInstance],
                                         tmp_path: Path) -> None:
    sink, postfix = flow
    raw = make_message(message_id="<flow-2@customer.test>", from_="ann@customer.test",
                       to="old@customer.test")
    code, _ = swaks(postfix.smtp_port, write_eml(tmp_path, "f2.eml", raw),
                    to="old@customer.test", mail_from="ann@customer.test")
    assert code == 250
    (got,) = delivered(sink, postfix, "<flow-2@customer.test>")
    assert got.rcpt_to == ("new@customer.test",)
    assert got.header("Subject") == ["Hello"]


def test_outbound_leaves_without_internal_headers(flow: tuple[SmtpSink, PostfixInstance],
                                                  tmp_path: Path) -> None:
    sink, postfix = flow
    raw = make_message(message_id="<flow-3@customer.test>", from_="ann@customer.test",
                       to="x@example.net", headers={"X-Spam-Status": "No, score=0.1"})
    code, _ = swaks(postfix.smtp_port, write_eml(tmp_path, "f3.eml", raw),
                    to="x@example.net", mail_from="ann@customer.test")
    assert code == 250
    (got,) = delivered(sink, postfix, "<flow-3@customer.test>")
    head = got.data.split(b"\r\n\r\n", 1)[0].lower()
    assert b"x-mailsift-" not in head and b"x-spam-" not in head
    assert got.header("Subject") == ["Hello"]
