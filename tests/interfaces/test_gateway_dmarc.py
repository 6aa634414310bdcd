"""DMARC reporting in a running gateway (real SMTP listener, real DNS server, real store):
every evaluation is recorded, the report built from them validates and says what happened, and
mail to the rua mailbox is read as aggregate reports while it still reaches the next hop."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest
import xmlschema

from mailsift.config.schema import Settings
from mailsift.services.dmarc.sending import ReportSender, period_containing
from mailsift.store.dmarc import DmarcStore
from mailsift.store.store import Store
from mailsift.testing.dns import DnsServer
from mailsift.testing.gateway import RunningGateway, send_smtp
from mailsift.testing.messages import make_message
from mailsift.testing.sink import SmtpSink

pytestmark = pytest.mark.timeout(180)
SAMPLE = (Path(__file__).resolve().parents[1] / "services" / "dmarc" / "data" / "ingest"
          / "google-style.xml")
XSD = Path(__file__).resolve().parents[1] / "services" / "dmarc" / "data" / "rfc9990.xsd"
XFWD = "ADDR=192.0.2.25 NAME=mx.example.com HELO=mx.example.com"
ZONES = {
    "example.com": {"TXT": ["v=spf1 ip4:192.0.2.25 -all"], "MX": ["10 mx.example.com"]},
    "_dmarc.example.com": {"TXT": ["v=DMARC1; p=reject; rua=mailto:dmarc@example.com!10m"]},
    "spoof.example": {"TXT": ["v=spf1 ip4:192.0.2.25 -all"]},
}


def test_evaluations_are_recorded_and_reported(tmp_path: Path) -> None:
    with DnsServer(ZONES) as dns, SmtpSink() as sink:
        settings = Settings.model_validate({
            "store": {"data_dir": str(tmp_path / "data")},
            "gateway": {"next_hop_port": sink.port, "workers": 0, "next_hop_timeout": 5},
            "smtp": {"port": 0, "hostname": "mx.receiver.example",
                     "xforward_hosts": ["127.0.0.1"]},
            "http": {"enabled": False}, "milter": {"enabled": False},
            "dns": {"nameservers": ["127.0.0.1"], "port": dns.port, "timeout": 0.5,
                    "lifetime": 1.0},
            "dmarc_reports": {"ingest_addresses": ["dmarc-rua@ours.example"]},
        })
        with RunningGateway(settings) as gw:
            port = gw.ports["smtp"]
            good = make_message(from_="Alice <alice@example.com>", to="bob@rcpt.example",
                                message_id="<good-1@example.com>")
            got = send_smtp(port, good, ["bob@rcpt.example"], "alice@example.com",
                           xforward=XFWD)
            assert got[0] == 250, got
            # From example.com, sent with another envelope domain: DMARC fails, p=reject
            spoof = make_message(from_="CEO <ceo@example.com>", to="bob@rcpt.example",
                                 message_id="<spoof-1@spoof.example>", subject="Wire now")
            code, _ = send_smtp(port, spoof, ["bob@rcpt.example"], "x@spoof.example",
                                xforward=XFWD)
            assert code == 550
            report = make_message(
                from_="noreply-dmarc-support@google.com", to="dmarc-rua@ours.example",
                subject="Report domain: ours.example Submitter: google.com",
                message_id="<rua-1@google.com>",
                attachments=[("google.com!ours.example!1799971200!1800057599.zip",
                              _zip(SAMPLE.read_bytes()), "application/zip")])
            assert send_smtp(port, report, ["dmarc-rua@ours.example"],
                             "noreply-dmarc-support@google.com", xforward=XFWD)[0] == 250
            sink.wait_for(2)
        # the report mail reached the next hop too: nothing is swallowed
        assert any("dmarc-rua@ours.example" in m.rcpt_to for m in sink.messages)

        store = Store.open(settings.store)
        try:
            dmarc = DmarcStore(store.engine, store.clock)
            now = store.clock.now()
            begin, end = period_containing(now, 24)
            rows = dmarc.aggregate("example.com", begin, end)
            assert {(r.source_ip, r.disposition, r.spf_aligned, r.count) for r in rows} == {
                ("192.0.2.25", "none", True, 1), ("192.0.2.25", "reject", False, 1)}
            sender = ReportSender(dmarc, settings.dmarc_reports.model_copy(
                update={"email": "dmarc-reports@receiver.example"}),
                receiver="mx.receiver.example", resolver=None,
                relay_factory=lambda: None,  # type: ignore[arg-type,return-value]
                clock=store.clock)
            [(path, built, _, _)] = sender.dry_run(tmp_path / "out", period=(begin, end),
                                                    verify=False)
            xmlschema.XMLSchema(str(XSD)).validate(path.read_text())
            assert built.messages == 2 and built.rua == "mailto:dmarc@example.com!10m"
            # the rua mailbox's zip was read
            [got] = dmarc.ingested_reports()
            assert got["org_name"] == "google.com" and got["messages"] == 127
        finally:
            store.close()


def _zip(data: bytes) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("report.xml", data)
    return buf.getvalue()


def test_serve_sends_yesterdays_reports_on_its_schedule(tmp_path: Path) -> None:
    """``serve`` with ``send = true``: yesterday's evaluations leave as one report, once."""
    import datetime as dt
    import time

    from mailsift.services.dmarc.evaluations import evaluation_row
    from mailsift.testing.storekit import make_result

    day = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)
    begin = int(dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp())
    with DnsServer(ZONES) as dns, SmtpSink() as sink:
        settings = Settings.model_validate({
            "store": {"data_dir": str(tmp_path / "data")},
            "gateway": {"next_hop_port": sink.port, "workers": 0},
            "smtp": {"port": 0, "hostname": "mx.receiver.example"},
            "http": {"enabled": False}, "milter": {"enabled": False},
            "dns": {"nameservers": ["127.0.0.1"], "port": dns.port, "timeout": 0.5,
                    "lifetime": 1.0},
            "dmarc_reports": {"send": True, "email": "dmarc-reports@receiver.example",
                              "check_seconds": 0.5},
        })
        store = Store.open(settings.store)
        try:
            from dataclasses import replace

            from mailsift.core.auth import AuthResults, AuthStatus, DmarcResult, SpfResult

            res = make_result("y1", b"x", from_addr="a@example.com")
            auth = AuthResults(
                spf=SpfResult(AuthStatus.PASS, "mailfrom", "example.com", client_ip="192.0.2.25"),
                dmarc=DmarcResult(AuthStatus.PASS, "example.com", policy="reject",
                                  policy_domain="example.com", spf_aligned=True,
                                  record=ZONES["_dmarc.example.com"]["TXT"][0]))
            row = evaluation_row(replace(res, auth=auth), begin + 600)
            assert row is not None
            DmarcStore(store.engine, store.clock).record_many([row])
        finally:
            store.close()
        with RunningGateway(settings):
            assert sink.wait_for(1, timeout=60)
            time.sleep(1.5)  # a few more rounds: nothing is sent twice
        [msg] = sink.messages
        assert list(msg.rcpt_to) == ["dmarc@example.com"]
        assert msg.header("Subject")[0].startswith("Report Domain: example.com Submitter: "
                                                   "mx.receiver.example")
