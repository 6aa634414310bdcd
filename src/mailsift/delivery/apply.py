"""Applying verdicts to a message in the mail flow: quarantine, relay, reject or defer.

The rule that shapes everything here: **a message answered 250 is never lost.** So we answer 250
only after every recipient's copy is relayed (next hop said 250), durably quarantined (blob
fsynced, row committed) or durably spooled for retry; otherwise 4xx and the sending MTA keeps it.

Recipients are split by what the verdict asks: each (action, category) group is relayed with its
own result headers. After DATA there is one reply for all recipients, so a ``reject`` for some
recipients but not others becomes quarantine for those (nothing is lost, an admin can release).
A retried message (same reference) skips the recipients already delivered or quarantined, so
retries after a 4xx never duplicate.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from mailsift.core.result import ScanResult
from mailsift.core.verdict import Action, DecisionStep, Override, Verdict
from mailsift.delivery.dsn import build_dsn
from mailsift.delivery.headers import add_headers, strip_headers, tag_subject
from mailsift.delivery.journal import RelayJournal
from mailsift.delivery.recorder import AsyncRecorder
from mailsift.delivery.relay import Relay, RelayOutcome
from mailsift.delivery.spool import Spool
from mailsift.store.deliveries import Attempt

__all__ = ["Deliverer", "RelayPool", "Reply", "pass_through", "result_headers"]

log = logging.getLogger("mailsift.delivery")
_DONE = ("delivered", "quarantined", "released", "bounced")
_RELAYED = (Action.DELIVER, Action.TAG, Action.JUNK)


@dataclass(frozen=True, slots=True)
class Reply:
    code: int
    text: str

    @property
    def line(self) -> str:
        return f"{self.code} {self.text}"


class RelayPool:
    """A few persistent SMTP sessions to the next hop, shared by concurrent messages."""

    def __init__(self, host: str, port: int, size: int, timeout: float, helo: str = "") -> None:
        self._idle: asyncio.Queue[Relay] = asyncio.Queue()
        for _ in range(size):
            self._idle.put_nowait(Relay(host, port, timeout=timeout, helo=helo))

    async def send(self, raw: bytes, mail_from: str | None, rcpts: Sequence[str]) -> RelayOutcome:
        relay = await self._idle.get()
        try:
            outcome = await relay.send(raw, mail_from, rcpts)
            if outcome.refused and not outcome.accepted and not outcome.uncertain and all(
                    r.startswith("connection") for r in outcome.refused.values()):
                # An idle session the next hop closed looks like a refusal: one fresh try.
                await relay.close()
                outcome = await relay.send(raw, mail_from, rcpts)
            return outcome
        finally:
            self._idle.put_nowait(relay)

    async def close(self) -> None:
        while not self._idle.empty():
            await self._idle.get_nowait().close()


def result_headers(result: ScanResult, verdict: Verdict, ref: str) -> list[tuple[str, str]]:
    headers: list[tuple[str, str]] = []
    if result.auth is not None and result.auth.header:
        headers.append(("Authentication-Results", result.auth.header))
    codes = [f.code for f in result.findings if f.acts][:20]
    headers += [
        ("X-Mailsift-Ref", ref),
        ("X-Mailsift-Category", verdict.category.value),
        ("X-Mailsift-Action", verdict.action.value),
        ("X-Mailsift-Score", f"{verdict.score:.2f}"),
    ]
    if codes:
        headers.append(("X-Mailsift-Findings", ", ".join(codes)))
    if verdict.action is Action.JUNK:
        headers.append(("X-Spam-Flag", "YES"))
    return headers


def pass_through(reply: str) -> Reply:
    """A next hop's permanent refusal as our reply; a reply without a 5xx code (a local
    refusal such as an unsafe address) becomes ``554 5.0.0`` with its text."""
    code, _, text = reply.partition(" ")
    if len(code) == 3 and code.isdigit() and code[0] == "5":
        return Reply(int(code), text or "5.0.0 Rejected by the next hop")
    return Reply(554, f"5.0.0 {reply}")


def _is_temp(reply: str) -> bool:
    return reply[:1] != "5"


class Deliverer:
    def __init__(self, relays: RelayPool, recorder: AsyncRecorder, spool: Spool, *,
                 reject_text: str, tempfail_text: str, junk_tag: str = "",
                 add_result_headers: bool = True, journal: RelayJournal | None = None,
                 max_age: float = 5 * 86400.0, dsn: bool = True,
                 reporting_mta: str = "",
                 strip_outbound: tuple[str, ...] = ("x-mailsift-", "x-spam-")) -> None:
        self.relays = relays
        self.strip_outbound = strip_outbound
        self.max_age = max_age
        self.dsn = dsn
        self.reporting_mta = reporting_mta or socket.getfqdn()
        self.journal = journal
        # ref -> holds: messages being applied, and "delivered" status writes not yet committed.
        # The journal keeps the entries of these when it compacts (see _relayed).
        self._in_flight: dict[str, int] = {}
        self.recorder = recorder
        self.spool = spool
        self.reject_text = reject_text
        self.tempfail_text = tempfail_text
        self.junk_tag = junk_tag
        self.add_result_headers = add_result_headers

    def _internal_header(self, name: str, _field: bytes) -> bool:
        return name.startswith(self.strip_outbound)

    def _text(self, template: str, verdict: Verdict, ref: str) -> str:
        own = next((o.note for o in verdict.overrides if o.kind == "mailflow-reject"), None)
        if own is not None:  # a mail-flow rule's own text (mailflow/step.py), as written
            return f"{own} (ref {ref})"
        return template.format(category=verdict.category.value, ref=ref,
                               action=verdict.action.value)

    @staticmethod
    def _verdicts(result: ScanResult) -> dict[str, Verdict]:
        if result.recipients:
            return dict(result.recipients)
        return {r: result.verdict for r in result.envelope.rcpt_to}

    @staticmethod
    def _mixed_reject(result: ScanResult, verdicts: dict[str, Verdict]) -> ScanResult:
        """Some recipients reject, others accept: the rejecting ones are quarantined instead."""
        changed = {}
        for rcpt, v in verdicts.items():
            if v.action is Action.REJECT:
                note = Override(DecisionStep.RECIPIENT_POLICY, "split", rcpt,
                                "reject -> quarantine", "other recipients accept this message")
                changed[rcpt] = replace(v, action=Action.QUARANTINE,
                                        overrides=(*v.overrides, note))
        if not changed:
            return result
        verdicts.update(changed)
        strictest = max(verdicts.values(), key=lambda v: v.action.strictness)
        return replace(result, recipients=verdicts, verdict=strictest)

    async def apply(self, result: ScanResult, raw: bytes, ref: str, received_at: float,
                    prior: Mapping[str, str] | None = None) -> Reply:
        self._hold(ref)
        try:
            return await self._apply(result, raw, ref, received_at, prior)
        finally:
            self._release(ref)

    def _hold(self, ref: str) -> None:
        self._in_flight[ref] = self._in_flight.get(ref, 0) + 1

    def _release(self, ref: str) -> None:
        left = self._in_flight.pop(ref) - 1
        if left:
            self._in_flight[ref] = left
        if self.journal is not None:
            self.journal.compact_if_large(set(self._in_flight))

    def _relayed(self, ref: str, recipients: Sequence[str]) -> None:
        """The next hop said 250: note it in the journal at once, before anything can yield,
        then queue the trace's ``delivered`` without waiting for its commit.

        Nothing waits for that commit because the reply does not depend on it: the next hop
        has the message, and until the status is committed the journal says so (a retry reads
        the journal, start-up folds it into the trace). Waiting cost one group commit of
        latency per message. The ref stays held until the commit, so compaction keeps its
        journal entry."""
        if self.journal is not None:
            self.journal.mark(ref, recipients)
        self._hold(ref)
        done = self.recorder.set_status_soon(ref, "delivered", recipients)
        done.add_done_callback(lambda fut: self._status_written(ref, fut))

    def _status_written(self, ref: str, fut: asyncio.Future[Any]) -> None:
        self._release(ref)
        if fut.cancelled():
            return
        if (exc := fut.exception()) is not None:
            log.warning("trace status of %s not written (%s); the relay journal has it", ref, exc)

    def _note(self, ref: str, outcome: str, replies: Mapping[str, str], *, attempt: int = 1,
              next_try: float | None = None, at: float | None = None) -> None:
        """Keep what the next hop answered for each recipient (the console's delivery
        details). Nothing waits for it; a DSN's spool entry (``ref.dsn``) is no message."""
        if not replies or ref.endswith(".dsn"):
            return
        when = time.time() if at is None else at
        done = self.recorder.note_attempts(ref, [
            Attempt(r, when, outcome, reply, attempt, next_try) for r, reply in replies.items()])
        done.add_done_callback(lambda fut: _log_failure(fut, ref))

    async def _apply(self, result: ScanResult, raw: bytes, ref: str, received_at: float,
                     prior: Mapping[str, str] | None = None) -> Reply:
        verdicts = self._verdicts(result)
        prior = {k.lower(): v for k, v in (prior or {}).items()}
        overall = result.verdict
        actions = {v.action for v in verdicts.values()}
        if Action.TEMPFAIL in actions:
            if not prior:
                await self.recorder.record(result, raw, received_at)
            return Reply(451, self._text(self.tempfail_text, overall, ref))
        if actions == {Action.REJECT}:
            if not prior:
                await self.recorder.record(result, raw, received_at)
            return Reply(550, self._text(self.reject_text, overall, ref))
        if Action.REJECT in actions:
            result = self._mixed_reject(result, verdicts)
        if not prior:
            await self.recorder.record(result, raw, received_at)
        todo = {r: v for r, v in verdicts.items() if prior.get(r.lower()) not in _DONE}
        groups: dict[tuple[Action, str], list[str]] = {}
        for rcpt, v in todo.items():
            if v.action in _RELAYED:
                groups.setdefault((v.action, v.category.value), []).append(rcpt)
        delivered_any = any(s == "delivered" for s in prior.values()) or any(
            v.action is Action.QUARANTINE for v in verdicts.values())
        deferred = False
        for (action, _), rcpts in sorted(groups.items(), key=lambda kv: -len(kv[1])):
            verdict = todo[rcpts[0]]
            data = raw
            if verdict.direction == "outbound":  # our verdict headers never leave us
                data = strip_headers(raw, self._internal_header)
            elif self.add_result_headers:
                data = add_headers(raw, result_headers(result, verdict, ref))
            if action is Action.JUNK:
                data = tag_subject(data, self.junk_tag)
            outcome = await self.relays.send(data, result.envelope.mail_from, rcpts)
            if outcome.accepted:
                self._relayed(ref, outcome.accepted)
                self._note(ref, "delivered", dict.fromkeys(outcome.accepted, outcome.reply))
            failed = [r for r in rcpts if r not in outcome.accepted]
            if not failed:
                delivered_any = True
                continue
            perm = {r: outcome.refused[r] for r in failed
                    if r in outcome.refused and not _is_temp(outcome.refused[r])}
            temp = tuple(r for r in failed if r not in perm)
            if not delivered_any and not outcome.accepted and len(groups) == 1:
                if not temp:
                    self._note(ref, "failed", perm)
                    await self.recorder.set_status(ref, "failed", perm)
                    # the recipient's own refusal: the reply to the whole transaction may be
                    # a summary ("no recipient accepted") with no code in it
                    return pass_through(next(iter(perm.values())))
                if not perm:
                    # the sending MTA keeps the message and retries: its retry, not ours
                    self._note(ref, "deferred", {r: outcome.refused.get(r, outcome.reply)
                                                 for r in failed})
                    await self.recorder.set_status(ref, "deferred", failed)
                    log.warning("next hop failed for %s: %s; answering 451", ref, outcome.reply)
                    return Reply(451, f"4.4.1 Next hop unavailable, try again later (ref {ref})")
            # Part of the message is out (or some recipients failed for good, others for now):
            # one reply covers all, so we own the rest. Refused for good: a DSN to the sender;
            # for now: the retry spool.
            delivered_any = delivered_any or bool(outcome.accepted)
            if perm:
                await self._failed_for_good(data, ref, result.envelope.mail_from, perm,
                                            received_at)
            if temp:
                replies = {r: outcome.refused.get(r, outcome.reply) for r in temp}
                await asyncio.get_running_loop().run_in_executor(
                    None, self.spool.put, data, ref, result.envelope.mail_from, temp, replies)
                # the spool tries it again on its next pass
                self._note(ref, "deferred", replies, next_try=time.time())
                await self.recorder.set_status(ref, "deferred", temp)
                deferred = True
        note = " (part spooled for retry)" if deferred else ""
        return Reply(250, f"2.0.0 Ok: {_done(verdicts)} as {overall.category.value}, "
                          f"ref {ref}{note}")

    async def retry_spool(self, now: float, base_delay: float) -> int:
        """Try spooled messages that are due; returns how many were completed (delivered, or
        failed for good: refused with 5xx, or still deferred at ``max_age``, each with a DSN
        to the sender). Nothing stays in the spool longer than ``max_age``."""
        done = 0
        for entry in list(self.spool.due(now)):
            outcome = await self.relays.send(entry.raw(), entry.mail_from, entry.rcpt_to)
            attempt = entry.attempts + 2  # the first try was before the message was spooled
            if outcome.accepted:
                self._relayed(entry.ref, outcome.accepted)
                self._note(entry.ref, "delivered", dict.fromkeys(outcome.accepted, outcome.reply),
                           attempt=attempt, at=now)
            left = [r for r in entry.rcpt_to if r not in outcome.accepted]
            replies = {r: outcome.refused.get(r, outcome.reply) for r in left}
            perm = {r: reply for r, reply in replies.items() if not _is_temp(reply)}
            temp = {r: reply for r, reply in replies.items() if r not in perm}
            expired = now - entry.created >= self.max_age
            if perm:
                await self._failed_for_good(entry.raw(), entry.ref, entry.mail_from, perm,
                                            entry.created, attempt=attempt)
            if temp and expired:
                log.warning("%s: %d recipient(s) still deferred after %.0f s; bouncing",
                            entry.ref, len(temp), now - entry.created)
                await self._failed_for_good(entry.raw(), entry.ref, entry.mail_from, temp,
                                            entry.created, expired=True, attempt=attempt)
            elif temp:
                next_try = self.spool.retry_later(entry, base_delay, tuple(temp), temp)
                self._note(entry.ref, "deferred", temp, attempt=attempt, next_try=next_try,
                           at=now)
                continue
            self.spool.done(entry)
            done += 1
        return done

    async def _failed_for_good(self, raw: bytes, ref: str, mail_from: str | None,
                               failures: dict[str, str], arrival: float, *,
                               expired: bool = False, attempt: int = 1) -> None:
        """Recipients that will never be delivered: a DSN (RFC 3464) to the sender and the
        trace status ``bounced``; ``failed`` when no DSN can be sent (the sender is null, DSNs
        are off, or the sender's own server refuses it). A DSN the next hop defers is spooled
        like any message (its sender is null, so it is never bounced in turn)."""
        sender = "" if not mail_from or mail_from.strip() == "<>" else mail_from
        rcpts = list(failures)
        if not sender or not self.dsn:
            log.warning("%s: %s failed for good (%s); no DSN (null sender or DSNs off)", ref,
                        ",".join(rcpts), "; ".join(failures.values()))
            self._note(ref, "failed", failures, attempt=attempt)
            await self.recorder.set_status(ref, "failed", rcpts)
            return
        report = build_dsn(raw, sender=sender, failures=failures, arrival=arrival, ref=ref,
                           reporting_mta=self.reporting_mta, expired=expired)
        outcome = await self.relays.send(report, "", [sender])
        reply = outcome.refused.get(sender, outcome.reply)
        if not outcome.accepted and not outcome.uncertain:
            if not _is_temp(reply):
                log.warning("%s: the DSN to <%s> was refused (%s)", ref, sender, reply)
                self._note(ref, "failed", failures, attempt=attempt)
                await self.recorder.set_status(ref, "failed", rcpts)
                return
            await asyncio.get_running_loop().run_in_executor(
                None, self.spool.put, report, f"{ref}.dsn", "", (sender,), {sender: reply})
        log.info("%s: %s bounced to <%s>", ref, ",".join(rcpts), sender)
        self._note(ref, "bounced", failures, attempt=attempt)
        await self.recorder.set_status(ref, "bounced", rcpts)


def _log_failure(fut: asyncio.Future[Any], ref: str) -> None:
    if not fut.cancelled() and (exc := fut.exception()) is not None:
        log.warning("delivery attempts of %s not kept: %s", ref, exc)


#: What happened to a recipient's copy, as the reply after DATA says it: Postfix logs that
#: reply (``status=sent (250 2.0.0 Ok: quarantined as phish_high, ref ms-...)``), and "sent"
#: alone would read as delivered.
_DONE_WORD = {Action.DELIVER: "delivered", Action.TAG: "tagged", Action.JUNK: "junked",
              Action.QUARANTINE: "quarantined"}


def _done(verdicts: Mapping[str, Verdict]) -> str:
    """``quarantined``, or per action when recipients differ: ``quarantined 1, delivered 2``."""
    counts: dict[Action, int] = {}
    for v in verdicts.values():
        counts[v.action] = counts.get(v.action, 0) + 1
    order = sorted(counts, key=lambda a: -a.strictness)
    if len(order) == 1:
        return _DONE_WORD.get(order[0], order[0].value)
    return ", ".join(f"{_DONE_WORD.get(a, a.value)} {counts[a]}" for a in order)
