"""Category -> action presets (Standard and Strict) and the recipient-policy choice.

Standard follows what large providers ship as their default protection: phishing, malware and
impersonation are quarantined, spam goes to the junk folder, and bulk mail (newsletters,
marketing, notifications) reaches the inbox *tagged* (``X-Mailsift-Category: bulk``) so a
client or Sieve rule can file it, as Gmail's Promotions tab does: a newsletter the reader
subscribed to is not a threat, and a proper one (List-Unsubscribe, one-click unsubscribe) scores
a *higher* bulk level than a sloppy one. Strict also quarantines high-confidence spam and
spoofing and junks bulk mail, at a lower threshold (see ``Thresholds``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from mailsift.config.schema import PolicySettings, RecipientPolicy, Thresholds
from mailsift.core.verdict import Action, Category

__all__ = ["PRESETS", "ResolvedPolicy", "choose_policy"]

_STANDARD = {
    Category.MALWARE: Action.QUARANTINE,
    Category.PHISH_HIGH: Action.QUARANTINE,
    Category.PHISH: Action.QUARANTINE,
    Category.SPAM_HIGH: Action.JUNK,
    Category.SPOOF: Action.JUNK,
    Category.IMPERSONATION_USER: Action.QUARANTINE,
    Category.IMPERSONATION_DOMAIN: Action.QUARANTINE,
    Category.PHISH_SUSPECT: Action.JUNK,
    Category.SPAM: Action.JUNK,
    Category.BULK: Action.TAG,
    Category.CLEAN: Action.DELIVER,
}
_STRICT = {
    **_STANDARD,
    Category.SPAM_HIGH: Action.QUARANTINE,
    Category.SPOOF: Action.QUARANTINE,
    Category.BULK: Action.JUNK,
}

PRESETS: Mapping[str, Mapping[Category, Action]] = MappingProxyType({
    "standard": MappingProxyType(_STANDARD),
    "strict": MappingProxyType(_STRICT),
})


@dataclass(frozen=True, slots=True)
class ResolvedPolicy:
    """The policy that applies to one recipient, with its effective thresholds and actions."""

    name: str
    preset: str
    thresholds: Thresholds
    actions: Mapping[Category, Action]
    on_error: str


def _resolve(settings: PolicySettings, name: str, preset: str,
             overrides: Mapping[Category, Action], on_error: str | None) -> ResolvedPolicy:
    actions = {**PRESETS[preset], **settings.actions, **overrides}
    thresholds = settings.strict_thresholds if preset == "strict" else settings.thresholds
    return ResolvedPolicy(name, preset, thresholds, MappingProxyType(actions),
                          on_error or settings.on_error)


def _matches(policy: RecipientPolicy, recipient: str) -> bool:
    rcpt = recipient.lower()
    if rcpt in (r.lower() for r in policy.recipients):
        return True
    domain = rcpt.rsplit("@", 1)[-1]
    return any(domain == d.lower() or domain.endswith("." + d.lower()) for d in policy.domains)


def choose_policy(settings: PolicySettings, recipient: str | None) -> ResolvedPolicy:
    """The recipient's first matching policy (policies are never merged), else the default."""
    chosen: RecipientPolicy | None = None
    if recipient:
        chosen = next((p for p in settings.policies if _matches(p, recipient)), None)
    key = (id(settings), chosen.name if chosen else "")
    cached = _CACHE.get(key)
    if cached is not None and cached[0] is settings:
        return cached[1]
    if chosen is not None:
        resolved = _resolve(settings, chosen.name, chosen.preset, chosen.actions,
                            chosen.on_error)
    else:
        resolved = _resolve(settings, "default", settings.preset, {}, None)
    if len(_CACHE) > 256:
        _CACHE.clear()
    _CACHE[key] = (settings, resolved)
    return resolved


# Settings are immutable; resolving a policy per message cost ~0.1 ms (enum look-ups), so the
# result is kept per settings object (checked by identity, ids can be reused).
_CACHE: dict[tuple[int, str], tuple[PolicySettings, ResolvedPolicy]] = {}
