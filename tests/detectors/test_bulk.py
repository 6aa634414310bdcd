"""Bulk detector: BCL from list headers, ESP signatures, content and volume; newsletters reach
BCL >= 6 (BULK), discussion-list mail and person-to-person mail stay low."""

from __future__ import annotations

from mailsift.config.schema import Settings
from mailsift.core.context import ScanContext
from mailsift.core.envelope import Envelope
from mailsift.core.findings import Finding, Stage
from mailsift.detectors.base import Detector, Services
from mailsift.detectors.bulk import CODES, BulkDetector, build
from mailsift.history import MemoryHistory
from mailsift.parsing import parse_message
from mailsift.testing.messages import make_message

NEWSLETTER_HTML = (
    "<html><body><p>Our autumn sale!</p>"
    '<a href="https://u1234.ct.sendgrid.net/ls/click?upn=abc">Shop now</a>'
    '<p><a href="https://shop.test/unsub?u=1">Unsubscribe</a></p>'
    '<img src="https://shop.test/o.gif" width="1" height="1" alt=""></body></html>'
)
NEWSLETTER_HEADERS = {
    "List-Unsubscribe": "<https://shop.test/unsub?u=1>, <mailto:unsub@shop.test>",
    "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    "X-SG-EID": "abcdef",
    "X-Campaign": "autumn-2026",
}


def _det(history: MemoryHistory | None = None, **bulk: object) -> BulkDetector:
    hist = history if history is not None else MemoryHistory()
    return build(Settings(bulk=bulk, history={"min_learned": 1}),
                 Services(history=hist))


def _run(raw: bytes, det: BulkDetector | None = None) -> list[Finding]:
    ctx = ScanContext(parse_message(raw), Envelope(), None, True, 0.0)
    return list((det or _det()).run(ctx))


def _level(found: list[Finding]) -> float:
    return found[0].weight if found else 0.0


def test_contract() -> None:
    det = _det()
    assert isinstance(det, Detector)
    assert det.stage is Stage.REPUTATION and det.codes == frozenset(CODES) == {"BULK_BCL"}


def test_newsletter_reaches_bulk_threshold_with_explained_signals() -> None:
    raw = make_message(from_="Shop <news@shop.test>", text=None, html=NEWSLETTER_HTML,
                       headers=NEWSLETTER_HEADERS)
    found = _run(raw)
    assert len(found) == 1
    f = found[0]
    assert f.code == "BULK_BCL" and f.category == "bulk"
    assert f.weight == 9.0 and f.evidence[0] == "BCL 9"
    for signal in ("list-unsubscribe web +2", "one-click unsubscribe +1",
                   "campaign header x-campaign +3", "ESP link u1234.ct.sendgrid.net +1",
                   "tracking pixel +1", "unsubscribe text +1", "robot sender news +1"):
        assert signal in f.evidence[1]
    assert Settings().policy.thresholds.bulk <= f.weight


def test_transactional_notification_stays_below_bulk() -> None:
    raw = make_message(from_="Shop <orders@shop.test>", text="Your order 123 has shipped.\n",
                       headers={"X-SES-Outgoing": "2026.01.01-1.2.3.4", "Feedback-ID": "1:x"})
    assert 0 < _level(_run(raw)) < 6


def test_discussion_list_mail_is_not_bulk() -> None:
    raw = make_message(from_="Dev Person <dev@person.test>", subject="Re: [PATCH] fix",
                       text="Looks good to me.\n", headers={
                           "List-Id": "<dev.lists.example.org>", "Precedence": "list",
                           "List-Unsubscribe": "<mailto:dev-leave@lists.example.org>",
                           "List-Post": "<mailto:dev@lists.example.org>",
                           "In-Reply-To": "<a@b>", "References": "<a@b>"})
    assert _level(_run(raw)) == 0
    assert _run(make_message()) == []  # plain person-to-person mail


def test_volume_from_sender_history() -> None:
    hist = MemoryHistory()
    hist.record("news@shop.test", "shop.test", [f"u{i}@example.org" for i in range(30)], 1.0)
    raw = make_message(from_="Shop <news@shop.test>", text="Deals\n",
                       headers={"Precedence": "bulk"})
    found = _run(raw, _det(hist, volume_recipients=20))
    assert "volume 30 recipients +2" in found[0].evidence[1]
    assert _level(found) == 5.0  # precedence bulk +2, robot sender +1, volume +2


def test_weight_override_scales_the_level() -> None:
    raw = make_message(from_="Shop <news@shop.test>", text=None, html=NEWSLETTER_HTML,
                       headers=NEWSLETTER_HEADERS)
    assert _level(_run(raw, _det(weights={"BULK_BCL": 4.5}))) == 4.5
