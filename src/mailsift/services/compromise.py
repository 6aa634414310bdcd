"""Compromised-account alerts: an account of ours that starts sending like a compromised one.

Every outbound message is counted per sender and hour (``ConnState``: Redis shared by every
node, or memory): messages, outside recipients never seen from this sender before, spam /
phishing / malware verdicts, and messages the ``outbound_sender`` rate limit held back. When a
signal crosses its threshold (``[direction.compromise]``) an alert of kind
``compromised_account`` is raised through the rollout alerter (stored, logged, webhook, mail;
shown in the console's incidents and rollout pages and ``GET /v1/mailflow/alerts``) with the
numbers and the trace references of the sender's recent outbound messages. One alert per sender
per ``realert_hours``.

``judge`` is pure: counts in, the reasons out.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from mailsift.config.mailflow import CompromiseSettings, DirectionSettings
from mailsift.core.result import ScanResult
from mailsift.mailflow.direction import in_domains
from mailsift.services.connstate import ConnState
from mailsift.services.throttle import Deferral

__all__ = ["ALERT_KIND", "CompromiseMonitor", "HourCounts", "judge"]

log = logging.getLogger("mailsift.compromise")

ALERT_KIND = "compromised_account"
_BAD = ("spam", "phish", "malware")


@dataclass(frozen=True, slots=True)
class HourCounts:
    """One sender's outbound counts for the current hour, and its baseline."""

    messages: int
    baseline: float  # average outbound messages per hour over the baseline hours
    new_recipients: int
    bad: int
    held: int


def judge(c: HourCounts, s: CompromiseSettings) -> list[str]:
    """Why these counts look like a compromised account (empty: they do not)."""
    reasons = []
    if c.messages >= s.min_messages and c.messages >= s.volume_ratio * max(c.baseline, 1.0):
        times = c.messages / max(c.baseline, 1.0)
        reasons.append(f"{c.messages} outbound messages this hour, {times:.0f}x its baseline "
                       f"of {c.baseline:.1f}/h")
    if c.new_recipients >= s.new_recipients:
        reasons.append(f"{c.new_recipients} new outside recipients this hour")
    if c.bad >= s.bad_messages and c.bad >= s.bad_share * c.messages:
        reasons.append(f"{c.bad} of {c.messages} outbound messages this hour judged spam, "
                       "phishing or malware")
    if c.held >= s.held_by_limit:
        reasons.append(f"{c.held} messages this hour held by the outbound rate limit")
    return reasons


@dataclass
class CompromiseMonitor:
    """Counts outbound messages (``observe``, a gateway observer) and rate-limit holds
    (``held``, a gateway ``limited`` listener) and raises the alert through ``alert(subject,
    message)`` (called on the store's writer thread by the composition root)."""

    direction: DirectionSettings
    state: ConnState
    alert: Callable[[str, str], None]
    prefix: str = "mailsift:conn:"
    clock: Callable[[], float] = time.time
    recent: dict[str, list[str]] = field(default_factory=dict)  # sender -> recent refs
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    @property
    def settings(self) -> CompromiseSettings:
        return self.direction.compromise

    def observe(self, result: ScanResult) -> None:
        if self.settings.enabled and result.verdict.direction == "outbound":
            self._spawn(self.track(result))

    def held(self, result: ScanResult, deferral: Deferral) -> None:
        if self.settings.enabled:
            self._spawn(self.track(result, held=True))

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning("compromised-account monitor: %s", task.exception())

    async def drain(self) -> None:
        """Wait for the counting under way (tests, shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    @staticmethod
    def sender_of(result: ScanResult) -> str:
        env, msg = result.envelope, result.message
        return (env.mail_from or (msg.from_addr.addr if msg.from_addr else "")).lower()

    async def track(self, result: ScanResult, *, held: bool = False) -> list[str]:
        """Count one outbound message (or one held back) and alert when the sender's hour
        crosses a threshold. Returns the reasons found (empty: nothing unusual)."""
        s, sender = self.settings, self.sender_of(result)
        if not sender:
            return []
        hour = int(self.clock() // 3600)
        base = f"{self.prefix}cmp:{sender}:"
        ttl = (s.baseline_hours + 2) * 3600
        if held:
            counts = HourCounts(int(await self.state.get(f"{base}m:{hour}") or 0), 0.0,
                                int(await self.state.get(f"{base}n:{hour}") or 0),
                                int(await self.state.get(f"{base}b:{hour}") or 0),
                                await self.state.incr(f"{base}h:{hour}", ttl))
        else:
            refs = self.recent.setdefault(sender, [])
            refs.append(result.id)
            del refs[:-20]
            messages = await self.state.incr(f"{base}m:{hour}", ttl)
            new = 0
            for rcpt in result.envelope.rcpt_to:
                if in_domains(rcpt, self.direction.accepted_domains):
                    continue
                if await self.state.set(f"{base}r:{rcpt.lower()}", "1",
                                        s.recipient_memory_days * 86400, only_new=True):
                    new = await self.state.incr(f"{base}n:{hour}", ttl)
            new = new or int(await self.state.get(f"{base}n:{hour}") or 0)
            bad = int(await self.state.get(f"{base}b:{hour}") or 0)
            if result.verdict.category.value in _BAD:
                bad = await self.state.incr(f"{base}b:{hour}", ttl)
            counts = HourCounts(messages, 0.0, new, bad,
                                int(await self.state.get(f"{base}h:{hour}") or 0))
        if counts.messages >= s.min_messages:  # the baseline is read only when it matters
            past = [int(await self.state.get(f"{base}m:{hour - i}") or 0)
                    for i in range(1, s.baseline_hours + 1)]
            counts = HourCounts(counts.messages, sum(past) / len(past), counts.new_recipients,
                                counts.bad, counts.held)
        reasons = judge(counts, s)
        if reasons and await self.state.set(f"{base}alerted", "1",
                                            int(s.realert_hours * 3600), only_new=True):
            shown = ", ".join(self.recent.get(sender, [])[-10:]) or "-"
            message = ("; ".join(reasons) + f". Recent outbound messages (trace refs): "
                       f"{shown}; see mailsift trace --sender {sender}")
            self.alert(f"sender:{sender}", message)
        return reasons
