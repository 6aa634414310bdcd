"""Reputation detector against the real local DNS server: zones that list, do not list, answer
127.255.255.254, time out, SERVFAIL and answer outside 127/8. No lookup result may become a
false listing."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from mailsift.auth import make_resolver
from mailsift.auth.batch import make_batch_resolver
from mailsift.config.reputation import ReputationSettings
from mailsift.config.schema import DnsSettings, Settings
from mailsift.core.context import ScanContext
from mailsift.core.envelope import Connection, Envelope
from mailsift.core.errors import ConfigError
from mailsift.core.findings import Finding, Stage
from mailsift.detectors._dnslists import ip_query_name, is_public_ip
from mailsift.detectors.base import Detector, Services
from mailsift.detectors.reputation import ReputationDetector, build
from mailsift.parsing import parse_message
from mailsift.testing.dns import DnsServer
from mailsift.testing.messages import make_message

ZONES: dict[str, dict[str, Any]] = {
    # IP list (ZEN-like)
    "2.2.0.192.zen.test": {"A": ["127.0.0.2"]},
    "3.2.0.192.zen.test": {"A": ["127.0.0.4", "127.0.0.10"]},
    "9.2.0.192.zen.test": {"A": ["127.255.255.254"]},
    "10.2.0.192.zen.test": {"behaviour": "timeout"},
    "11.2.0.192.zen.test": {"behaviour": "servfail"},
    "12.2.0.192.zen.test": {"A": ["198.51.100.80"]},
    "13.2.0.192.zen.test": {"behaviour": "refused"},
    "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.zen.test": {
        "A": ["127.0.0.3"]},
    "7.113.0.203.zen.test": {"A": ["127.0.0.9"]},
    # domain list (DBL-like)
    "evil-link.example.dbl.test": {"A": ["127.0.1.2"]},
    "phish-from.example.dbl.test": {"A": ["127.0.1.4"]},
    "refused.example.dbl.test": {"A": ["127.255.255.254"]},
    "slow.example.dbl.test": {"behaviour": "timeout"},
    "broken.example.dbl.test": {"behaviour": "servfail"},
}

LISTS = {
    "ip_lists": [{"name": "ZEN", "zone": "zen.test",
                  "codes": {"127.0.0.2": 6.0, "127.0.0.3": 3.0,
                            "127.0.0.4": {"weight": 4.0, "meaning": "XBL"},
                            "127.0.0.10": {"weight": 0.5, "meaning": "PBL"}},
                  "default_weight": 1.5}],
    "domain_lists": [{"name": "DBL", "zone": "dbl.test",
                      "codes": {"127.0.1.2": 7.0,
                                "127.0.1.4": {"weight": 8.0, "meaning": "phish",
                                              "category": "phish"}}}],
    "budget": 0.6,
}


@pytest.fixture(scope="module")
def dns() -> Iterator[DnsServer]:
    with DnsServer(ZONES) as srv:
        yield srv


RESOLVER = {"kind": "batch"}


@pytest.fixture(autouse=True, params=["batch", "threads"])
def resolver_kind(request: pytest.FixtureRequest) -> Iterator[str]:
    """Every test on both ways of asking: the list resolver the gateway uses (all questions on
    one socket) and any other injected ``Resolver`` (a thread pool)."""
    RESOLVER["kind"] = request.param
    yield request.param


def _detector(dns: DnsServer, **over: Any) -> ReputationDetector:
    settings = Settings(reputation={**LISTS, **over})
    resolver: Any
    if RESOLVER["kind"] == "batch":
        resolver = make_batch_resolver((), 53, server=dns.address, retry_after=0.3)
    else:
        resolver = make_resolver(DnsSettings(timeout=0.3, lifetime=0.5), dns.address)
    det = build(settings, Services(list_resolver=resolver) if RESOLVER["kind"] == "batch"
                else Services(resolver=resolver))
    assert isinstance(det, ReputationDetector)
    return det


def _run(det: ReputationDetector, *, ip: str | None = None, html: str | None = None,
         text: str | None = "Hi\n", from_: str = "Alice <alice@sender.test>",
         mail_from: str | None = None, headers: dict[str, str] | None = None,
         offline: bool = False) -> dict[str, Finding]:
    raw = make_message(html=html, text=text, from_=from_, headers=headers or {})
    env = Envelope(mail_from=mail_from, rcpt_to=("bob@example.net",),
                   connection=Connection(client_ip=ip))
    ctx = ScanContext(parse_message(raw), env, None, offline, 1_800_000_000.0)
    return {f.code: f for f in det.run(ctx)}


def test_contract() -> None:
    det = build(Settings(reputation=LISTS), Services())
    assert isinstance(det, Detector)
    assert det.stage is Stage.REPUTATION
    assert {"RBL_ZEN", "URIBL_DBL", "REPUTATION_DNS_ERROR"} <= det.codes


def test_off_by_default_asks_nothing(dns: DnsServer) -> None:
    before = dns.count()
    det = build(Settings(), Services(resolver=make_resolver(DnsSettings(), dns.address)))
    assert _run(det, ip="192.0.2.2", text="https://evil-link.example/x\n") == {}
    assert dns.count() == before
    assert not ReputationSettings().configured


def test_listed_client_ip_names_ip_and_answer(dns: DnsServer) -> None:
    found = _run(_detector(dns), ip="192.0.2.2")
    f = found["RBL_ZEN"]
    assert f.weight == 6.0 and f.category == "spam" and f.detector == "reputation"
    assert f.evidence == ("192.0.2.2 (client) listed: 127.0.0.2",)


def test_several_codes_strongest_weight_and_meanings(dns: DnsServer) -> None:
    f = _run(_detector(dns), ip="192.0.2.3")["RBL_ZEN"]
    assert f.weight == 4.0
    assert f.evidence == ("192.0.2.3 (client) listed: 127.0.0.4 XBL, 127.0.0.10 PBL",)


def test_unknown_code_takes_default_weight(dns: DnsServer) -> None:
    assert _run(_detector(dns), ip="203.0.113.7")["RBL_ZEN"].weight == 1.5


def test_nxdomain_is_not_listed(dns: DnsServer) -> None:
    assert _run(_detector(dns), ip="192.0.2.200") == {}


@pytest.mark.parametrize("ip", ["192.0.2.9", "192.0.2.12"])
def test_refused_and_bogus_answers_are_never_listings(dns: DnsServer, ip: str) -> None:
    found = _run(_detector(dns), ip=ip)
    assert "RBL_ZEN" not in found
    alert = found["REPUTATION_LIST_REFUSED"]
    assert alert.weight == 0.0 and alert.category is None
    assert "ZEN (zen.test)" in alert.evidence[0]


@pytest.mark.parametrize("ip", ["192.0.2.10", "192.0.2.11", "192.0.2.13"])
def test_timeout_servfail_refused_rcode_are_not_listed(dns: DnsServer, ip: str) -> None:
    started = time.monotonic()
    found = _run(_detector(dns), ip=ip)
    assert time.monotonic() - started < 1.5  # bounded by the list budget, not dnspython's
    assert set(found) == {"REPUTATION_DNS_ERROR"}
    assert found["REPUTATION_DNS_ERROR"].weight == 0.0
    assert found["REPUTATION_DNS_ERROR"].category is None


def test_ipv6_is_asked_as_reversed_nibbles(dns: DnsServer) -> None:
    assert ip_query_name("2001:db8::1", "zen.test") == (
        "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.zen.test")
    assert ip_query_name("::ffff:192.0.2.2", "zen.test") == "2.2.0.192.zen.test"
    f = _run(_detector(dns), ip="2001:db8::1")["RBL_ZEN"]
    assert f.evidence == ("2001:db8::1 (client) listed: 127.0.0.3",)


def test_private_clients_are_not_asked(dns: DnsServer) -> None:
    before = len(dns.queries)
    assert _run(_detector(dns), ip="10.1.2.3") == {}
    assert _run(_detector(dns), ip="127.0.0.1") == {}
    assert not [q for q in dns.queries[before:] if q.name.endswith("zen.test")]
    assert not is_public_ip("fd00::1") and is_public_ip("192.0.2.1")


def test_link_domain_after_unwrapping_a_redirector(dns: DnsServer) -> None:
    html = ('<a href="https://www.google.com/url?q=https%3A%2F%2Flogin.evil-link.example'
            '%2Fsign-in">Open</a>')
    f = _run(_detector(dns), html=html, text=None)["URIBL_DBL"]
    assert f.weight == 7.0
    assert f.evidence == ("evil-link.example (url) listed: 127.0.1.2",)


def test_sender_domains_are_asked(dns: DnsServer) -> None:
    found = _run(_detector(dns), from_="PayPal <service@mail.phish-from.example>")
    f = found["URIBL_DBL"]
    assert f.weight == 8.0 and f.category == "phish"
    assert f.evidence == ("phish-from.example (from) listed: 127.0.1.4 phish",)
    found = _run(_detector(dns), headers={"Reply-To": "x@evil-link.example"})
    assert found["URIBL_DBL"].evidence == ("evil-link.example (reply-to) listed: 127.0.1.2",)
    found = _run(_detector(dns), mail_from="bounce@evil-link.example")
    assert found["URIBL_DBL"].evidence == ("evil-link.example (sender) listed: 127.0.1.2",)
    off = _detector(dns, check_sender_domains=False)
    assert _run(off, mail_from="bounce@evil-link.example") == {}


def test_bare_url_ip_is_asked_on_ip_lists(dns: DnsServer) -> None:
    f = _run(_detector(dns), text="Log in at http://192.0.2.2/owa/\n")["RBL_ZEN"]
    assert f.evidence == ("192.0.2.2 (url) listed: 127.0.0.2",)


@pytest.mark.parametrize("host", ["refused.example", "slow.example", "broken.example"])
def test_domain_errors_are_not_listings(dns: DnsServer, host: str) -> None:
    found = _run(_detector(dns), text=f"see https://{host}/x\n")
    assert "URIBL_DBL" not in found
    assert found and all(f.weight == 0.0 for f in found.values())


def test_lookup_cap(dns: DnsServer) -> None:
    text = "".join(f"https://capped{i}.example/\n" for i in range(10))
    det = _detector(dns, max_lookups=3)
    before = dns.count()
    found = _run(det, text=text, from_="a@cap-sender.test")
    assert dns.count() - before == 3
    assert found["REPUTATION_LOOKUP_CAP"].evidence == (
        "8 lookup(s) skipped (max_lookups = 3)",)


def test_answers_are_cached_positive_and_negative(dns: DnsServer) -> None:
    det = _detector(dns)
    _run(det, ip="192.0.2.2", text="https://cached-nx.example/\n")
    before = dns.count()
    found = _run(det, ip="192.0.2.2", text="https://cached-nx.example/\n")
    assert "RBL_ZEN" in found
    assert dns.count() == before


def test_offline_says_so_and_asks_nothing(dns: DnsServer) -> None:
    before = dns.count()
    found = _run(_detector(dns), ip="192.0.2.2", offline=True)
    assert set(found) == {"REPUTATION_OFFLINE"}
    assert found["REPUTATION_OFFLINE"].evidence == ("2 DNS list(s) not queried",)
    assert dns.count() == before


def test_received_hop(dns: DnsServer) -> None:
    headers = {"Received": "from smtp.isp.example (smtp.isp.example [192.0.2.2]) by "
                           "mx.client.example; Fri, 20 Nov 2026 09:30:00 +0000"}
    det = _detector(dns, received_hop=True)
    f = _run(det, ip="198.51.100.1", headers=headers)["RBL_ZEN"]
    assert f.evidence == ("192.0.2.2 (received) listed: 127.0.0.2",)
    assert "RBL_ZEN" not in _run(_detector(dns), ip="198.51.100.1", headers=headers)


def test_config_refuses_error_codes_and_bad_names() -> None:
    with pytest.raises(ValueError, match=r"127\.255\.255"):
        Settings(reputation={"ip_lists": [{"name": "Z", "zone": "z.test",
                                           "codes": {"127.255.255.254": 1.0}}]})
    with pytest.raises(ValueError, match=r"127\.0\.0\.0/8"):
        Settings(reputation={"ip_lists": [{"name": "Z", "zone": "z.test",
                                           "codes": {"10.0.0.2": 1.0}}]})
    with pytest.raises(ValueError, match="used twice"):
        Settings(reputation={"ip_lists": [{"name": "Z", "zone": "a.test"},
                                          {"name": "z", "zone": "b.test"}]})
    with pytest.raises(ValueError, match="extra"):
        Settings(reputation={"ip_lists": [{"name": "Z", "zone": "z.test", "wieght": 1}]})


def test_budget_must_stay_below_detector_budget() -> None:
    settings = Settings(reputation={**LISTS, "budget": 3.0})
    with pytest.raises(ConfigError, match="budget"):
        build(settings, Services())
