"""What the milter tells the MTA about one message: a translation of the gateway's decision.

The milter decides nothing itself: ``MilterService.decide`` hands the message to
``Gateway.handle`` (the same path as the SMTP content filter: scan, retry recognition, the
circuit breaker, the shadow recorder and sender-history learning) and only translates the verdict
into a milter answer. A milter gives one answer for the whole message, so the **strictest**
recipient action applies (reject > tempfail > quarantine > junk > tag > deliver).

Guarantees, in milter terms:

* ``accept`` / ``hold``: the MTA keeps the message (hold: in Postfix's hold queue).
* ``discard`` (quarantine kept by mailsift): answered only after the raw message is durably in
  our quarantine (blob fsynced, trace row committed), so the MTA's copy can go.
* ``reject``: 550 with the reference id, so an admin finds the message in trace.
* ``tempfail``: 451; the sender keeps the message and retries. A retry has the same reference and
  is not recorded twice.

Mail-flow rules act through milter actions too: an accepted (or held) decision carries the
message as the gateway would deliver it and its recipients, and the milter turns the difference
into ``chgheader``/``insheader`` (subject prepend, added, set and removed headers), ``replacebody``
(the banner) and ``addrcpt``/``delrcpt`` (redirect, BCC). Outbound mail gets no result headers
and loses every header of ``[direction] strip_outbound_headers``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Literal

from mailsift.config.gateway import GatewaySettings, MilterSettings
from mailsift.core.envelope import Envelope
from mailsift.core.result import ScanResult
from mailsift.core.verdict import Action, Verdict
from mailsift.delivery.apply import result_headers
from mailsift.services.gateway import Decided, Gateway

__all__ = ["MilterDecision", "MilterService", "split_reply", "strictest"]

_XCODE = re.compile(r"^([245]\.\d{1,3}\.\d{1,3})\s+(.*)$", re.S)

Kind = Literal["accept", "hold", "discard", "reject", "tempfail"]

# Trace status of every recipient after each decision. "hold": Postfix keeps the message in its
# hold queue (released there with postsuper -H), so for mailsift it was handed on, not kept.
_STATUS: dict[str, str] = {"accept": "accepted", "hold": "accepted", "discard": "quarantined",
                           "reject": "rejected", "tempfail": "deferred"}


@dataclass(frozen=True, slots=True)
class MilterDecision:
    """One answer to the MTA plus the header edits that go with it. ``release_id`` is set
    for a copy mailsift released whose signed mark verified: its ``X-Mailsift-Release-*``
    headers stay (every other incoming ``X-Mailsift-*`` header is removed)."""

    kind: Kind
    ref: str
    add_headers: tuple[tuple[str, str], ...] = ()
    subject_tag: str = ""
    rcode: str = ""
    xcode: str = ""
    text: str = ""
    category: str = ""
    action: str = ""
    release_id: str = ""
    # the message as the gateway would deliver it (flow-rule edits) and its recipients
    # (redirect, BCC): the milter turns the difference into header, body and recipient edits
    raw: bytes = b""
    rcpt_to: tuple[str, ...] | None = None
    strip_prefixes: tuple[str, ...] = ()  # outbound: our internal headers never leave


def split_reply(text: str, default_xcode: str) -> tuple[str, str]:
    """``"5.7.1 Message rejected"`` -> (``"5.7.1"``, ``"Message rejected"``)."""
    match = _XCODE.match(text.strip())
    if match is None:
        return default_xcode, text.strip()
    return match.group(1), match.group(2)


def strictest(result: ScanResult) -> Verdict:
    """The verdict of the recipient with the strictest action (the message verdict if none)."""
    verdicts = list(result.recipients.values()) or [result.verdict]
    return max(verdicts, key=lambda v: v.action.strictness)


class MilterService:
    """Turns a rebuilt message into a :class:`MilterDecision` (call on the gateway's loop)."""

    def __init__(self, gateway: Gateway, gateway_settings: GatewaySettings,
                 milter_settings: MilterSettings) -> None:
        self.gateway = gateway
        self.gw = gateway_settings
        self.settings = milter_settings

    def _reply(self, kind: Kind, template: str, verdict: Verdict | None,
               ref: str) -> MilterDecision:
        category = verdict.category.value if verdict is not None else "error"
        action = verdict.action.value if verdict is not None else "tempfail"
        text = template.format(category=category, ref=ref, action=action)
        default = "5.7.1" if kind == "reject" else "4.7.1"
        xcode, rest = split_reply(text, default)
        rcode = "550" if kind == "reject" else "451"
        return MilterDecision(kind, ref, rcode=rcode, xcode=xcode, text=rest,
                              category=category, action=action)

    async def decide(self, raw: bytes, envelope: Envelope) -> MilterDecision:
        return await self.gateway.handle(raw, envelope, self)

    # -- the gateway's Enactor protocol ---------------------------------------------------------
    async def act(self, decided: Decided) -> MilterDecision:
        decision = self._decision(decided.result, decided.ref)
        if decided.released is not None:
            decision = replace(decision, release_id=decided.released)
        if decision.kind in ("accept", "hold"):
            outbound = strictest(decided.result).direction == "outbound"
            flow = self.gateway.flow
            strip = flow.direction.settings.strip_outbound_headers if outbound and flow else ()
            decision = replace(decision, raw=decided.raw,
                               rcpt_to=decided.result.envelope.rcpt_to,
                               strip_prefixes=strip,
                               add_headers=() if strip else decision.add_headers)
        # The strictest action applied to every recipient: the trace says what happened to
        # each copy (and a retry that is now accepted no longer shows "deferred").
        await self.gateway.hand_back(decided, _STATUS[decision.kind])
        return decision

    def took_effect(self, outcome: MilterDecision, result: ScanResult) -> bool:
        # as on the SMTP path: a verdict's tempfail (451) is not yet an outcome
        return outcome.kind != "tempfail"

    async def already(self, ref: str, result: ScanResult | None) -> MilterDecision:
        """A retry of a message finished earlier: the same answer again, nothing recorded or
        counted twice."""
        if result is None:
            return self.failed(ref, "scan")
        return self._decision(result, ref)

    def failed(self, ref: str, stage: str) -> MilterDecision:
        what = "scanning" if stage == "scan" else "local"
        return self._reply("tempfail", f"4.3.0 Temporary {what} problem, try again later "
                           "(ref {ref})", None, ref)

    def deferred(self, ref: str, text: str) -> MilterDecision:
        return self._reply("tempfail", text.replace("{", "{{").replace("}", "}}"), None, ref)

    def _decision(self, result: ScanResult, ref: str) -> MilterDecision:
        verdict = strictest(result)
        action = verdict.action
        if action is Action.REJECT:
            return self._reply("reject", self.gw.reject_text, verdict, ref)
        if action is Action.TEMPFAIL:
            return self._reply("tempfail", self.gw.tempfail_text, verdict, ref)
        headers = tuple(result_headers(result, verdict, ref)) if self.gw.add_headers else ()
        category = verdict.category.value
        if action is Action.QUARANTINE:
            if self.settings.quarantine == "hold":
                return MilterDecision("hold", ref, add_headers=headers,
                                      text=f"mailsift {category} ref {ref}",
                                      category=category, action=action.value)
            return MilterDecision("discard", ref, add_headers=headers, category=category,
                                  action=action.value)
        tag = self.gw.junk_subject_tag if action is Action.JUNK else ""
        return MilterDecision("accept", ref, add_headers=headers, subject_tag=tag,
                              category=category, action=action.value)
