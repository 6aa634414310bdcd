"""Bulk detector: a bulk confidence level (BCL 0-9, after Microsoft's) for newsletters,
marketing and machine notifications, so that they land in BULK and not in PHISH or SPAM.

The level is a sum of small, explained signals, clamped to 0..9 and emitted as one ``BULK_BCL``
finding whose weight *is* the level (policy's ``bulk`` threshold, 6 by default, is "BCL >= 6"):

=====================================  =====
List-Unsubscribe with a web link        +2  (mailto only: +1)   } not through a
List-Unsubscribe-Post (RFC 8058)        +1                       } list manager
List-Id                                 +1                       }
through a list manager (List-Post...)   +1  (instead of those three, Precedence
                                            and the unsubscribe footer)
campaign header (X-Campaign, X-HS-Cid)  +3  } one fact (sent through
ESP header (X-SG-EID, X-SES-Outgoing..)  +2  } an ESP): the highest, plus
link through an ESP click tracker       +2  } +1 for a tracker next to a header
Precedence: bulk / junk                 +2  (not through a list manager)
Feedback-ID                             +1
Auto-Submitted: auto-generated          +1
robot local part (noreply, newsletter)  +1
"unsubscribe" in the body               +1  (not through a list manager)
tracking pixel (1x1 image)              +1
many links (>= 15)                      +1
volume: sender wrote to many recipients +2  (sender history, once warm)
a reply (In-Reply-To / References)      -2
=====================================  =====

Mailing lists (Mailman, mlmmj, Google Groups, vger) carry List-Id and List-Unsubscribe on every
message, discussions and CI feeds alike; the reader subscribed, so those headers count once
(+1) there. Measured: counting them separately sent a whole CI-results list to BULK.
Cost: header set intersections, a substring scan of the last 8k characters, an <img> scan.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from mailsift.config.detectors import BulkSettings
from mailsift.config.schema import Settings
from mailsift.core.context import ScanContext
from mailsift.core.findings import Family, Finding, Stage
from mailsift.detectors._common import CodeBook
from mailsift.detectors._unwrap import ESP_HEADERS, ESP_HOSTS, ESP_TRANSPORT_HEADERS, host_in
from mailsift.detectors.base import Services
from mailsift.detectors.spec import CodeSpec, DetectorSpec
from mailsift.history.base import SenderHistory

__all__ = ["CODES", "SPEC", "BulkDetector", "build", "bulk_level"]

CODES: Mapping[str, CodeSpec] = {
    "BULK_BCL": CodeSpec(0.0, Family.BULK, "Bulk confidence level (0-9): newsletter, marketing "
                         "or machine notification; the weight is the level",
                         weight_note="the level (0-9)"),
}

_ROBOT_LOCAL = re.compile(r"^(?:no[-_.]?reply|do[-_.]?not[-_.]?reply|newsletters?|news|"
                          r"marketing|mailer|updates?|notifications?|notify|info|hello|offers?|"
                          r"promo(?:tions?)?|deals|bounces?)(?:[-_.+].*)?$", re.I)
#: Substrings of unsubscribe footers (plain ``in`` tests: a case-insensitive regex alternation
#: over the body was this detector's main cost).
_UNSUB_WORDS = ("unsubscribe", "opt-out", "opt out", "abmelden", "désinscri", "darse de baja",
                "manage your preferences", "email preferences", "manage preferences")
_IMG = re.compile(r"<img\b[^>]{0,600}>", re.I)
_ONE_PX = re.compile(r"""(?:width|height)\s*[=:]\s*["']?1(?:px)?\b""", re.I)
#: Unsubscribe footers sit at the end of a body; scanning only the tail keeps this cheap on
#: long messages (measured: the whole-body scan was the detector's main cost).
_TAIL = 8_000
_HTML_SCAN = 200_000


_CAMPAIGN = frozenset(ESP_HEADERS)
_TRANSPORT = frozenset(ESP_TRANSPORT_HEADERS)


_LIST_HEADERS = ("list-post", "list-archive", "mailing-list", "x-mailing-list", "list-help")


def _list_manager(ctx: ScanContext) -> bool:
    """Delivered by a mailing-list manager rather than sent as a campaign."""
    msg = ctx.message
    if any(msg.header(h) for h in _LIST_HEADERS):
        return True
    if msg.first_header("precedence").strip().lower() == "list":
        return True
    sender = (msg.sender.addr if msg.sender else "").lower()
    return "-bounces" in sender or sender.startswith("owner-") or "-owner@" in sender


def _pixel(html: str) -> bool:
    """An image of 1x1 pixels: an open tracker."""
    if "<img" not in html and "<IMG" not in html:
        return False
    return any(len(_ONE_PX.findall(tag)) >= 2 for tag in _IMG.findall(html))


