"""Sending aggregate reports: rua verification against a real DNS server, the relay (an SMTP
sink), size limits, retries, and exactly-once across two nodes sharing one store."""

from __future__ import annotations

import asyncio
import email
import gzip
import threading
from collections.abc import Iterator
from email import policy
from pathlib import Path
from typing import Any

import pytest

from mailsift.auth import make_resolver
from mailsift.config.dmarc import DmarcReportSettings
from mailsift.config.schema import DnsSettings
from mailsift.core.errors import DnsTempError
from mailsift.core.verdict import Action
from mailsift.delivery.relay import Relay
from mailsift.services.dmarc.evaluations import evaluation_row
from mailsift.services.dmarc.rua import parse_rua, verify_targets
from mailsift.services.dmarc.sending import (
    ReportSender,
    last_complete_period,
    period_containing,
)
from mailsift.store import Store
from mailsift.store.dmarc import DmarcStore
from mailsift.testing.dns import DnsServer
from mailsift.testing.sink import SmtpSink
from mailsift.testing.storekit import FakeClock

DAY0 = 1_799_971_200  # 2027-01-15 00:00:00 UTC
FAST_DNS = DnsSettings(timeout=0.3, lifetime=0.5, cache_size=0)
ZONES: dict[str, Any] = {
    "example.com._report._dmarc.vendor.example": {"TXT": ["v=DMARC1"]},
    "example.com._report._dmarc.other.example": {
        "TXT": ["v=DMARC1; rua=mailto:new@other.example"]},
    "example.com._report._dmarc.sneaky.example": {
        "TXT": ["v=DMARC1; rua=mailto:victim@elsewhere.example"]},
    "*._report._dmarc.wild.example": {"TXT": ["v=DMARC1;"]},
    "example.com._report._dmarc.notdmarc.example": {"TXT": ["v=spf1 -all"]},
    "example.com._report._dmarc.broken.example": {"behaviour": "servfail"},
}


@pytest.fixture(scope="module")
def dns() -> Iterator[DnsServer]:
    with DnsServer(ZONES) as srv:
        yield srv


def _org(domain: str) -> str:
    return ".".join(domain.split(".")[-2:])


def test_rua_parsing_and_size_limits() -> None:
    targets, notes = parse_rua(
        "mailto:a@example.com!10m, mailto:b@example.com!50k,mailto:c%2Bx@example.com, "
        "https://example.com/rua, mailto:d@example.com!lots, mailto:nobody")
    assert [(t.address, t.max_bytes) for t in targets] == [
        ("a@example.com", 10 * 1024 * 1024), ("b@example.com", 50 * 1024),
        ("c+x@example.com", None)]
    assert len(notes) == 3
    assert targets[1].fits(50 * 1024) and not targets[1].fits(50 * 1024 + 1)


def test_external_destinations_need_the_verification_record(dns: DnsServer) -> None:
    resolver = make_resolver(FAST_DNS, dns.address)
    targets, _ = parse_rua(
        "mailto:dmarc@example.com,mailto:rua@vendor.example,mailto:x@unverified.example,"
        "mailto:y@other.example,mailto:z@sneaky.example,mailto:w@wild.example,"
        "mailto:v@notdmarc.example,mailto:u@sub.example.com")
    ok, notes = verify_targets(targets, "example.com", resolver, _org)
    assert [t.address for t in ok] == [
        "dmarc@example.com",  # same organisation: no check
        "rua@vendor.example",  # TXT present
        "new@other.example",  # the consumer replaced the URI on its own host
        "w@wild.example",  # wildcard TXT
        "u@sub.example.com",
    ]
    text = " ".join(notes)
    assert "x@unverified.example: external destination not verified" in text
    assert "z@sneaky.example" in text and "another host" in text  # neither is used
    assert "v@notdmarc.example" in text
    assert dns.count("example.com._report._dmarc.unverified.example", "TXT") == 1
    with pytest.raises(DnsTempError):
        verify_targets(parse_rua("mailto:a@broken.example")[0], "example.com", resolver,
                       _org)


def test_periods_are_aligned_to_utc() -> None:
    assert period_containing(DAY0 + 5, 24) == (DAY0, DAY0 + 86400)
    assert period_containing(DAY0 + 7 * 3600, 6) == (DAY0 + 6 * 3600, DAY0 + 12 * 3600)
    assert last_complete_period(DAY0 + 60, 24) == (DAY0 - 86400, DAY0)
    assert last_complete_period(DAY0 + 7 * 3600, 6) == (DAY0, DAY0 + 6 * 3600)


