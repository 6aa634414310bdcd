"""Issue 20's target on the robustness set: a lure whose link domain is listed on a domain list
ends as junk or worse.

The documented example configuration (``docs/examples/reputation.toml``) is loaded as an
operator would copy it, its zones pointed at the local test DNS server, and every link domain
of each lure (registrable domain, after unwrapping redirectors) is listed there with DBL's
weakest listing code, 127.0.1.2 "spam domain". Two checks:

* with the default detectors plus the lists, every lure with a link is caught, including
  ``lures/13-sharepoint-lookalike-rfp``, which the offline defaults miss (tests/test_robustness.py);
* with only the reputation detector, the listing alone takes each such lure to junk or worse.

Legitimate mail is not scanned here: no list entry of the test zone names a legitimate domain.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mailsift.config.schema import Settings
from mailsift.core.envelope import Envelope
from mailsift.detectors._unwrap import unwrap
from mailsift.parsing import make_url, parse_message, registrable_domain
from mailsift.pipeline.build import ScanOptions, build_pipeline
from mailsift.rollout.robustness import RobustnessCase, caught, robustness_cases
from mailsift.testing.dns import DnsServer

EXAMPLE = Path(__file__).resolve().parents[1] / "docs" / "examples" / "reputation.toml"
pytestmark = pytest.mark.timeout(600)


def _link_domains(case: RobustnessCase) -> set[str]:
    out: set[str] = set()
    for url in parse_message(case.raw).urls:
        for hop in unwrap(url.url, url.host).chain:
            link = make_url(hop, url.source)
            if link is not None and link.host and not link.is_ip:
                out.add(registrable_domain(link.host))
    return {d for d in out if "." in d}


LURES = [(c, _link_domains(c)) for c in robustness_cases("threat")]
WITH_LINKS = [(c, d) for c, d in LURES if d]


@pytest.fixture(scope="module")
def dns() -> Iterator[DnsServer]:
    zones: dict[str, dict[str, Any]] = {}
    for _case, domains in WITH_LINKS:
        for domain in domains:
            zones[f"{domain}.dbl.test"] = {"A": ["127.0.1.2"]}
    with DnsServer(zones) as srv:
        yield srv


def _settings(dns: DnsServer, **over: Any) -> Settings:
    data = tomllib.loads(EXAMPLE.read_text())
    rep = data["reputation"]
    for kind in ("ip_lists", "domain_lists"):
        for entry in rep[kind]:
            entry["zone"] = f"{entry['name'].lower()}.test"
    data.pop("ratelimit", None)
    data.pop("greylist", None)
    return Settings.model_validate({**data, "dns": {"nameservers": ["127.0.0.1"],
                                                    "port": dns.port}, **over})


def test_enough_lures_have_links() -> None:
    assert len(WITH_LINKS) >= 30, len(WITH_LINKS)
    assert any(c.id == "lures/13-sharepoint-lookalike-rfp" for c, _d in WITH_LINKS)


def test_listed_link_domain_catches_every_lure_with_the_defaults(dns: DnsServer) -> None:
    pipeline = build_pipeline(_settings(dns), ScanOptions(offline=False))
    missed = []
    for case, _domains in WITH_LINKS:
        result = pipeline.scan(case.raw, Envelope(), message_id=case.id)
        if not caught(result.verdict.action):
            missed.append(f"{case.id}: {result.verdict.category.value}/"
                          f"{result.verdict.action.value}")
        assert "URIBL_DBL" in {f.code for f in result.findings}, case.id
    assert not missed, missed


def test_the_listing_alone_junks_each_lure(dns: DnsServer) -> None:
    settings = _settings(dns, detectors={"enabled": ["parse", "reputation"]})
    pipeline = build_pipeline(settings, ScanOptions(offline=False))
    for case, domains in WITH_LINKS:
        result = pipeline.scan(case.raw, Envelope(), message_id=case.id)
        hit = [f for f in result.findings if f.code == "URIBL_DBL"]
        assert hit, case.id
        by_link = {e.split(" ", 1)[0] for e in hit[0].evidence if " (url) " in e}
        assert by_link and by_link <= domains, (case.id, hit[0].evidence, domains)
        assert caught(result.verdict.action), (case.id, result.verdict.action)


def test_nothing_listed_offline(dns: DnsServer) -> None:
    pipeline = build_pipeline(_settings(dns), ScanOptions(offline=True))
    case = next(c for c, _d in WITH_LINKS if c.id == "lures/13-sharepoint-lookalike-rfp")
    result = pipeline.scan(case.raw, Envelope(), message_id=case.id)
    codes = {f.code for f in result.findings}
    assert "URIBL_DBL" not in codes and "REPUTATION_OFFLINE" in codes
