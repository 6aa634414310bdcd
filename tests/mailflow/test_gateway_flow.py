"""Direction and flow rules through the real gateway: real SMTP in, a real SMTP sink as the
next hop, the real store's trace."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mailsift.config.schema import Settings
from mailsift.store.query import TraceQuery
from mailsift.store.store import Store
from mailsift.testing.gateway import RunningGateway, send_smtp
from mailsift.testing.messages import make_message
from mailsift.testing.sink import SmtpSink

pytestmark = pytest.mark.timeout(180)

GTUBE = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"
TAG = {"name": "tag-external", "priority": 10, "if": {"direction": "inbound"},
       "then": {"prepend_subject": "[EXTERNAL] ", "add_header": {"X-External": "yes"}}}


def settings_for(tmp: Path, port: int, rules: list[dict[str, Any]]) -> Settings:
    return Settings.model_validate({
        "store": {"data_dir": str(tmp / "data")},
        "gateway": {"next_hop_port": port, "workers": 0, "relay_connections": 2,
                    "next_hop_timeout": 5},
        "smtp": {"port": 0, "hostname": "mx.test"},
        "http": {"enabled": False}, "milter": {"enabled": False}, "scan": {"offline": True},
        "direction": {"accepted_domains": ["customer.test"],
                      "internal_networks": ["10.0.0.0/8"]},
        "mailflow": {"rules": rules},
    })


@pytest.fixture()
def sink() -> Iterator[SmtpSink]:
    with SmtpSink() as s:
        yield s


def verdicts(settings: Settings, **query: Any) -> list[dict[str, Any]]:
    with Store.open(settings.store) as store:
        out = []
        for item in store.trace.search(TraceQuery(**query)).items:
            record = store.trace.get(item.message)
            assert record is not None
            out.append({"record": record, "item": item})
        return out


def test_inbound_rule_tags_and_explains(tmp_path: Path, sink: SmtpSink) -> None:
    settings = settings_for(tmp_path, sink.port, [TAG])
    with RunningGateway(settings) as gw:
        code, _ = send_smtp(gw.ports["smtp"], make_message(message_id="<in@example.org>"),
                            ["bob@customer.test"], xforward="ADDR=198.51.100.7")
        assert code == 250 and sink.wait_for(1)
    (msg,) = sink.messages
    assert msg.header("Subject") == ["[EXTERNAL] Hello"]
    assert msg.header("X-External") == ["yes"]
    assert msg.header("X-Mailsift-Category") == ["clean"]  # inbound keeps our headers
    (hit,) = verdicts(settings, finding="MAILFLOW:tag-external")  # the trace pivots by rule
    record = hit["record"]
    assert "direction inbound" in record.explanation
    assert "flow rule tag-external [enforce]: prepend subject" in record.explanation


def test_test_mode_changes_nothing_on_the_wire(tmp_path: Path, sink: SmtpSink) -> None:
    raw = make_message(message_id="<t@example.org>")
    plain = settings_for(tmp_path / "a", sink.port, [])
    testing = settings_for(tmp_path / "b", sink.port, [
        {**TAG, "mode": "test"},
        {"name": "hold", "mode": "test_with_notify", "then": {"quarantine": True,
                                                               "bcc": ["review@customer.test"]}}])
    for settings in (plain, testing):
        with RunningGateway(settings) as gw:
            assert send_smtp(gw.ports["smtp"], raw, ["bob@customer.test"],
                             xforward="ADDR=198.51.100.7")[0] == 250
    assert sink.wait_for(2)
    first, second = sink.messages

    def without_ref(data: bytes) -> bytes:  # the ref differs: another store, same bytes
        return b"\n".join(ln for ln in data.split(b"\n") if not ln.startswith(b"X-Mailsift-Ref"))

    assert without_ref(first.data) == without_ref(second.data)
    assert first.rcpt_to == second.rcpt_to == ("bob@customer.test",)
    (hit,) = verdicts(testing, finding="MAILFLOW:hold")
    would = "flow rule hold [test_with_notify]: would have: bcc review@customer.test; quarantine"
    assert would in hit["record"].explanation
    assert hit["item"].status == "delivered"


def test_outbound_junk_is_held_and_headers_never_leave(tmp_path: Path, sink: SmtpSink) -> None:
    settings = settings_for(tmp_path, sink.port, [TAG])
    spam = make_message(message_id="<spam@customer.test>", from_="a@customer.test",
                        text=f"Buy now\n{GTUBE}\n")
    clean = make_message(message_id="<ok@customer.test>", from_="a@customer.test",
                         headers={"X-Spam-Status": "No", "X-Mailsift-Category": "clean"})
    with RunningGateway(settings) as gw:
        port = gw.ports["smtp"]
        assert send_smtp(port, spam, ["x@example.net"], "a@customer.test",
                         xforward="ADDR=10.1.2.3")[0] == 250
        assert send_smtp(port, clean, ["x@example.net"], "a@customer.test",
                         xforward="ADDR=10.1.2.3")[0] == 250
        assert sink.wait_for(1)
        time.sleep(0.5)
    (out,) = sink.messages  # the spam was not relayed
    assert out.message_id == "<ok@customer.test>"
    head = out.data.split(b"\r\n\r\n", 1)[0].lower()
    assert b"x-mailsift-" not in head and b"x-spam-" not in head
    assert out.header("Subject") == ["Hello"]  # the inbound rule did not apply
    (held,) = verdicts(settings, action="quarantine")
    record = held["record"]
    assert record.message_id_header == "<spam@customer.test>"
    assert held["item"].status == "quarantined"
    assert record.verdict["direction"] == "outbound"
    assert "direction outbound: junk -> quarantine" in record.explanation


def test_reject_redirect_and_bcc(tmp_path: Path, sink: SmtpSink) -> None:
    rules = [
        {"name": "no-iso", "if": {"attachment_extension": ["iso"]},
         "then": {"reject": "ISO images are not accepted here"}},
        {"name": "review", "if": {"recipient": ["cfo@customer.test"]},
         "then": {"bcc": ["review@customer.test"]}},
        {"name": "moved", "if": {"recipient": ["old@customer.test"]},
         "then": {"redirect": ["new@customer.test"]}},
    ]
    settings = settings_for(tmp_path, sink.port, rules)
    iso = make_message(message_id="<iso@example.org>",
                       attachments=[("disk.iso", b"\0" * 64, "application/octet-stream")])
    with RunningGateway(settings) as gw:
        port = gw.ports["smtp"]
        code, text = send_smtp(port, iso, ["cfo@customer.test"], xforward="ADDR=198.51.100.7")
        assert code == 550 and "ISO images are not accepted here" in text
        assert send_smtp(port, make_message(message_id="<b@example.org>"),
                         ["cfo@customer.test"], xforward="ADDR=198.51.100.7")[0] == 250
        assert send_smtp(port, make_message(message_id="<r@example.org>"),
                         ["old@customer.test"], xforward="ADDR=198.51.100.7")[0] == 250
        assert sink.wait_for(2)
    got = {m.message_id: sorted(m.rcpt_to) for m in sink.messages}
    assert got == {"<b@example.org>": ["cfo@customer.test", "review@customer.test"],
                   "<r@example.org>": ["new@customer.test"]}