def _record_day(store: Store, evaluation: Any, domains: list[str], rua: str) -> None:
    rows = []
    for n, domain in enumerate(domains):
        for i, passed in enumerate((True, True, False)):
            res = evaluation(from_domain=domain, policy_domain=domain,
                             record=f"v=DMARC1; p=reject; rua={rua.format(domain=domain)}",
                             passed=passed, ip=f"192.0.2.{10 + i}",
                             action=Action.DELIVER if passed else Action.REJECT,
                             msg_id=f"{domain}-{i}")
            row = evaluation_row(res, DAY0 + 3600 + n)
            assert row is not None
            rows.append(row)
    DmarcStore(store.engine, store.clock).record_many(rows)


def _sender(store: Store, sink: SmtpSink, dns: DnsServer | None, node: str = "n1",
            **conf: Any) -> ReportSender:
    settings = DmarcReportSettings(email="dmarc-reports@receiver.example", **conf)
    return ReportSender(
        DmarcStore(store.engine, store.clock), settings, receiver="mx.receiver.example",
        resolver=make_resolver(FAST_DNS, dns.address) if dns else None,
        relay_factory=lambda: Relay("127.0.0.1", sink.port, timeout=10), clock=store.clock,
        node=node)


def test_sends_once_to_verified_destinations(store: Store, clock: FakeClock, sink: SmtpSink,
                                             dns: DnsServer, evaluation: Any,
                                             xsd: dict[str, Any]) -> None:
    _record_day(store, evaluation, ["example.com"],
                "mailto:dmarc@example.com,mailto:rua@vendor.example!10m,"
                "mailto:x@unverified.example")
    clock.t = DAY0 + 86400 + 120
    sender = _sender(store, sink, dns)
    assert sender.schedule() == (DAY0, DAY0 + 86400, 1)
    outcomes = asyncio.run(sender.run_due())
    assert [(o.domain, o.state) for o in outcomes] == [("example.com", "sent")]
    assert "x@unverified.example: external destination not verified" in outcomes[0].detail
    [msg] = sink.messages
    assert sorted(msg.rcpt_to) == ["dmarc@example.com", "rua@vendor.example"]
    assert msg.mail_from == "dmarc-reports@receiver.example"
    m = email.message_from_bytes(msg.data, policy=policy.default)
    assert m["Subject"].startswith("Report Domain: example.com Submitter: mx.receiver.example "
                                   "Report-ID: <")
    [att] = list(m.iter_attachments())
    assert att.get_content_type() == "application/gzip"
    job = DmarcStore(store.engine, store.clock).jobs()[0]
    assert att.get_filename() == (f"mx.receiver.example!example.com!{DAY0}!{DAY0 + 86399}!"
                                  f"{job.id}.xml.gz")
    xml = gzip.decompress(att.get_content())
    xsd["rfc9990"].validate(xml.decode())
    assert b"<count>1</count>" in xml and job.messages == 3
    assert job.state == "sent" and job.report_id in m["Subject"]
    # a restart (a new sender on the same store) and the next round send nothing again
    again = _sender(store, sink, dns)
    assert again.schedule()[2] == 0
    assert asyncio.run(again.run_due()) == []
    assert len(sink.messages) == 1


def test_size_limit_skips_a_destination(store: Store, clock: FakeClock, sink: SmtpSink,
                                        dns: DnsServer, evaluation: Any) -> None:
    _record_day(store, evaluation, ["example.com"],
                "mailto:small@example.com!1k,mailto:big@example.com!10m")
    clock.t = DAY0 + 86400 + 120
    sender = _sender(store, sink, dns)
    sender.schedule()
    [out] = asyncio.run(sender.run_due())
    assert out.state == "sent"
    assert "small@example.com: report of" in out.detail
    [msg] = sink.messages
    assert list(msg.rcpt_to) == ["big@example.com"]


def test_no_verified_destination_is_skipped_not_sent(store: Store, clock: FakeClock,
                                                     sink: SmtpSink, dns: DnsServer,
                                                     evaluation: Any) -> None:
    _record_day(store, evaluation, ["example.com"], "mailto:x@unverified.example")
    clock.t = DAY0 + 86400 + 120
    sender = _sender(store, sink, dns)
    sender.schedule()
    [out] = asyncio.run(sender.run_due())
    assert out.state == "skipped" and len(sink) == 0
    assert DmarcStore(store.engine, store.clock).jobs()[0].state == "skipped"


def test_failed_send_is_retried_then_recorded_failed(store: Store, clock: FakeClock,
                                                     sink: SmtpSink, dns: DnsServer,
                                                     evaluation: Any) -> None:
    _record_day(store, evaluation, ["example.com"],
                "mailto:dmarc@example.com,mailto:second@example.com")
    clock.t = DAY0 + 86400 + 120
    sender = _sender(store, sink, dns, max_attempts=3, retry_seconds=60)
    sink.refuse = {"second@example.com"}
    sender.schedule()
    [first] = asyncio.run(sender.run_due())
    assert first.state == "retry" and "second@example.com" in first.detail
    assert asyncio.run(sender.run_due()) == []  # not due before the retry time
    clock.advance(61)
    [second] = asyncio.run(sender.run_due())
    assert second.state == "retry"
    clock.advance(121)
    [third] = asyncio.run(sender.run_due())
    assert third.state == "failed"
    job = DmarcStore(store.engine, store.clock).jobs()[0]
    assert job.state == "failed" and job.attempts == 3
    assert "gave up after 3 attempt(s)" in job.last_error
    # the destination that took it got it once; retries went only to the refusing one
    got = [m for m in sink.messages if "dmarc@example.com" in m.rcpt_to]
    assert len(got) == 1 and job.sent_to == ("dmarc@example.com",)


