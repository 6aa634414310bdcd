"""Issue 23: ``test_with_notify`` really notifies -- the rule's notify list (or ``[mailflow]
notify_to``) and the sender when it is ours, exactly once, through the end-user mail schedule's
relay; an outside sender is never mailed. Real SMTP in and out, the real store's trace."""

from __future__ import annotations

import asyncio
from pathlib import Path

from mailsift.config.schema import Settings
from mailsift.delivery.relay import Relay
from mailsift.services.flow_notices import FlowNotices
from mailsift.store.store import Store
from mailsift.testing.gateway import RunningGateway, send_smtp
from mailsift.testing.messages import make_message
from mailsift.testing.sink import SmtpSink

RULES = [
    {"name": "watch-iso", "mode": "test_with_notify", "notify": ["sender"],
     "if": {"subject_words": ["iso"]}, "then": {"quarantine": True}},
    {"name": "watch-big", "mode": "test_with_notify", "if": {"subject_words": ["big"]},
     "then": {"reject": "too big"}},
]


def test_notices_go_out_once_to_admins_and_our_senders(tmp_path: Path) -> None:
    with SmtpSink() as sink, SmtpSink() as notices:
        settings = Settings.model_validate({
            "store": {"data_dir": str(tmp_path / "data")},
            "gateway": {"next_hop_port": sink.port, "workers": 0, "relay_connections": 2},
            "smtp": {"port": 0, "hostname": "mx.test"}, "http": {"enabled": False},
            "milter": {"enabled": False}, "scan": {"offline": True},
            "direction": {"accepted_domains": ["customer.test"],
                          "internal_networks": ["10.0.0.0/8"]},
            "enduser": {"digest": {"from_address": "quarantine@customer.test"}},
            "mailflow": {"rules": RULES, "notify_to": ["postmaster@customer.test"]},
        })
        with RunningGateway(settings) as gw:
            port = gw.ports["smtp"]
            # ours, outbound: the sender hears of it
            assert send_smtp(port, make_message(subject="the iso image",
                                                message_id="<a@customer.test>",
                                                from_="clerk@customer.test"),
                             ["x@example.net"], "clerk@customer.test",
                             xforward="ADDR=10.1.2.3")[0] == 250
            # from outside: the sender is not ours, nobody is mailed for watch-iso ...
            assert send_smtp(port, make_message(subject="another iso",
                                                message_id="<b@example.org>"),
                             ["bob@customer.test"], "alice@example.org",
                             xforward="ADDR=198.51.100.7")[0] == 250
            # ... and watch-big has no notify list: [mailflow] notify_to hears of it
            assert send_smtp(port, make_message(subject="a big file",
                                                message_id="<c@example.org>"),
                             ["bob@customer.test"], "alice@example.org",
                             xforward="ADDR=198.51.100.7")[0] == 250
            assert sink.wait_for(3)  # test mode: all delivered, unchanged

        with Store.open(settings.store) as store:
            service = FlowNotices(store, settings, lambda: settings.mailflow,
                                  relay_factory=lambda: Relay("127.0.0.1", notices.port,
                                                              timeout=10))
            first = asyncio.run(service.run())
            again = asyncio.run(service.run())
        assert len(first.sent) == 2 and len(first.nobody) == 1 and not first.failed
        assert again.sent == [] and again.nobody == []  # exactly once
        assert notices.wait_for(2)
        by_rcpt = {m.rcpt_to: m for m in notices.messages}
        assert set(by_rcpt) == {("clerk@customer.test",), ("postmaster@customer.test",)}
        iso = by_rcpt[("clerk@customer.test",)]
        assert iso.header("Subject") == [
            "Mail-flow rule watch-iso (test) matched: the iso image"]
        body = iso.data.decode()
        assert "would have: quarantine" in body and "Nothing was changed" in body
        assert "mailsift trace --finding MAILFLOW:watch-iso" in body
        big = by_rcpt[("postmaster@customer.test",)].data.decode()
        assert "would have: reject (5.7.1 too big)" in big
        assert all(m.mail_from == "quarantine@customer.test" for m in notices.messages)
