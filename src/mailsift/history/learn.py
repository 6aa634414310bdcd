"""Feeding the sender history from scan results.

Learns only from mail that reached an inbox: the recipient's action was deliver or tag and the
category clean or bulk. Quarantined, junked, rejected and harmful mail never makes a sender
"known", and mail whose From failed DMARC or composite authentication is skipped so a spoofer
cannot borrow a known sender's reputation. The caller (delivery, after acting) decides when.
"""

from __future__ import annotations

from collections.abc import Sequence

from mailsift.core.auth import AuthStatus
from mailsift.core.result import ScanResult
from mailsift.core.verdict import Action, Category, Verdict
from mailsift.history.base import Learned, SenderHistory

__all__ = ["learn", "learn_many", "learnable", "recipients_of"]

_LEARN_ACTIONS = (Action.DELIVER, Action.TAG)
_LEARN_CATEGORIES = (Category.CLEAN, Category.BULK)
_MAX_LINK_DOMAINS = 50  # a newsletter links many domains; bound the writes per message


def _delivered(verdict: Verdict) -> bool:
    return verdict.action in _LEARN_ACTIONS and verdict.category in _LEARN_CATEGORIES


def recipients_of(result: ScanResult) -> tuple[str, ...]:
    """Envelope recipients, or the To/Cc addresses of a message scanned without an envelope."""
    if result.envelope.rcpt_to:
        return tuple(r.lower() for r in result.envelope.rcpt_to)
    msg = result.message
    return tuple(dict.fromkeys(a.addr.lower() for a in (*msg.to, *msg.cc) if a.addr))


def learn(history: SenderHistory, result: ScanResult, domain: str, when: float) -> bool:
    """Record ``result`` if it was delivered; ``domain`` is the From's registrable domain and
    ``when`` the delivery time (epoch seconds). Returns whether anything was learned."""
    entry = learnable(result, domain, when)
    if entry is not None:
        history.record(*entry)
    return entry is not None


def learnable(result: ScanResult, domain: str, when: float) -> Learned | None:
    """What ``learn`` records for ``result``, or ``None`` when it learns nothing from it."""
    msg = result.message
    if msg.from_addr is None or not msg.from_addr.addr:
        return None
    auth = result.auth
    if auth is not None:
        failed = (AuthStatus.FAIL, AuthStatus.PERMERROR)
        if (auth.dmarc and auth.dmarc.result in failed) or (
                auth.compauth and auth.compauth.result in failed):
            return None
    if result.recipients:
        rcpts = tuple(r.lower() for r, v in result.recipients.items() if _delivered(v))
    elif _delivered(result.verdict):
        rcpts = recipients_of(result)
    else:
        rcpts = ()
    if not rcpts:
        return None
    links = tuple(dict.fromkeys(u.domain for u in msg.urls if u.domain))[:_MAX_LINK_DOMAINS]
    return Learned(msg.from_addr.addr, domain, rcpts, when, msg.from_addr.display_name, links)


def learn_many(history: SenderHistory, items: Sequence[tuple[ScanResult, str]],
               when: float) -> int:
    """``learn`` for ``(result, domain)`` pairs, recorded together (one transaction on
    SQLite); returns how many were learned."""
    entries = [e for result, domain in items
               if (e := learnable(result, domain, when)) is not None]
    history.record_many(entries)
    return len(entries)