def test_a_retry_that_succeeds_keeps_the_report_id(store: Store, clock: FakeClock,
                                                   sink: SmtpSink, dns: DnsServer,
                                                   evaluation: Any) -> None:
    _record_day(store, evaluation, ["example.com"], "mailto:dmarc@example.com")
    clock.t = DAY0 + 86400 + 120
    sender = _sender(store, sink, dns, retry_seconds=30)
    sink.defer = {"dmarc@example.com"}
    sender.schedule()
    assert [o.state for o in asyncio.run(sender.run_due())] == ["retry"]
    sink.defer = set()
    clock.advance(31)
    assert [o.state for o in asyncio.run(sender.run_due())] == ["sent"]
    [msg] = sink.messages
    job = DmarcStore(store.engine, store.clock).jobs()[0]
    assert msg.message_id == f"<{job.report_id}>"


def test_dns_trouble_retries_later(store: Store, clock: FakeClock, sink: SmtpSink,
                                   dns: DnsServer, evaluation: Any) -> None:
    _record_day(store, evaluation, ["example.com"], "mailto:a@broken.example")
    clock.t = DAY0 + 86400 + 120
    sender = _sender(store, sink, dns)
    sender.schedule()
    [out] = asyncio.run(sender.run_due())
    assert out.state == "retry" and out.detail.startswith("DNS")
    assert len(sink) == 0


def test_exactly_once_across_two_nodes(backend: str, tmp_path: Path, sink: SmtpSink,
                                       dns: DnsServer, evaluation: Any) -> None:
    """Two nodes (two Store instances, two engines) race over the same 30 reports."""
    from mailsift.testing.storekit import temp_store_settings

    domains = [f"d{i}.example" for i in range(30)]
    with temp_store_settings(backend, tmp_path) as settings:
        clock = FakeClock(DAY0 + 86400 + 120)
        a = Store.open(settings, clock=clock)
        b = Store.open(settings, clock=clock, migrate=False)
        try:
            _record_day(a, evaluation, domains, "mailto:rua@{domain}")
            nodes = [_sender(a, sink, dns, node="node-a"), _sender(b, sink, dns, node="node-b")]
            for n in nodes:
                n.batch = 3  # small claims, so the two nodes interleave over the 30 jobs
            results: dict[str, list[Any]] = {}
            barrier = threading.Barrier(2)

            def run(sender: ReportSender) -> None:
                barrier.wait()
                sender.schedule()  # both make the jobs: the unique key keeps one each
                results[sender.node] = asyncio.run(sender.run_due())

            threads = [threading.Thread(target=run, args=(n,)) for n in nodes]
            for t in threads:
                t.start()
            for t in threads:
                t.join(120)
            sent = [o.domain for rs in results.values() for o in rs if o.state == "sent"]
            assert sorted(sent) == sorted(domains)
            assert all(o.state == "sent" for rs in results.values() for o in rs)
            per_rcpt: dict[str, int] = {}
            for m in sink.messages:
                for r in m.rcpt_to:
                    per_rcpt[r] = per_rcpt.get(r, 0) + 1
            assert per_rcpt == {f"rua@{d}": 1 for d in domains}
            jobs = DmarcStore(a.engine, a.clock).jobs(limit=100)
            assert len(jobs) == 30 and {j.state for j in jobs} == {"sent"}
        finally:
            a.close()
            b.close()


def test_expired_claim_is_taken_over(store: Store, clock: FakeClock, sink: SmtpSink,
                                     dns: DnsServer, evaluation: Any) -> None:
    """A node that claimed a report and died: after its lease another node sends it."""
    _record_day(store, evaluation, ["example.com"], "mailto:dmarc@example.com")
    clock.t = DAY0 + 86400 + 120
    dead = _sender(store, sink, dns, node="dead", lease_seconds=300)
    dead.schedule()
    assert dead.store.claim("dead", 300) is not None  # claimed, then the node dies
    live = _sender(store, sink, dns, node="live", lease_seconds=300)
    assert asyncio.run(live.run_due()) == []
    clock.advance(301)
    assert [o.state for o in asyncio.run(live.run_due())] == ["sent"]
    assert len(sink) == 1
    job = live.store.jobs()[0]
    assert job.attempts == 2 and job.owner == "live"
