"""Every recipient ends in a final state (issue 18.4): a recipient the next hop refuses with
5xx while another is accepted gets a DSN to the sender (RFC 3464) and the trace says
``bounced``; a recipient deferred past ``spool_max_age_seconds`` is bounced too; a bounce is
never bounced. Real gateway, real SMTP sink as the next hop."""

from __future__ import annotations

import email
import time
from collections.abc import Iterator
from email.message import Message
from pathlib import Path
from typing import Any

import pytest

from mailsift.config.schema import Settings
from mailsift.store.deliveries import DeliveryLog
from mailsift.store.query import TraceQuery
from mailsift.store.store import Store
from mailsift.testing.gateway import RunningGateway, send_smtp
from mailsift.testing.messages import make_message
from mailsift.testing.sink import ReceivedMessage, SmtpSink
from mailsift.testing.waiting import wait_until

pytestmark = pytest.mark.timeout(120)


def settings_for(tmp: Path, port: int, **gateway: Any) -> Settings:
    return Settings.model_validate({
        "store": {"data_dir": str(tmp / "data")},
        "gateway": {"next_hop_port": port, "workers": 0, "relay_connections": 2,
                    "next_hop_timeout": 5, "spool_retry_seconds": 0.2, **gateway},
        "smtp": {"port": 0, "hostname": "mx.test"},
        "http": {"enabled": False}, "milter": {"enabled": False}, "scan": {"offline": True},
    })


@pytest.fixture()
def sink() -> Iterator[SmtpSink]:
    with SmtpSink() as s:
        yield s


def statuses(settings: Settings) -> dict[str, str]:
    with Store.open(settings.store) as store:
        return {i.recipient: i.status for i in store.trace.search(TraceQuery()).items}


def attempts(settings: Settings) -> list[tuple[str, str, str, int, bool]]:
    """(recipient, outcome, reply, attempt, retry time known) of the recorded attempts."""
    with Store.open(settings.store) as store:
        (item,) = {i.message for i in store.trace.search(TraceQuery()).items}
        return [(a.recipient, a.outcome, a.reply, a.attempt, a.next_try_at is not None)
                for a in DeliveryLog(store.engine).of(item)]


def dsns(sink: SmtpSink) -> list[ReceivedMessage]:
    return [m for m in sink.messages if m.mail_from in ("", "<>")]


def delivery_status(dsn: ReceivedMessage) -> tuple[Message, list[Message]]:
    msg = email.message_from_bytes(dsn.data)
    assert msg.get_content_type() == "multipart/report"
    assert msg.get_param("report-type") == "delivery-status"
    parts = msg.get_payload()
    assert isinstance(parts, list) and len(parts) == 3
    assert parts[1].get_content_type() == "message/delivery-status"
    blocks = parts[1].get_payload()
    assert isinstance(blocks, list)
    assert parts[2].get_content_type() == "text/rfc822-headers"
    return blocks[0], blocks[1:]


def test_a_recipient_refused_for_good_is_bounced_not_retried_for_ever(
        tmp_path: Path, sink: SmtpSink) -> None:
    sink.refuse = {"carol@example.net"}
    settings = settings_for(tmp_path, sink.port)
    with RunningGateway(settings) as gw:
        code, _ = send_smtp(gw.ports["smtp"], make_message(message_id="<two@example.org>"),
                            ["bob@example.net", "carol@example.net"])
        assert code == 250
        assert sink.wait_for(2)
        time.sleep(1.0)  # several spool rounds: nothing may be sent again
    normal = [m for m in sink.messages if m.mail_from not in ("", "<>")]
    assert [m.rcpt_to for m in normal] == [("bob@example.net",)]
    (dsn,) = dsns(sink)
    assert dsn.rcpt_to == ("alice@example.org",)
    per_message, (per_rcpt,) = delivery_status(dsn)
    assert per_message["Reporting-MTA"] == "dns; mx.test"
    assert per_rcpt["Final-Recipient"] == "rfc822; carol@example.net"
    assert per_rcpt["Action"] == "failed" and per_rcpt["Status"] == "5.1.1"
    assert per_rcpt["Diagnostic-Code"] == "smtp; 550 5.1.1 no such user"
    assert b"<two@example.org>" in dsn.data  # the original's headers are returned
    assert statuses(settings) == {"bob@example.net": "delivered",
                                  "carol@example.net": "bounced"}
    # the next hop's replies are kept per recipient, for the console's delivery details
    kept = sorted(attempts(settings))
    assert [k[:2] for k in kept] == [("bob@example.net", "delivered"),
                                     ("carol@example.net", "bounced")]
    assert kept[0][2].startswith("250 ")
    assert kept[1][2] == "550 5.1.1 no such user"


def test_a_deferred_recipient_is_bounced_at_the_maximum_age(tmp_path: Path,
                                                            sink: SmtpSink) -> None:
    sink.defer = {"carol@example.net"}
    settings = settings_for(tmp_path, sink.port, spool_max_age_seconds=1.5)
    with RunningGateway(settings) as gw:
        code, text = send_smtp(gw.ports["smtp"], make_message(),
                               ["bob@example.net", "carol@example.net"])
        assert code == 250, text  # bob relayed, carol spooled
        wait_until(lambda: dsns(sink), what="the bounce of carol's copy")
        spool = Path(settings.store.data_dir) / "spool"
        wait_until(lambda: not list(spool.glob("*.json")), what="an empty retry spool")
    (dsn,) = dsns(sink)
    _, (per_rcpt,) = delivery_status(dsn)
    assert per_rcpt["Action"] == "failed" and per_rcpt["Status"] == "4.4.7"
    assert "450 4.2.1 mailbox busy" in per_rcpt["Diagnostic-Code"]
    assert statuses(settings) == {"bob@example.net": "delivered",
                                  "carol@example.net": "bounced"}


def test_a_deferred_recipient_refused_for_good_on_retry_is_bounced(tmp_path: Path,
                                                                  sink: SmtpSink) -> None:
    sink.defer = {"carol@example.net"}
    settings = settings_for(tmp_path, sink.port)
    with RunningGateway(settings) as gw:
        assert send_smtp(gw.ports["smtp"], make_message(),
                         ["bob@example.net", "carol@example.net"])[0] == 250
        sink.defer, sink.refuse = set(), {"carol@example.net"}
        wait_until(lambda: dsns(sink), what="the bounce of carol's copy")
    _, (per_rcpt,) = delivery_status(dsns(sink)[0])
    assert per_rcpt["Status"] == "5.1.1"
    assert statuses(settings)["carol@example.net"] == "bounced"
    carol = [a for a in attempts(settings) if a[0] == "carol@example.net"]
    # first refused for now (retried by our spool, so the retry time is known), then for good
    assert carol[0][1:] == ("deferred", "450 4.2.1 mailbox busy, try again later", 1, True)
    assert carol[-1][1:3] == ("bounced", "550 5.1.1 no such user")
    assert carol[-1][3] >= 2


def test_a_bounce_is_never_bounced(tmp_path: Path, sink: SmtpSink) -> None:
    sink.refuse = {"carol@example.net"}
    settings = settings_for(tmp_path, sink.port)
    with RunningGateway(settings) as gw:
        assert send_smtp(gw.ports["smtp"], make_message(),
                         ["bob@example.net", "carol@example.net"], mail_from="")[0] == 250
        assert sink.wait_for(1)
        time.sleep(0.5)
    assert [m.rcpt_to for m in sink.messages] == [("bob@example.net",)]
    assert statuses(settings) == {"bob@example.net": "delivered",
                                  "carol@example.net": "failed"}
