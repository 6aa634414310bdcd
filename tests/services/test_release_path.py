"""Releases that go somewhere (issue 18.11): a release follows the delivery path by default
(``[gateway] next_hop_*``, not a separate port nobody listens on), and a released copy that
comes back through mailsift (milter mode: released to Postfix's port 25, which runs the milter
again) is recognised by its signed ``X-Mailsift-Release-Id`` and not quarantined again, while a
copied or forged mark is not believed. Real gateway over SMTP, real sink, real store."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from mailsift.config.schema import Settings
from mailsift.services.access import Principal
from mailsift.services.store_services import StoreServices
from mailsift.store.query import TraceQuery
from mailsift.store.store import Store
from mailsift.testing.gateway import RunningGateway, send_smtp
from mailsift.testing.messages import make_message
from mailsift.testing.sink import SmtpSink

pytestmark = pytest.mark.timeout(120)
ADMIN = Principal("admin", "admin")

PHISH = make_message(
    subject="Your account has been suspended", message_id="<released-phish@x>",
    from_="PayPal <service@paypa1-secure.example>",
    html=('<p>Unusual sign-in activity. Verify your account now or it will be suspended.</p>'
          '<a href="http://192.0.2.55/login">https://www.paypal.com/signin</a>'
          '<form action="http://192.0.2.55/c"><input type="password"></form>'),
    text="Verify your account now: http://192.0.2.55/login",
)


def settings_for(tmp: Path, next_hop: int, **store: Any) -> Settings:
    return Settings.model_validate({
        "store": {"data_dir": str(tmp / "data"), **store},
        "gateway": {"next_hop_port": next_hop, "workers": 0, "next_hop_timeout": 5},
        "smtp": {"port": 0}, "http": {"enabled": False}, "milter": {"enabled": False},
        "scan": {"offline": True},
    })


def quarantined(settings: Settings) -> list[str]:
    with Store.open(settings.store) as store:
        return [i.message for i in store.trace.search(TraceQuery(status="quarantined")).items]


def test_a_release_follows_the_delivery_path_by_default(tmp_path: Path) -> None:
    with SmtpSink() as sink:
        settings = settings_for(tmp_path, sink.port)
        assert (settings.store.release_host, settings.store.release_port) == (
            "127.0.0.1", sink.port)
        with RunningGateway(settings) as gw:
            assert send_smtp(gw.ports["smtp"], PHISH, ["bob@example.net"])[0] == 250
        (mid,) = quarantined(settings)
        services = StoreServices.open(settings)
        try:
            report = asyncio.run(services.release.release(ADMIN, mid))
        finally:
            services.close()
        assert report.sent == ["bob@example.net"] and sink.wait_for(1)
        assert report.next_hop == f"127.0.0.1:{sink.port}"
        assert report.replies["bob@example.net"].startswith("250")
    explicit = settings_for(tmp_path / "x", 2525, release_port=2626)
    assert explicit.store.release_port == 2626  # an explicit release port still wins


def test_a_released_copy_passing_mailsift_again_is_not_quarantined_again(
        tmp_path: Path) -> None:
    with SmtpSink() as sink:
        settings = settings_for(tmp_path, sink.port)
        with RunningGateway(settings) as gw:
            port = gw.ports["smtp"]
            assert send_smtp(port, PHISH, ["bob@example.net"])[0] == 250
            (mid,) = quarantined(settings)
            # milter mode: the release goes to the MTA's port 25, which runs mailsift again
            services = StoreServices.open(settings_for(tmp_path, sink.port, release_port=port))
            try:
                report = asyncio.run(services.release.release(ADMIN, mid))
            finally:
                services.close()
            assert report.sent == ["bob@example.net"], report
            assert sink.wait_for(1)
            got = sink.messages[0]
            assert got.header("X-Mailsift-Release-Id") == report.release_ids
            # the reply the release got is the one mailsift gave the released copy
            assert "ref ms-" in report.replies["bob@example.net"]
            # the same marks on another message, or on this one changed, are not believed
            marks = b"".join(line + b"\r\n" for line in got.data.split(b"\r\n")
                             if line.lower().startswith(b"x-mailsift-release-"))
            forged = marks + PHISH.replace(b"Verify your account now",
                                           b"Confirm your password now")
            assert send_smtp(port, forged, ["bob@example.net"])[0] == 250
        assert len(sink.messages) == 1
        (forged_id,) = quarantined(settings)  # the original is "released" now
        assert forged_id != mid
        with Store.open(settings.store) as store:
            items = store.trace.search(TraceQuery(recipient="bob@example.net")).items
            released_copy = [store.trace.get(i.message) for i in items
                             if i.status == "delivered"]
            (record,) = released_copy
            assert record.decided_by == "1-advanced-delivery"
            assert report.release_ids[0] in record.explanation
