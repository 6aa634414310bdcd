"""Links detector ("safe links", offline): judges every link of a message without fetching it.

Per link: unwrap redirect, security-rewrite and click-tracking wrappers written into the URL
(``_unwrap``) and judge the *innermost* URL — judging a wrapper host caused a real 2025 mass false
positive; opaque ESP trackers are not judged by their host at all. Then: IP-literal and userinfo
hosts, deceptive IDN (mixed-script / whole-script confusable), lookalikes of protected domains
(edit distance and homoglyph skeleton against own, partner and brand domains), protected names
inside unrelated hosts, shorteners, open redirectors, local threat feeds, domains never seen in
delivered mail (sender history), and HTML anchors whose visible text names another domain.

Cost: pure CPU, cached per host; no I/O (history lookups are in-memory or one indexed SQLite read
per link domain).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping, Sequence
from functools import lru_cache

from mailsift.config.detectors import LinkSettings
from mailsift.config.schema import Settings
from mailsift.core.auth import AuthStatus
from mailsift.core.context import ScanContext
from mailsift.core.findings import Family, Finding, Stage
from mailsift.core.message import Url
from mailsift.detectors._common import CodeBook, Collector
from mailsift.detectors._domains import Protected, first_label, mixed_script
from mailsift.detectors._unwrap import ESP_HOSTS, host_in, unwrap, url_chain
from mailsift.detectors.base import Services
from mailsift.detectors.feeds import FeedSet
from mailsift.detectors.spec import CodeSpec, DetectorSpec
from mailsift.history.base import SenderHistory
from mailsift.parsing import make_url, registrable_domain

__all__ = ["CODES", "SPEC", "LinkDetector", "build"]

CODES: Mapping[str, CodeSpec] = {
    "URL_FEED_MATCH": CodeSpec(12.0, Family.PHISH, "A link is on a local threat feed"),
    "URL_IDN_HOMOGLYPH": CodeSpec(5.0, Family.PHISH,
                                  "A link's internationalised host imitates Latin letters "
                                  "(homoglyphs)"),
    "URL_LOOKALIKE": CodeSpec(5.0, Family.PHISH, "A link's domain imitates a protected domain"),
    "URL_USERINFO": CodeSpec(4.0, Family.PHISH,
                             "A link hides its real host behind a host-like user name "
                             "(a.com@b.com)"),
    "URL_TEXT_MISMATCH": CodeSpec(3.0, Family.PHISH,
                                  "A link's visible text shows one domain, but it goes to another"),
    "URL_BRAND_IN_HOST": CodeSpec(3.0, Family.PHISH,
                                  "A protected domain is written inside an unrelated link host"),
    "URL_IP_LITERAL": CodeSpec(3.0, Family.PHISH, "A link goes to a bare public IP address"),
    "URL_REDIRECT": CodeSpec(1.0, Family.PHISH,
                             "A link goes through an open redirector to another domain"),
    "URL_SHORTENER": CodeSpec(1.0, Family.PHISH,
                              "A link uses a URL shortener that hides its destination"),
    "URL_NEW_DOMAIN": CodeSpec(1.0, Family.PHISH,
                               "A link goes to a domain never seen in delivered mail"),
}

_DISPLAY_DOMAIN = re.compile(
    r"^(?:(?:https?://|www\.)\S+|(?:[a-z0-9-]+\.)+(?:com|net|org|edu|gov|io|co|us|uk|de|fr|"
    r"info|biz|me|ca|au|nl|es|it|ch|ru|cn|jp|app|online|site|xyz)(?:[/:?#]\S*)?)$",
    re.IGNORECASE,
)
_HREF_SOURCES = ("href", "area", "form")


_LOCAL_NETS = tuple(ipaddress.ip_network(n) for n in (
    "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16",
    "172.16.0.0/12", "192.168.0.0/16", "::1/128", "fc00::/7", "fe80::/10",
))


@lru_cache(maxsize=4096)
def _public_ip(host: str) -> bool:
    """Not a LAN/loopback address (a router's admin page in a mailing-list thread is fine).
    Documentation ranges count as public: only examples use them, and examples are phish."""
    text = host.strip("[]")
    try:
        addr = ipaddress.ip_address(int(text, 0) if text.isdigit() or text.startswith("0x")
                                    else text)
    except ValueError:
        return True  # dotted-hex/octal tricks: nobody types those for a private address
    return not any(addr in net for net in _LOCAL_NETS)


def _from_failed(ctx: ScanContext) -> bool:
    """The From domain failed authentication (DMARC or composite), so it proves nothing."""
    auth = ctx.auth
    if auth is None:
        return False
    bad = (AuthStatus.FAIL, AuthStatus.PERMERROR)
    return bool((auth.dmarc and auth.dmarc.result in bad)
                or (auth.compauth and auth.compauth.result in bad))


def _userinfo(url: str) -> str:
    rest = url.split("://", 1)[-1]
    netloc = re.split(r"[/?#]", rest, maxsplit=1)[0]
    return netloc.rsplit("@", 1)[0] if "@" in netloc else ""


class LinkDetector:
    name = "links"
    stage = Stage.CONTENT
    codes = frozenset(CODES)

    def __init__(self, book: CodeBook, protected: Protected, shorteners: frozenset[str],
                 feeds: FeedSet, history: SenderHistory | None, *, new_domain_min: int = 1000,
                 max_urls: int = 200) -> None:
        self.book = book
        self.protected = protected
        self.shorteners = shorteners
        self.feeds = feeds
        self.history = history
        self.new_domain_min = new_domain_min
        self.max_urls = max_urls

    def versions(self) -> Mapping[str, str]:
        return self.feeds.versions()

    def run(self, ctx: ScanContext) -> Sequence[Finding]:
        out = Collector(self.book)
        msg = ctx.message
        sender_org = registrable_domain(msg.from_domain) if msg.from_domain else ""
        warm = self.history is not None and self.history.learned() >= self.new_domain_min
        spoofed = _from_failed(ctx)
        seen: set[str] = set()
        judged: set[str] = set()
        for url in msg.urls:
            if url.url in seen:
                continue
            seen.add(url.url)
            if len(seen) > self.max_urls:
                break
            self._link(url, sender_org, warm, spoofed, judged, out)
        return out.findings()

    def _link(self, url: Url, sender_org: str, warm: bool, spoofed: bool, judged: set[str],
              out: Collector) -> None:
        wrapped = unwrap(url.url, url.host)
        chain = url_chain(url, wrapped)
        final = chain[-1]
        for link in chain:  # a feed may list the wrapper or any hop
            hit = self.feeds.match_url(link.url, link.host)
            if hit:
                out.add("URL_FEED_MATCH", f"{link.url[:200]} [{hit.feed}: {hit.entry}]",
                        (f"feed:{hit.feed}", hit.version))
        if len(chain) == 1 and host_in(url.host, self.shorteners):
            out.add("URL_SHORTENER", url.url[:200])  # unless the destination is written in it
        for kind, link, nxt in zip(wrapped.kinds, chain, chain[1:], strict=False):
            # A redirector run by the sender itself (Google Alerts via news.google.com) is how
            # that sender counts clicks, not abuse.
            if kind == "redirector" and nxt.domain != link.domain and link.domain != sender_org:
                out.add("URL_REDIRECT", f"{link.host} -> {nxt.host}")
        if url.source in _HREF_SOURCES and url.display_text and not wrapped.opaque:
            self._text_mismatch(url, chain, sender_org, spoofed, out)
        if wrapped.opaque:
            return  # an ESP tracker's or security rewriter's host says nothing of the target
        # Judge the innermost URL, and every unknown host on the way that merely carries a URL
        # parameter (it may be the real destination: a PDF link with ?ref_url=...). Known
        # wrappers (security, ESP, redirector) are never judged by their own host.
        hops = [link for link, kind in zip(chain, wrapped.kinds, strict=False)
                if kind == "tracker"]
        for link in (*hops, final):
            key = f"{link.host}|{_userinfo(link.url)}"  # userinfo is judged per link
            if key not in judged:
                judged.add(key)
                self._host(link, f" (via {url.host})" if link is not url else "", sender_org,
                           warm, out)

    def _host(self, link: Url, via: str, sender_org: str, warm: bool, out: Collector) -> None:
        if link.is_ip:
            if _public_ip(link.host):
                out.add("URL_IP_LITERAL", f"{link.url[:200]}{via}")
            return
        info = _userinfo(link.url)
        if "." in info:
            out.add("URL_USERINFO", f"{link.url[:200]}{via}")
        if link.punycode:
            why = mixed_script(link.host)
            if why:
                out.add("URL_IDN_HOMOGLYPH", f"{link.host}: {why}{via}")
        look = self.protected.lookalike(link.domain)
        if look:
            out.add("URL_LOOKALIKE", f"{link.host} looks like {look.target} ({look.how}){via}")
        elif sender_org and first_label(sender_org) in self.protected.labels:
            pass  # a brand's own mail names its CDNs and partners however it likes
        else:
            token = self.protected.brand_in_host(link.host, link.domain)
            if token:
                out.add("URL_BRAND_IN_HOST", f"{link.host} uses {token!r}{via}")
        if (warm and self.history is not None and link.domain != sender_org
                and self.history.domain_first_seen(link.domain) is None):
            out.add("URL_NEW_DOMAIN", f"{link.domain}{via}")

    def _text_mismatch(self, url: Url, chain: list[Url], sender_org: str, spoofed: bool,
                       out: Collector) -> None:
        text = url.display_text.strip().rstrip(".,;:")
        if not _DISPLAY_DOMAIN.match(text):
            return
        shown = make_url(text)
        if shown is None or not shown.domain:
            return
        inner = make_url(unwrap(shown.url).inner)  # the text may itself show a wrapped URL
        shown = inner if inner is not None and inner.domain else shown
        final = chain[-1]
        targets = {link.domain for link in chain}
        if shown.domain in targets or final.domain == "":
            return
        if shown.domain.split(".")[0] == final.domain.split(".")[0]:
            return  # same name, other suffix (amazon.de shown, amazon.com linked)
        if not spoofed and (
                (final.domain == sender_org and not self.protected.is_protected(shown.domain))
                or shown.domain == sender_org):
            # Newsletters: the sender's own site shown, its click tracker linked (or its own
            # tracking host behind a third party's name). Only a forged From makes that deceive.
            return
        if host_in(final.host, ESP_HOSTS) and not self.protected.is_protected(shown.domain):
            return  # an ESP tracker whose destination we cannot read: judge nothing by it
        out.add("URL_TEXT_MISMATCH", f"shows {shown.host}, goes to {final.host}")


def build(settings: Settings, services: Services) -> LinkDetector:
    imp = settings.impersonation
    links = settings.links
    protected = Protected(imp.own_domains, imp.partner_domains, links.brands,
                          max_distance=links.max_edit_distance,
                          min_length=links.min_label_length)
    return LinkDetector(
        CodeBook("links", CODES, links.weights),
        protected,
        frozenset(links.shorteners),
        services.feeds or FeedSet.of(()),
        services.history,
        new_domain_min=links.new_domain_min_learned,
        max_urls=links.max_urls,
    )


SPEC = DetectorSpec(
    name="links", stage=Stage.CONTENT, order=20, prefix="URL_", codes=CODES,
    settings=LinkSettings, factory=build,
    summary="Safe links, offline: every link judged after unwrapping, never fetched",
)
