"""End-user quarantine through the real gateway (issue 22): mail quarantined for two
recipients -> ``mailsift digest send --now`` -> one digest each at the next hop -> the link
followed with an HTTP client -> confirmed with a POST -> the message arrives once; the replayed
link does nothing. And a report sent over SMTP to the report mailbox (ARF, from an internal
client) becomes a report in triage, while a spoofed one (outside, no DMARC pass) does not."""

from __future__ import annotations

import email
import re
import time
from email.message import EmailMessage
from pathlib import Path

import httpx2
import pytest

from mailsift.config import load_settings
from mailsift.interfaces.cli.main import main
from mailsift.store import Store, TraceQuery
from mailsift.testing.gateway import RunningGateway, send_smtp
from mailsift.testing.messages import make_message
from mailsift.testing.sink import SmtpSink, free_port

pytestmark = pytest.mark.timeout(180)
BOB, CAROL = "bob@corp.example", "carol@corp.example"
PHISH = make_message(
    subject="Your account has been suspended", message_id="<held-phish@paypa1.example>",
    from_="PayPal <service@paypa1-secure.example>", to=f"{BOB}, {CAROL}",
    html=('<p>Unusual sign-in activity. Verify your account now or it will be suspended.</p>'
          '<a href="http://192.0.2.55/login">https://www.paypal.com/signin</a>'
          '<form action="http://192.0.2.55/c"><input type="password"></form>'),
    text="Verify your account now: http://192.0.2.55/login",
)
_LINK = re.compile(r"(https?://\S+/q/release/[^?\s]+)\?t=([\w.-]+)")


def _config(tmp: Path, sink: int, http: int) -> Path:
    path = tmp / "mailsift.toml"
    path.write_text(f"""
[store]
data_dir = "{tmp / 'data'}"
[gateway]
next_hop_port = {sink}
workers = 0
next_hop_timeout = 5
[smtp]
port = 0
[http]
port = {http}
[milter]
enabled = false
[scan]
offline = true
[enduser.access.categories]
phish = "full_access"
phish_high = "full_access"
[enduser.digest]
base_url = "http://127.0.0.1:{http}"
from_address = "quarantine@corp.example"
[enduser.report_mailbox]
addresses = {{ "report-phish@corp.example" = "phish" }}
internal_networks = ["10.0.0.0/8"]
""")
    return path


def _text(data: bytes) -> str:
    msg = email.message_from_bytes(data)
    for part in msg.walk():
        if part.get_content_type() == "text/plain":
            payload = part.get_payload(decode=True)
            assert isinstance(payload, bytes)
            return payload.decode()
    raise AssertionError("no text part")


def _arf(reporter: str, reported: bytes) -> bytes:
    msg = EmailMessage()
    msg["From"] = reporter
    msg["To"] = "report-phish@corp.example"
    msg["Subject"] = "Phishing report"
    msg["Message-ID"] = f"<report-{time.time_ns()}@corp.example>"
    msg.set_content("This is a phishing report.\n")
    msg.make_mixed()
    feedback = EmailMessage()
    feedback.set_payload("Feedback-Type: fraud\r\nUser-Agent: Thunderbird\r\nVersion: 1\r\n")
    feedback["Content-Type"] = "message/feedback-report"
    msg.attach(feedback)
    inner = email.message_from_bytes(reported, _class=EmailMessage)
    msg.add_attachment(inner)
    msg.replace_header("Content-Type", "multipart/report")
    msg.set_param("report-type", "feedback-report")
    return msg.as_bytes()


def test_digest_link_release_and_report_mailbox(tmp_path: Path) -> None:
    http = free_port()
    with SmtpSink() as sink:
        config = _config(tmp_path, sink.port, http)
        settings = load_settings(str(config)).settings
        with RunningGateway(settings) as gw:
            assert send_smtp(gw.ports["smtp"], PHISH, [BOB, CAROL])[0] == 250
            with Store.open(settings.store) as store:
                held = store.trace.search(TraceQuery(status="quarantined")).items
            assert {i.recipient for i in held} == {BOB, CAROL}, "not quarantined"
            (mid,) = {i.message for i in held}
            assert len(sink.messages) == 0

            assert main(["digest", "send", "--now", "--config", str(config)]) == 0
            assert sink.wait_for(2)
            digests = {m.rcpt_to[0]: m for m in sink.messages}
            assert set(digests) == {BOB, CAROL} and len(sink.messages) == 2
            assert digests[BOB].header("Auto-Submitted") == ["auto-generated"]
            assert main(["digest", "send", "--now", "--config", str(config)]) == 0
            assert len(sink.messages) == 2  # the second run sends nothing

            url, token = _LINK.search(_text(digests[BOB].data)).groups()  # type: ignore[union-attr]
            with httpx2.Client(timeout=30) as client:
                page = client.get(url, params={"t": token})  # what a link scanner does
                assert page.status_code == 200 and "Release it" in page.text
                time.sleep(0.3)
                assert len(sink.messages) == 2  # a GET releases nothing
                done = client.post(url, data={"t": token})
                assert done.status_code == 200 and "released to your inbox" in done.text
                assert sink.wait_for(3)
                released = [m for m in sink.messages if m.header("X-Mailsift-Release-Id")]
                assert [m.rcpt_to for m in released] == [(BOB,)]
                again = client.post(url, data={"t": token})
                assert again.status_code == 410 and "already used" in again.text
                assert client.get(url, params={"t": token}).status_code == 410
                other = client.post(url.replace(mid, "ms-someotherid"), data={"t": token})
                assert other.status_code == 400 and "another message" in other.text
            time.sleep(0.5)
            assert len([m for m in sink.messages if m.header("X-Mailsift-Release-Id")]) == 1

            # the report mailbox: carol reports the phish from inside (XFORWARD: 10.1.2.3)
            report = _arf(CAROL, PHISH)
            assert send_smtp(gw.ports["smtp"], report, ["report-phish@corp.example"], CAROL,
                             xforward="ADDR=10.1.2.3 NAME=pc.corp.example")[0] == 250
            # a spoofed "bob" from outside, without a DMARC pass, is refused
            spoofed = _arf(BOB, PHISH)
            assert send_smtp(gw.ports["smtp"], spoofed, ["report-phish@corp.example"], BOB,
                             xforward="ADDR=203.0.113.9 NAME=evil.example")[0] == 250
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                with Store.open(settings.store) as store:
                    entries = [e.action for e in store.audit.entries()]
                if entries.count("report_mail.accepted") + entries.count(
                        "report_mail.refused") >= 2:
                    break
                time.sleep(0.2)
        with Store.open(settings.store) as store:
            reports = store.reports.list()
            refused = [e for e in store.audit.entries() if e.action == "report_mail.refused"]
    assert [(r.reporter, r.label, r.message, r.mailbox) for r in reports.items] == [
        (f"mail:{CAROL}", "phish", mid, CAROL)]
    assert len(refused) == 1 and "not authenticated" in refused[0].detail["reason"]
