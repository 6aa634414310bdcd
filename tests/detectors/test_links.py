"""Links detector: each URL_* code on a message that should raise it, and the wrappers and
newsletters that must not (judge the inner URL, never an ESP wrapper's host)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailsift.config.schema import Settings
from mailsift.core.context import ScanContext
from mailsift.core.envelope import Envelope
from mailsift.core.errors import ConfigError
from mailsift.core.findings import Finding, Stage
from mailsift.detectors._domains import Protected, edit_distance, mixed_script, skeleton
from mailsift.detectors._unwrap import unwrap
from mailsift.detectors.base import Detector, Services
from mailsift.detectors.feeds import load_feeds
from mailsift.detectors.links import CODES, LinkDetector, build
from mailsift.history import MemoryHistory
from mailsift.parsing import parse_message
from mailsift.testing.messages import make_message


def _ctx(raw: bytes) -> ScanContext:
    return ScanContext(parse_message(raw), Envelope(rcpt_to=("bob@example.net",)), None, True,
                       1_800_000_000.0)


def _detector(history: MemoryHistory | None = None, **links: object) -> LinkDetector:
    settings = Settings(links=links, impersonation={"own_domains": ["example.org"],
                                                    "partner_domains": ["supplier.com"]})
    hist = history if history is not None else MemoryHistory()
    return build(settings, Services(history=hist))


def _run(html: str | None = None, text: str | None = "Hi\n", *,
         from_: str = "Alice <alice@sender.test>",
         det: LinkDetector | None = None) -> list[Finding]:
    raw = make_message(html=html, text=text, from_=from_)
    return list((det or _detector()).run(_ctx(raw)))


def _codes(findings: list[Finding]) -> set[str]:
    return {f.code for f in findings}


def test_contract() -> None:
    det = _detector()
    assert isinstance(det, Detector)
    assert det.stage is Stage.CONTENT
    assert det.codes == frozenset(CODES)
    assert all(c.startswith("URL_") for c in CODES)


def test_clean_links_raise_nothing() -> None:
    html = '<a href="https://www.wikipedia.org/wiki/Mail">www.wikipedia.org</a>'
    assert _run(html, "see https://lore.kernel.org/all/x@y/ and http://192.168.1.1/") == []


def test_ip_literal_public_only() -> None:
    assert _run(None, "router at http://10.1.2.3/admin and http://[::1]:8080/\n") == []
    found = _run(None, "login at http://8.8.4.4/paypal/ now\n")
    f = next(f for f in found if f.code == "URL_IP_LITERAL")
    assert f.category == "phish" and f.weight == 3.0 and "8.8.4.4" in f.evidence[0]
    assert "URL_IP_LITERAL" in _codes(_run(None, "http://134744072/x\n"))  # decimal 8.8.8.8


def test_userinfo_host_trick() -> None:
    found = _run(None, "https://www.paypal.com@evil.example/login\n")
    assert "URL_USERINFO" in _codes(found)
    assert "URL_USERINFO" not in _codes(_run(None, "https://git@github.com/x.git\n"))


def test_idn_homoglyph() -> None:
    found = _run(None, "https://xn--pypal-4ve.com/signin\n")  # pаypal with Cyrillic а
    assert "URL_IDN_HOMOGLYPH" in _codes(found)
    assert "URL_IDN_HOMOGLYPH" not in _codes(_run(None, "https://xn--mnchen-3ya.de/\n"))


def test_lookalikes_of_own_partner_and_brand() -> None:
    for url, target in (("https://examp1e.org/x", "example.org"),
                        ("https://example.co/invoice", "example.org"),
                        ("https://suppiler.com/pay", "supplier.com"),
                        ("https://rnicrosoft.com/login", "microsoft.com")):
        f = next(f for f in _run(None, url + "\n") if f.code == "URL_LOOKALIKE")
        assert target in f.evidence[0], (url, f.evidence)
    # a brand's own country domain is not a lookalike
    assert _run(None, "https://www.amazon.de/gp/\n") == []


def test_brand_written_inside_other_host() -> None:
    found = _run(None, "http://paypal.com.account-check.top/x\n")
    assert "URL_BRAND_IN_HOST" in _codes(found)
    assert _run(None, "https://images-na.ssl-images-amazon.com/x.png\n",
                from_="Amazon <order@amazon.com>") == []


def test_text_mismatch_and_its_newsletter_exemptions() -> None:
    html = '<a href="https://evil.example/login">https://www.paypal.com/signin</a>'
    f = next(f for f in _run(html) if f.code == "URL_TEXT_MISMATCH")
    assert "www.paypal.com" in f.evidence[0] and "evil.example" in f.evidence[0]
    # the sender's own site shown, its tracker linked: newsletters do that
    html = '<a href="https://clicks.tracker.test/abc">www.sender.test</a>'
    assert _run(html) == []
    # an opaque ESP tracker behind a shown domain is not judged by its host
    html = '<a href="https://u1.ct.sendgrid.net/ls/click?upn=xyz">www.shop.test</a>'
    assert _run(html) == []


def test_wrappers_are_judged_by_their_inner_url() -> None:
    # The 2025 mass false positive: a security wrapper around a good link must stay clean ...
    good = ("https://nam02.safelinks.protection.outlook.com/?url=https%3A%2F%2Fwww.wikipedia.org"
            "%2F&data=05%7C01")
    html = f'<a href="{good}">www.wikipedia.org</a>'
    assert _run(html) == []
    # ... and one around a bad link must still be seen.
    bad = "https://urldefense.com/v3/__https://8.8.4.4/paypal/__;!!abc"
    found = _run(f'<a href="{bad}">Sign in</a>')
    f = next(f for f in found if f.code == "URL_IP_LITERAL")
    assert "via urldefense.com" in f.evidence[0]


def test_unwrap_patterns() -> None:
    cases = {
        "https://www.google.com/url?q=https://a.test/x&sa=D": "https://a.test/x",
        "https://urldefense.proofpoint.com/v2/url?u=https-3A__b.test_p&d=x": "https://b.test/p",
        "https://t.example/r?u=aHR0cHM6Ly9jLnRlc3QvcGF0aA==": "https://c.test/path",
        "https://t.example/click/https%3A%2F%2Fd.test%2Fq": "https://d.test/q",
    }
    for outer, inner in cases.items():
        assert unwrap(outer).inner == inner, outer
    assert unwrap("https://x.list-manage.com/track/click?u=1&id=2").opaque
    nested = "https://www.google.com/url?q=https%3A%2F%2Fl.facebook.com%2Fl.php%3Fu%3Dhttps%253A%252F%252Fe.test%252F"
    assert unwrap(nested).inner.startswith("https://e.test")
    assert len(unwrap(nested).chain) == 3


def test_redirect_and_shortener() -> None:
    found = _run(None, "https://www.google.com/url?q=https://evil.example/x\n")
    assert "URL_REDIRECT" in _codes(found)
    assert "URL_REDIRECT" not in _codes(_run(
        None, "https://news.google.com/url?q=https://pbs.org/x\n", from_="g <a@google.com>"))
    assert "URL_SHORTENER" in _codes(_run(None, "https://bit.ly/3abcd\n"))


def test_feed_match_names_the_snapshot(tmp_path: Path) -> None:
    feed = tmp_path / "openphish.txt"
    feed.write_text("https://phish.example/login.php\n")
    domains = tmp_path / "baddomains.txt"
    domains.write_text("0.0.0.0 malware.test\n")
    settings = Settings(feeds={"url_lists": [str(feed)], "domain_lists": [str(domains)]})
    det = build(settings, Services(history=MemoryHistory(), feeds=load_feeds(settings.feeds)))
    found = _run(None, "http://phish.example/login.php and https://cdn.malware.test/a\n", det=det)
    f = next(f for f in found if f.code == "URL_FEED_MATCH")
    assert f.weight == 12.0 and f.artifact == "feed:openphish" and len(f.version) == 12
    assert len(f.evidence) == 2
    assert det.versions()["feed:openphish"] == f.version


def test_new_domain_only_when_history_is_warm() -> None:
    hist = MemoryHistory()
    det = _detector(hist, new_domain_min_learned=2)
    assert _run(None, "https://fresh.test/x\n", det=det) == []  # cold: silent
    for i in range(2):
        hist.record(f"u{i}@known.test", "known.test", ["bob@example.net"], 1.0,
                    link_domains=["seen.test"])
    found = _run(None, "https://fresh.test/x https://www.seen.test/\n", det=det)
    assert [f.evidence for f in found if f.code == "URL_NEW_DOMAIN"] == [("fresh.test",)]


def test_weights_are_configurable_and_typos_fail() -> None:
    det = _detector(weights={"URL_SHORTENER": 0.0})
    assert next(f for f in _run(None, "https://bit.ly/3abcd\n", det=det)
                if f.code == "URL_SHORTENER").weight == 0.0
    with pytest.raises(ConfigError):
        _detector(weights={"URL_NOPE": 1.0})


def test_domain_helpers() -> None:
    assert skeleton("раураl") == "paypal"  # Cyrillic
    assert skeleton("rnicrosoft") == skeleton("microsoft")
    assert edit_distance("paypal", "paypla") == 1
    assert edit_distance("abc", "xyzabc", limit=2) == 3
    assert mixed_script("аррӏе.com")
    assert not mixed_script("пример.рф")
    prot = Protected(own=["example.org"], brands=["paypal.com"])
    assert prot.lookalike("example.org") is None
    assert prot.lookalike("paypal.de") is None
    assert prot.lookalike("exarnple.org") is not None


def test_measured_false_positives_stay_fixed() -> None:
    # Safe Links URL pasted as the link text, same target as the href (seen on usrp-users)
    wrapped = ("https://nam03.safelinks.protection.outlook.com/?url=https%3A%2F%2Fpastebin.com"
               "%2FMNmV0CVM&amp;data=02%7C01")
    assert _run(f'<a href="{wrapped}">{wrapped}</a>') == []
    # a document link carrying a referrer parameter is judged as itself too (ti.com case)
    url = "http://www.ti.com/lit/an/swra029/swra029.pdf?ts=1&ref_url=https://www.google.com"
    assert _run(f'<a href="{url}">{url}</a>') == []
    # Proofpoint v3 writes https:/host; the shown host must match the unwrapped one
    pp = "https://urldefense.com/v3/__https:/kb.ettus.com/Building__;!!FbZ0!qeiY$"
    assert _run(f'<a href="{pp}">https://kb.ettus.com/Building</a>') == []
    # an opaque Mimecast rewrite is not judged by its host
    mc = "https://url.za.m.mimecastprotect.com/s/AbCdEfGh?domain=github.com"
    assert _run(f'<a href="{mc}">github.com</a>') == []
    # a brand-like product name is not a lookalike of a brand (pcloud vs icloud)
    assert _run(None, "https://u.pcloud.link/publink/show?code=x\n") == []
