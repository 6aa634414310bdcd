"""Offline unwrapping of redirect, security-rewrite and click-tracking links, and the list of
well-known email service providers (ESPs) shared by the links and bulk detectors.

Nothing here touches the network: a wrapper is unwrapped only when the inner URL is written in
the wrapper itself (a query parameter, a path segment, base64 of either, Proofpoint's encodings).
Opaque click trackers (SendGrid ``/ls/click?upn=...``, Mailchimp ``list-manage.com/track``) cannot
be unwrapped; callers must not judge their host as if it were the destination. A real 2025 mass
false positive came from exactly that: a wrapper host judged instead of the inner URL.
"""

from __future__ import annotations

import base64
import binascii
import html
import re
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import parse_qsl, unquote, urlsplit

from mailsift.core.message import Url
from mailsift.parsing import make_url

__all__ = [
    "ESP_HEADERS",
    "ESP_HOSTS",
    "ESP_TRANSPORT_HEADERS",
    "SECURITY_WRAPPERS",
    "Unwrapped",
    "host_in",
    "unwrap",
    "url_chain",
]

#: Link-tracking hosts of email service providers (suffix match on the host).
ESP_HOSTS: frozenset[str] = frozenset({
    "sendgrid.net", "list-manage.com", "mailchi.mp", "mcsv.net", "mandrillapp.com",
    "rs6.net", "constantcontact.com", "exacttarget.com", "exct.net", "hubspotlinks.com",
    "hubspotemail.net", "hs-sites.com", "mktoedge.com", "mkt.com", "mktossl.com", "mailgun.org",
    "sparkpostmail.com", "mjt.lu", "mailjet.com", "sendibt2.com", "sendibt3.com",
    "sendibm1.com", "sendinblue.com", "brevo.com", "r.sender-sib.com", "createsend.com",
    "createsend1.com", "cmail19.com", "cmail20.com", "klclick.com", "klclick1.com",
    "klclick3.com", "klaviyomail.com", "customeriomail.com", "awstrack.me", "pstmrk.it",
    "convertkit-mail.com", "convertkit-mail2.com", "ck.page", "mlsend.com", "mlsend2.com",
    "aweber.com", "icptrack.com", "gr8.com", "getresponse.com", "emlnk.com", "emltrk.com",
    "eloqua.com", "en25.com", "pardot.com", "salesforce.com", "sfmc-content.com",
    "mailerlite.com", "moosend.com", "omnisend.com", "campaign-archive.com", "substack.com",
    "beehiiv.com", "mail.beehiiv.com", "cmail1.com", "cmail2.com", "intercom-mail.com",
    "intercom-clicks.com", "mailchimpapp.net", "smtp2go.com", "elasticemail.com",
    "postmarkapp.com", "infusionsoft.com", "keap-link.com",
    "acemlna.com", "acemlnb.com", "acemlnc.com", "activehosted.com",
})

#: Headers set by bulk/marketing campaign software (a campaign exists).
ESP_HEADERS: tuple[str, ...] = (
    "x-campaign", "x-campaignid", "x-campaign-id", "x-mc-user", "x-mailchimp-id", "x-mc-listid",
    "x-csa-complaints", "x-mailjet-campaign", "x-hs-cid", "x-job", "x-sfmc-stack",
    "x-rpcampaign", "x-cmail-tracking", "x-klaviyo-message-id", "x-ems-stamp",
    "x-emarsys-identify", "x-marketo-id", "x-mktmailer", "x-listmember", "x-ac-tid",
    "x-mailin-eid", "x-sib-id",
)

#: Headers of sending infrastructure used for transactional mail as much as for bulk.
ESP_TRANSPORT_HEADERS: tuple[str, ...] = (
    "x-sg-eid", "x-sg-id", "x-mailgun-sid", "x-mailgun-tag", "x-mailgun-variables",
    "x-mandrill-user", "x-ses-outgoing", "x-mj-mid", "x-pm-message-id", "x-feedback-id",
)

#: Rewriters of the *sending* organisation's mail security (they are not redirect abuse).
SECURITY_WRAPPERS: frozenset[str] = frozenset({
    "safelinks.protection.outlook.com", "urldefense.proofpoint.com", "urldefense.com",
    "linkprotect.cudasvc.com", "protect-us.mimecast.com", "protect-eu.mimecast.com",
    "protect.mimecast.com", "url.emailprotection.link", "secure-web.cisco.com",
    "clicktime.symantec.com", "scanner.topsec.com", "eu1.protection.sophos.com",
    "us-east-2.protection.sophos.com", "nam.safelink.emails.azure.net",
    "mimecastprotect.com", "protection.outlook.com", "trendmicro.com", "fireeye.com",
})

#: Known open redirectors: hosts that forward to any URL given in a parameter.
OPEN_REDIRECTORS: frozenset[str] = frozenset({
    "google.com", "www.google.com", "l.facebook.com", "lm.facebook.com", "l.instagram.com",
    "www.youtube.com", "youtube.com", "linkedin.com", "www.linkedin.com", "t.umblr.com",
    "slack-redir.net", "away.vk.com", "href.li", "www.bing.com", "bing.com", "out.reddit.com",
})