def bulk_level(ctx: ScanContext, esp_hosts: frozenset[str], history: SenderHistory | None,
               volume_recipients: int, min_learned: int) -> tuple[int, list[str]]:
    """The BCL and the signals that made it, e.g. ``(7, ["list-unsubscribe web +2", ...])``."""
    msg = ctx.message
    signals: list[tuple[str, int]] = []
    unsub = " ".join(msg.header("list-unsubscribe")).lower()
    precedence = msg.first_header("precedence").strip().lower()
    via_list = _list_manager(ctx)
    if via_list:
        # Mail through a list manager (Mailman, mlmmj, groups.io, Google Groups, vger) carries
        # the same List-* headers, Precedence and unsubscribe footer whether it is a
        # discussion, an announcement or a CI feed; the reader subscribed to the list, so
        # together they count as one small signal.
        signals.append(("mailing list", 1))
    else:
        if unsub:
            signals.append(("list-unsubscribe web", 2) if "http" in unsub
                           else ("list-unsubscribe mailto", 1))
        if msg.header("list-unsubscribe-post"):
            signals.append(("one-click unsubscribe", 1))
        if msg.header("list-id"):
            signals.append(("list-id", 1))
    if precedence in ("bulk", "junk") and not via_list:
        signals.append((f"precedence {precedence}", 2))
    # Sent through an ESP: one fact, shown by a campaign header (+3), a transport header (+2)
    # or a click-tracker link (+2); a tracker link next to a header adds +1 (click tracking).
    present = msg.header_index.keys()
    campaign = sorted(present & _CAMPAIGN)
    transport = sorted(present & _TRANSPORT)
    tracker = next((u.host for u in msg.urls[:200] if host_in(u.host, esp_hosts)), "")
    if campaign:
        signals.append((f"campaign header {campaign[0]}", 3))
    elif transport:
        signals.append((f"ESP header {transport[0]}", 2))
    if tracker:
        signals.append((f"ESP link {tracker}", 1 if campaign or transport else 2))
    if msg.header("feedback-id"):
        signals.append(("feedback-id", 1))
    if msg.first_header("auto-submitted").strip().lower().startswith("auto-generated"):
        signals.append(("auto-submitted", 1))
    if msg.from_addr and _ROBOT_LOCAL.match(msg.from_addr.local):
        signals.append((f"robot sender {msg.from_addr.local}", 1))
    tail = (msg.body_text[-_TAIL:] + " " + msg.html[-_TAIL:]).lower()
    if not via_list and any(word in tail for word in _UNSUB_WORDS):
        signals.append(("unsubscribe text", 1))
    if msg.html and _pixel(msg.html[:_HTML_SCAN]):
        signals.append(("tracking pixel", 1))
    if sum(1 for u in msg.urls if u.source == "href") >= 15:
        signals.append(("many links", 1))
    if (history is not None and history.learned() >= min_learned and msg.from_addr
            and msg.from_addr.addr):
        stats = history.sender(msg.from_addr.addr)
        if stats is not None and stats.recipients >= volume_recipients:
            signals.append((f"volume {stats.recipients} recipients", 2))
    # A conversation is not bulk mail.
    if msg.header("in-reply-to") or msg.header("references"):
        signals.append(("a reply", -2))
    level = max(0, min(9, sum(points for _name, points in signals)))
    return level, [f"{name} {points:+d}" for name, points in signals]


class BulkDetector:
    name = "bulk"
    stage = Stage.REPUTATION
    codes = frozenset(CODES)

    def __init__(self, book: CodeBook, esp_hosts: frozenset[str], history: SenderHistory | None,
                 *, volume_recipients: int = 20, min_learned: int = 1000) -> None:
        self.book = book
        self.esp_hosts = esp_hosts
        self.history = history
        self.volume_recipients = volume_recipients
        self.min_learned = min_learned

    def versions(self) -> Mapping[str, str]:
        return {}

    def run(self, ctx: ScanContext) -> Sequence[Finding]:
        level, signals = bulk_level(ctx, self.esp_hosts, self.history, self.volume_recipients,
                                    self.min_learned)
        if level == 0:
            return ()
        # The weight is the level itself, scaled only if an operator overrides BULK_BCL's weight
        # (the override is the weight of BCL 9; 0 keeps the level as is).
        scale = self.book.weights["BULK_BCL"] / 9 if self.book.weights["BULK_BCL"] else 1.0
        return (self.book.finding("BULK_BCL", (f"BCL {level}", "; ".join(signals)),
                                  weight=round(level * scale, 2)),)


def build(settings: Settings, services: Services) -> BulkDetector:
    bulk = settings.bulk
    return BulkDetector(
        CodeBook("bulk", CODES, bulk.weights), ESP_HOSTS | frozenset(bulk.esp_hosts),
        services.history,
        volume_recipients=bulk.volume_recipients, min_learned=settings.history.min_learned,
    )


SPEC = DetectorSpec(
    name="bulk", stage=Stage.REPUTATION, order=20, prefix="BULK_", codes=CODES,
    settings=BulkSettings, factory=build,
    summary="Bulk confidence level (BCL 0-9) for newsletters, marketing and notifications",
)
