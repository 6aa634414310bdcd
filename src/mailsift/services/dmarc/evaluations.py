"""Recording DMARC evaluations for aggregate reports: one row per received message whose From
domain publishes a DMARC record, with what the report needs (source IP, identifiers, the raw SPF
and DKIM results with domains and selectors, alignment, the disposition applied and why it
differs from the one requested).

The gateway calls ``EvaluationRecorder.observe`` for every message that took effect. Turning a
result into a row costs a few microseconds on the event loop; the rows are buffered and written
in one INSERT per batch on the store's writer thread (``AsyncRecorder.run_later``, which rides
with the trace writes), so recording adds no transaction per message. Rows still buffered when a
node dies are lost: aggregate reports are statistics, and the trace keeps each message's own
authentication results.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from mailsift.core.auth import AuthResults, AuthStatus, DmarcResult
from mailsift.core.result import ScanResult
from mailsift.core.verdict import Action
from mailsift.store.dmarc import DmarcStore

__all__ = ["REASON_TYPES", "EvaluationRecorder", "applied_disposition", "evaluation_row"]

log = logging.getLogger("mailsift.dmarc")

_RANK = {"none": 0, "quarantine": 1, "reject": 2}
_FROM_ACTION = {Action.REJECT: "reject", Action.QUARANTINE: "quarantine",
                Action.JUNK: "quarantine"}
_DOWNGRADED = {"reject": "quarantine", "quarantine": "none", "none": "none"}
#: Our override reasons; ``feedback.py`` maps them onto each report format's vocabulary.
REASON_TYPES = ("local_policy", "forwarded", "trusted_arc", "sampled_out", "policy_test_mode")
_MAX_DKIM = 100  # RFC 9990 2.1.2: at most 100 signatures per row


def applied_disposition(requested: str, action: Action) -> str:
    """What we did about the DMARC failure: the requested disposition, or weaker when local
    policy acted more mildly (never stronger: a message quarantined for malware is not a DMARC
    quarantine)."""
    done = _FROM_ACTION.get(action, "none")
    return requested if _RANK[done] >= _RANK[requested] else done


def _reasons(dmarc: DmarcResult, auth: AuthResults, applied: str,
             result: ScanResult) -> list[list[str]]:
    if dmarc.result is not AuthStatus.FAIL or dmarc.policy == "none":
        return []
    out: list[list[str]] = []
    if "(trusted_forwarder)" in dmarc.reason:
        sealer = auth.arc.last_sealer if auth.arc else ""
        out.append(["trusted_arc", f"ARC chain sealed by trusted {sealer}".strip()])
    elif dmarc.testing:
        out.append(["policy_test_mode", "t=y"])
    elif dmarc.pct < 100 and dmarc.disposition == _DOWNGRADED[dmarc.policy]:
        out.append(["sampled_out", f"pct={dmarc.pct}"])
    if _RANK[applied] < _RANK[dmarc.disposition]:
        comp = auth.compauth.reason if auth.compauth else ""
        if comp.startswith("allowed spoof pair"):
            out.append(["forwarded", comp])
        else:
            verdict = result.verdict
            out.append(["local_policy", f"{verdict.decided_by.value}: {verdict.action.value}"])
    return out


def _auth_json(auth: AuthResults, dmarc: DmarcResult) -> str:
    # RFC 9990 2.1.2 order: aligned passes first, then other passes, then the rest
    def rank(d: Any) -> tuple[int, int]:
        aligned = d.domain == dmarc.aligned_dkim_domain and bool(d.domain)
        return (0 if d.result is AuthStatus.PASS and aligned else
                1 if d.result is AuthStatus.PASS else 2, d.index)

    dkim = [[d.domain.lower(), d.selector, d.result.value]
            for d in sorted(auth.dkim, key=rank) if d.domain][:_MAX_DKIM]
    spf = None
    if auth.spf is not None:
        scope = "mfrom" if auth.spf.scope == "mailfrom" else auth.spf.scope
        spf = [auth.spf.domain.lower(), scope, auth.spf.result.value]
    return json.dumps({"dkim": dkim, "spf": spf}, separators=(",", ":"))


def evaluation_row(result: ScanResult, now: float) -> dict[str, Any] | None:
    """The row to record for one message, or None when there is nothing to report (no DMARC
    record found, or the evaluation was a temporary or permanent error)."""
    auth = result.auth
    dmarc = auth.dmarc if auth is not None else None
    if auth is None or dmarc is None or not dmarc.policy_domain:
        return None
    if dmarc.result not in (AuthStatus.PASS, AuthStatus.FAIL):
        return None
    env = result.envelope
    source_ip = (auth.spf.client_ip if auth.spf is not None and auth.spf.client_ip
                 else env.client_ip or "")
    if not source_ip:
        return None
    applied = ("none" if dmarc.result is AuthStatus.PASS
               else applied_disposition(dmarc.disposition, result.verdict.action))
    rcpt = env.rcpt_to[0] if env.rcpt_to else ""
    return {
        "evaluated_at": now,
        "policy_domain": dmarc.policy_domain.lower(),
        "header_from": dmarc.from_domain.lower()[:255],
        "envelope_from": (env.mail_from_domain or "")[:255],
        "envelope_to": rcpt.rpartition("@")[2].lower()[:255],
        "source_ip": source_ip[:64],
        "result": dmarc.result.value,
        "dkim_aligned": dmarc.dkim_aligned,
        "spf_aligned": dmarc.spf_aligned,
        "disposition": applied,
        "reasons": json.dumps(_reasons(dmarc, auth, applied, result), separators=(",", ":")),
        "auth": _auth_json(auth, dmarc),
        "record": dmarc.record,
        "discovery": "treewalk",  # the recorder sets [auth] dmarc_discovery
    }


class EvaluationRecorder:
    """A gateway observer: buffers evaluation rows and writes each batch in one INSERT.

    ``schedule`` runs a function later off the event loop (the trace recorder's
    ``run_later``); one flush is scheduled per batch, whatever its size.
    """

    def __init__(self, store: DmarcStore, schedule: Callable[[Callable[[], None]], None], *,
                 discovery: str = "treewalk", clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.schedule = schedule
        self.discovery = discovery
        self.clock = clock
        self._rows: list[dict[str, Any]] = []
        self._scheduled = False
        self._lock = threading.Lock()
        self.written = 0
        self.lost = 0

    def observe(self, result: ScanResult) -> None:
        row = evaluation_row(result, self.clock())
        if row is None:
            return
        row["discovery"] = self.discovery
        with self._lock:
            self._rows.append(row)
            first = not self._scheduled
            self._scheduled = True
        if first:
            self.schedule(self.flush)

    def flush(self) -> None:
        """Write what is buffered (on the store's writer thread)."""
        with self._lock:
            rows, self._rows = self._rows, []
            self._scheduled = False
        if not rows:
            return
        try:
            self.store.record_many(rows)
            self.written += len(rows)
        except Exception as exc:  # reporting must never fail mail: count, say so, go on
            self.lost += len(rows)
            log.warning("could not record %d DMARC evaluation(s): %s", len(rows), exc)