_EMBEDDED = re.compile(r"(?i)(?:https?|hxxps?)(?::|%3a)(?:/|%2f|\\/){2}[^\s\"'<>]+")
_B64_URL = re.compile(r"aHR0c[A-Za-z0-9+/=_-]{8,}")


def host_in(host: str, hosts: frozenset[str]) -> str:
    """The entry of ``hosts`` that ``host`` is or is a subdomain of, or ``""``."""
    cand = host
    while "." in cand:
        if cand in hosts:
            return cand
        cand = cand[cand.find(".") + 1 :]
    return ""


@dataclass(frozen=True, slots=True)
class Unwrapped:
    """A link and what it wraps: ``chain[0]`` is the link itself, ``chain[-1]`` the innermost URL
    written in it; ``kinds`` names each wrapper (``security``, ``esp``, ``redirector``,
    ``tracker`` for an unknown host that merely carries a URL in a parameter, which may be
    the destination or just a reference such as ``?ref_url=``). ``opaque`` is set when the
    outer link is an ESP tracker or security rewrite with no readable destination."""

    chain: tuple[str, ...]
    kinds: tuple[str, ...] = ()
    opaque: bool = False

    @property
    def inner(self) -> str:
        return self.chain[-1]


def _proofpoint(parts_query: str, path: str, host: str) -> str:
    if host.endswith("urldefense.proofpoint.com"):
        for key, value in parse_qsl(parts_query):
            if key == "u":
                return unquote(value.replace("-", "%").replace("_", "/"))
    if host.endswith("urldefense.com") and "/v3/__" in path:
        inner = path.split("/v3/__", 1)[1]
        inner = inner.split("__;", 1)[0].rstrip("_")
        # v3 writes "https:/host" when the original was "https://host" copied through a client
        return re.sub(r"^(https?):/(?!/)", r"\1://", inner, flags=re.I)
    return ""


def _b64(value: str) -> str:
    token = value.replace("-", "+").replace("_", "/")
    token += "=" * (-len(token) % 4)
    try:
        text = base64.b64decode(token, validate=False).decode("utf-8", "strict")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return ""
    match = _EMBEDDED.match(text)
    return match.group(0) if match else ""


_HINTS = ("http", "hxxp", "www.", "aHR0c", "%3a", "%3A", "-3A__")


def _inner(url: str) -> str:
    """The URL written inside ``url``, or ``""``."""
    rest = url[url.find("//") + 2 :] if "//" in url[:10] else url
    if not any(hint in rest for hint in _HINTS):
        return ""  # fast path: most links carry no second URL (measured: ~90% of links)
    if "&amp;" in url or "&#" in url:
        url = html.unescape(url)  # hrefs copied out of HTML source keep their entities
    try:
        parts = urlsplit(url)
    except ValueError:
        return ""
    host = (parts.hostname or "").lower()
    found = _proofpoint(parts.query, parts.path, host)
    if found:
        return found
    for _key, value in parse_qsl(parts.query, keep_blank_values=False):
        value = value.strip()
        match = _EMBEDDED.match(value)
        if match:
            return match.group(0)
        if value.lower().startswith("www."):
            return "http://" + value
        if value.startswith("aHR0c"):
            found = _b64(value)
            if found:
                return found
    # Path-embedded destinations: /click/https://x/..., /r/https%3A%2F%2F..., base64 segments.
    rest = parts.path + ("?" + parts.query if parts.query else "")
    match = _EMBEDDED.search(rest, 1)
    if match:
        return unquote(match.group(0)) if "%" in match.group(0)[:12] else match.group(0)
    match = _B64_URL.search(parts.path)
    if match:
        return _b64(match.group(0))
    return ""


@lru_cache(maxsize=8192)
def unwrap(url: str, host: str = "", max_depth: int = 5) -> Unwrapped:
    """Follow wrappers written into ``url`` (at most ``max_depth`` levels), offline. ``host``
    is the URL's host when the caller already knows it (saves parsing it again)."""
    chain = [url]
    kinds: list[str] = []
    current = url
    opaque = False
    for _ in range(max_depth):
        if not host:
            try:
                host = (urlsplit(current).hostname or "").lower()
            except ValueError:
                break
        inner = _inner(current)
        if host_in(host, SECURITY_WRAPPERS):
            kind = "security"
        elif host_in(host, ESP_HOSTS):
            kind = "esp"
        elif host in OPEN_REDIRECTORS or host_in(host, OPEN_REDIRECTORS):
            kind = "redirector"
        else:
            kind = "tracker"
        if not inner:
            opaque = len(chain) == 1 and kind in ("esp", "security")
            break
        inner = inner.replace("hxxp", "http").replace("\\/", "/")
        if inner.lower().startswith(("http%3a", "https%3a")):
            inner = unquote(inner)
        if inner == current or inner in chain:
            break
        kinds.append(kind)
        chain.append(inner)
        current = inner
        host = ""
    return Unwrapped(tuple(chain), tuple(kinds), opaque)


def url_chain(url: Url, wrapped: Unwrapped) -> list[Url]:
    """``url`` and the URLs written inside it (``wrapped = unwrap(url.url, url.host)``),
    outermost first, as ``Url`` objects; the chain ends at the first that does not parse."""
    chain = [url]
    for inner_text in wrapped.chain[1:]:
        inner = make_url(inner_text, url.source)
        if inner is None:
            break
        chain.append(inner)
    return chain
