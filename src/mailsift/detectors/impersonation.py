"""Impersonation detector: protected people and protected domains imitated by outsiders.

User impersonation: the From display name is a protected person's name (word order, case,
punctuation, homoglyphs and extra words like "(CEO)" ignored) but the address is not one of
theirs. Domain impersonation: the From or Reply-To registrable domain is a lookalike of an own,
partner or brand domain (edit distance, homoglyph skeleton, same name under another suffix), or
the display name is nothing but a protected brand ("PayPal Service") on an unrelated domain.
First contact (sender history) adds weight to an impersonation finding, never stands alone here.

Mail from the organisation's own domains that passed authentication is never called
impersonation (a namesake colleague); unauthenticated own-domain mail is the spoof check's job.
Cost: a few dictionary look-ups and one history read per recipient.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from mailsift.config.detectors import ImpersonationSettings
from mailsift.config.schema import Settings
from mailsift.core.auth import AuthStatus
from mailsift.core.context import ScanContext
from mailsift.core.findings import Family, Finding, Stage
from mailsift.detectors._common import CodeBook, Collector, recipients
from mailsift.detectors._domains import Protected, first_label, skeleton
from mailsift.detectors.base import Services
from mailsift.detectors.spec import CodeSpec, DetectorSpec
from mailsift.history.base import SenderHistory, normalise_name
from mailsift.parsing import registrable_domain

__all__ = ["CODES", "SPEC", "ImpersonationDetector", "build"]

CODES: Mapping[str, CodeSpec] = {
    "IMP_USER_DISPLAY_NAME": CodeSpec(3.0, Family.IMPERSONATION_USER,
                                      "The sender uses a protected person's name from another "
                                      "address"),
    "IMP_DOMAIN_LOOKALIKE": CodeSpec(3.0, Family.IMPERSONATION_DOMAIN,
                                     "The sender's domain imitates a protected domain"),
    "IMP_REPLY_TO_LOOKALIKE": CodeSpec(3.0, Family.IMPERSONATION_DOMAIN,
                                       "Replies go to a domain that imitates a protected domain"),
    "IMP_BRAND_DISPLAY_NAME": CodeSpec(2.0, Family.IMPERSONATION_DOMAIN,
                                       "The sender's name is a protected brand, its domain is not"),
    "IMP_FIRST_CONTACT": CodeSpec(1.0, Family.IMPERSONATION_DOMAIN,
                                  "The impersonating sender never wrote to this recipient before"),
}

_WORD = re.compile(r"[^\W_]+", re.UNICODE)
#: Words that dress up a brand name without naming anybody ("PayPal Service Team").
_GENERIC = frozenset({
    "service", "services", "team", "support", "account", "accounts", "security", "notification",
    "notifications", "billing", "customer", "customers", "care", "online", "alert", "alerts",
    "info", "no", "reply", "noreply", "donotreply", "inc", "llc", "ltd", "corp", "corporation",
    "company", "the", "official", "help", "center", "centre", "desk", "admin", "administrator",
    "verification", "verify", "update", "updates", "mail", "email", "message", "messages",
    "department", "dept", "it", "helpdesk", "payments", "payment", "bank", "com", "net", "org",
    "de", "uk", "us", "www", "id", "login", "sign", "in", "secure", "office", "365",
})

_GENERIC_SKELETONS = frozenset(skeleton(w) for w in _GENERIC)


def _tokens(name: str) -> list[str]:
    return [skeleton(t) for t in _WORD.findall(name.lower())]


def _authenticated(ctx: ScanContext) -> bool | None:
    auth = ctx.auth
    if auth is None:
        return None
    return bool((auth.dmarc and auth.dmarc.result is AuthStatus.PASS)
                or (auth.compauth and auth.compauth.result is AuthStatus.PASS))


class ImpersonationDetector:
    name = "impersonation"
    stage = Stage.REPUTATION
    codes = frozenset(CODES)

    def __init__(self, book: CodeBook, protected: Protected,
                 users: Mapping[str, tuple[str, ...]], own: frozenset[str],
                 history: SenderHistory | None, *, brand_names: bool = True,
                 min_learned: int = 1000) -> None:
        self.book = book
        self.protected = protected
        self.own = own
        self.history = history
        self.brand_names = brand_names
        self.min_learned = min_learned
        # protected name -> (token skeletons as a set, addresses)
        self.users = {name: (frozenset(_tokens(name)), frozenset(addrs))
                      for name, addrs in users.items()}
        self.brand_labels = {skeleton(first_label(d)): d for d in protected.kinds}

    def versions(self) -> Mapping[str, str]:
        return {}

    def run(self, ctx: ScanContext) -> Sequence[Finding]:
        msg = ctx.message
        sender = msg.from_addr
        if sender is None or not sender.addr:
            return ()
        out = Collector(self.book)
        addr = sender.addr.lower()
        org = registrable_domain(sender.domain) if sender.domain else ""
        authed = _authenticated(ctx)
        internal = org in self.own
        family = ""
        if not (internal and authed in (True, None)) and self._user(sender.display_name, addr,
                                                                     out):
            family = "impersonation_user"
        look = self.protected.lookalike(org)
        if look:
            out.add("IMP_DOMAIN_LOOKALIKE", f"{addr}: {org} looks like {look.target} ({look.how})")
            family = family or "impersonation_domain"
        for reply in msg.reply_to:
            rorg = registrable_domain(reply.domain) if reply.domain else ""
            rlook = self.protected.lookalike(rorg) if rorg != org else None
            if rlook:
                out.add("IMP_REPLY_TO_LOOKALIKE",
                        f"{reply.addr}: {rorg} looks like {rlook.target} ({rlook.how})")
                family = family or "impersonation_domain"
        if self.brand_names and not look and not internal:
            brand = self._brand_name(sender.display_name, org)
            if brand:
                out.add("IMP_BRAND_DISPLAY_NAME", f"{sender.display_name!r} <{addr}> "
                                                  f"names {brand}")
                family = family or "impersonation_domain"
        findings = out.findings()
        if family and self._first_contact(ctx, addr):
            findings.append(self.book.finding(
                "IMP_FIRST_CONTACT", (f"{addr} -> {', '.join(recipients(ctx)[:3])}",),
                family=family))
        return findings

    def _user(self, display: str, addr: str, out: Collector) -> bool:
        if not display:
            return False
        tokens = set(_tokens(normalise_name(display)))
        hit = False
        for name, (needed, addrs) in self.users.items():
            # All words of the protected name present ("Jane Doe (CEO)", "Doe, Jane").
            if needed <= tokens and addr not in addrs:
                out.add("IMP_USER_DISPLAY_NAME", f"{display!r} <{addr}> uses the name of {name}")
                hit = True
        return hit

    def _brand_name(self, display: str, org: str) -> str:
        words = [t for t in _tokens(display) if t not in _GENERIC_SKELETONS]
        if not words or len(words) > 2:
            return ""
        joined = "".join(words)  # "Pay Pal" -> "paypal"
        target = self.brand_labels.get(joined) or (
            self.brand_labels.get(words[0]) if len(words) == 1 else "")
        if not target or first_label(org) == first_label(target) or org == target:
            return ""
        if self.protected.owner_of_label(org):
            return ""
        return target

    def _first_contact(self, ctx: ScanContext, addr: str) -> bool:
        hist = self.history
        if hist is None or hist.learned() < self.min_learned:
            return False
        return any(hist.pair(addr, rcpt) is None for rcpt in recipients(ctx))


def build(settings: Settings, services: Services) -> ImpersonationDetector:
    imp = settings.impersonation
    protected = Protected(imp.own_domains, imp.partner_domains, settings.links.brands,
                          max_distance=settings.links.max_edit_distance,
                          min_length=settings.links.min_label_length)
    own = frozenset(registrable_domain(d) for d in imp.own_domains)
    return ImpersonationDetector(
        CodeBook("impersonation", CODES, imp.weights), protected, imp.protected_users, own,
        services.history,
        brand_names=imp.brand_display_names, min_learned=settings.history.min_learned,
    )


SPEC = DetectorSpec(
    name="impersonation", stage=Stage.REPUTATION, order=10, prefix="IMP_", codes=CODES,
    settings=ImpersonationSettings, factory=build,
    summary="Protected people and domains imitated by outsiders",
)
