"""A domain whose name servers drop every query (issue 18.5): authentication used to wait for
each question's full lifetime, hit the auth detector's 8 s budget, and lose every result (SPF
reported missing, not ``temperror``). The DNS budget of a message is below the detector's, so
the checks end as ``temperror`` in time and the partial results are kept. A real DNS server on
loopback, the real pipeline."""

from __future__ import annotations

import time

import pytest

from mailsift.config.schema import Settings
from mailsift.core.envelope import Connection, Envelope
from mailsift.pipeline.build import ScanOptions, build_pipeline
from mailsift.testing.dns import DnsServer
from mailsift.testing.messages import make_message

pytestmark = pytest.mark.timeout(60)

ZONES = {
    "silent.example": {"behaviour": "timeout"},
    "*.silent.example": {"behaviour": "timeout"},
    "198.51.100.7.in-addr.arpa": {"behaviour": "timeout"},
}


def test_dns_that_drops_queries_gives_temperror_within_the_budget() -> None:
    settings = Settings.model_validate({
        # the defaults scaled down 4x so the test is quick: 0.5 s per try, 1 s per question,
        # 2 s for the auth detector
        "dns": {"timeout": 0.5, "lifetime": 1.0},
        "detectors": {"timeouts_ms": {"auth": 2000}},
        "history": {"backend": "memory"},
    })
    with DnsServer(ZONES) as srv:
        pipeline = build_pipeline(settings, ScanOptions(dns_server=f"127.0.0.1:{srv.port}"))
        raw = make_message(from_="Bob <bob@silent.example>",
                           headers={"DKIM-Signature": "v=1; a=rsa-sha256; d=silent.example; "
                                    "s=sel; h=from; bh=AAAA; b=AAAA"})
        env = Envelope(mail_from="bob@silent.example", rcpt_to=("a@example.net",),
                       connection=Connection(client_ip="198.51.100.7",
                                             helo="mx.silent.example"))
        started = time.perf_counter()
        result = pipeline.scan(raw, env)
        elapsed = time.perf_counter() - started
    codes = {f.code for f in result.findings}
    assert "DETECTOR_TIMEOUT" not in codes, [f.evidence for f in result.findings]
    assert elapsed < 2.0 + 1.0  # the auth budget, plus the rest of the scan
    auth = result.auth
    assert auth is not None and not auth.offline
    assert auth.spf is not None and auth.spf.result.value == "temperror"
    assert auth.dkim and all(d.result.value == "temperror" for d in auth.dkim)
    assert auth.dmarc is not None and auth.dmarc.result.value == "temperror"
