"""The scan pipeline: parse -> authenticate -> detectors by stage -> policy per recipient.

Every detector runs under a time budget and in isolation: an exception or timeout becomes a
``DETECTOR_ERROR``/``DETECTOR_TIMEOUT`` finding (never a crash, never "clean"). The pipeline does no
I/O of its own; the authenticator and detectors were given theirs when it was built
(``pipeline/build.py``).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from functools import partial
from types import MappingProxyType
from typing import cast

from mailsift.config.schema import LimitSettings, PolicySettings
from mailsift.core.auth import AuthResults
from mailsift.core.context import ScanContext
from mailsift.core.envelope import Envelope
from mailsift.core.errors import DetectorTimeout
from mailsift.core.findings import ArtifactState, Finding
from mailsift.core.lists import ListSnapshot
from mailsift.core.message import ParsedMessage
from mailsift.core.protocols import Clock, SystemClock
from mailsift.core.result import ScanResult
from mailsift.core.verdict import Verdict
from mailsift.detectors.base import Detector
from mailsift.parsing import parse_message, registrable_domain
from mailsift.pipeline.deadline import DeadlineExceeded, deadline
from mailsift.policy import MessageFacts, PolicyInput, decide

__all__ = ["Authenticate", "Pipeline", "PrepareEnvelope", "message_facts", "policy_hash"]

Authenticate = Callable[[ParsedMessage, Envelope], AuthResults]
#: Completes an envelope from the message (e.g. client IP from our own Received header).
PrepareEnvelope = Callable[[ParsedMessage, Envelope], Envelope]


def _error_finding(name: str, exc: BaseException) -> Finding:
    timeout = isinstance(exc, DetectorTimeout)
    return Finding(
        code="DETECTOR_TIMEOUT" if timeout else "DETECTOR_ERROR",
        weight=0.0,
        evidence=(name, f"{type(exc).__name__}: {exc}"[:300]),
        detector=name,
        description=("A detector ran out of time; the message is not treated as clean"
                     if timeout else "A detector failed; the message is not treated as clean"),
    )


def message_facts(msg: ParsedMessage, envelope: Envelope, auth: AuthResults | None
                  ) -> MessageFacts:
    aligned = False
    if auth is not None:
        aligned = bool((auth.dmarc and auth.dmarc.result.value == "pass")
                       or (auth.compauth and auth.compauth.result.value == "pass"))
    return MessageFacts(
        from_addr=msg.from_addr.addr.lower() if msg.from_addr else "",
        from_domain=msg.from_domain,
        mail_from=(envelope.mail_from or "").lower(),
        client_ip=envelope.client_ip or "",
        helo=(envelope.helo or "").lower(),
        url_hosts=tuple(sorted({u.host for u in msg.urls})),
        urls=tuple(u.url for u in msg.urls),
        hashes=tuple(a.sha256 for a in msg.attachments if a.sha256),
        auth_aligned=aligned,
    )


def policy_hash(policy: PolicySettings) -> str:
    """The ``policy`` version of every verdict: a hash of ``[policy]`` (thresholds, actions,
    overrides). ``[ml] bands`` are not in it (they shape the model's findings); the rollout
    service's config version covers both (``services.policy_gate``)."""
    policy_json = json.dumps(policy.model_dump(mode="json"), sort_keys=True)
    return hashlib.sha256(policy_json.encode()).hexdigest()[:12]


class Pipeline:
    """Scans one message at a time; safe to reuse, not to share between threads mid-scan."""

    def __init__(self, detectors: Sequence[Detector], policy: PolicySettings, *,
                 limits: LimitSettings | None = None, authenticate: Authenticate | None = None,
                 timeout_ms: int = 2000, offline: bool = False,
                 clock: Clock | None = None,
                 prepare_envelope: PrepareEnvelope | None = None,
                 canary_scopes: Mapping[str, tuple[str, ...]] | None = None,
                 budgets_ms: Mapping[str, int] | None = None) -> None:
        self.detectors = sorted(detectors, key=lambda d: d.stage.order)
        self.policy = policy
        self.limits = limits or LimitSettings()
        self.authenticate = authenticate
        self.budget = timeout_ms / 1000.0
        self.budgets = {k: v / 1000.0 for k, v in (budgets_ms or {}).items()}
        self.offline = offline
        self.clock = clock or SystemClock()
        self.prepare_envelope = prepare_envelope
        self.canary_scopes = MappingProxyType(dict(canary_scopes or {}))
        versions = {"policy": policy_hash(policy)}
        for det in self.detectors:
            versions.update(det.versions())
        self._versions = MappingProxyType(versions)
        registrable_domain("warm.example")  # load the public suffix list now, not mid-scan

    def versions(self) -> Mapping[str, str]:
        return self._versions

    def _run(self, name: str, call: Callable[[], object]) -> tuple[object, Finding | None, float]:
        start = time.perf_counter()
        budget = self.budgets.get(name, self.budget)
        try:
            with deadline(name, budget):
                value = call()
        except DeadlineExceeded:
            exc = DetectorTimeout(name, f"exceeded its {budget * 1000:.0f} ms budget")
            return None, _error_finding(name, exc), (time.perf_counter() - start) * 1000
        except Exception as exc:  # isolation: one broken detector never breaks the scan
            return None, _error_finding(name, exc), (time.perf_counter() - start) * 1000
        elapsed = time.perf_counter() - start
        if elapsed > budget:
            late = DetectorTimeout(name, f"took {elapsed * 1000:.0f} ms")
            return None, _error_finding(name, late), elapsed * 1000
        return value, None, elapsed * 1000

    def scan(self, raw: bytes, envelope: Envelope | None = None, *, message_id: str = "",
             lists: ListSnapshot | None = None,
             canary_scopes: Mapping[str, tuple[str, ...]] | None = None) -> ScanResult:
        started = time.perf_counter()
        envelope = envelope or Envelope()
        msg = parse_message(raw, self.limits)
        if self.prepare_envelope is not None:
            envelope = self.prepare_envelope(msg, envelope)
        for det in self.detectors:
            # Detectors waiting on the network (DNS lists) send their questions now, so the
            # answers arrive while authentication and content checks run.
            prefetch = getattr(det, "prefetch", None)
            if prefetch is not None:
                # a failure here is asked again, and reported, by the detector's run()
                with contextlib.suppress(Exception):
                    prefetch(msg, envelope, offline=self.offline)
        findings: list[Finding] = []
        timings: dict[str, float] = {}
        ctx = ScanContext(msg, envelope, None, self.offline, self.clock.now())
        if self.authenticate is not None:
            auth_call = self.authenticate
            value, error, timings["auth"] = self._run("auth", lambda: auth_call(msg, envelope))
            if error is not None:
                findings.append(error)
                value = AuthResults(notes=(f"authentication failed: {error.evidence[-1]}",))
            assert isinstance(value, AuthResults)
            ctx = ctx.with_auth(value)
        for det in self.detectors:
            found, error, timings[det.name] = self._run(det.name, partial(det.run, ctx))
            if error is not None:
                findings.append(error)
            else:
                findings.extend(cast("Sequence[Finding]", found))
        versions = dict(self._versions)
        if lists is not None:
            versions["lists"] = lists.version
        inp = PolicyInput(
            findings=tuple(findings),
            facts=message_facts(msg, envelope, ctx.auth),
            auth=ctx.auth,
            lists=lists,
            now=ctx.received_at,
            canary_scopes=(self.canary_scopes if canary_scopes is None
                           else MappingProxyType(dict(canary_scopes))),
        )
        per_rcpt: dict[str, Verdict] = {}
        for rcpt in envelope.rcpt_to:
            per_rcpt[rcpt] = self._with_versions(decide(inp, self.policy, rcpt), versions)
        if per_rcpt:
            verdict = max(per_rcpt.values(), key=lambda v: (v.action.strictness, -v.category.rank))
        else:
            verdict = self._with_versions(decide(inp, self.policy, None), versions)
        shadow = self._shadow_verdicts(inp, envelope.rcpt_to[0] if envelope.rcpt_to else None)
        return ScanResult(
            id=message_id,
            shadow=MappingProxyType(shadow),
            verdict=verdict,
            message=msg,
            envelope=envelope,
            findings=tuple(findings),
            auth=ctx.auth,
            recipients=MappingProxyType(per_rcpt),
            versions=MappingProxyType(versions),
            elapsed_ms=(time.perf_counter() - started) * 1000,
            detector_ms=MappingProxyType(timings),
        )

    def _shadow_verdicts(self, inp: PolicyInput, recipient: str | None) -> dict[str, Verdict]:
        """What each staged artifact version would have decided had its shadow findings acted
        (replacing other versions of the same artifact)."""
        groups: dict[tuple[str, str], list[Finding]] = {}
        for f in inp.findings:
            if f.state is ArtifactState.SHADOW and f.artifact:
                groups.setdefault((f.artifact, f.version), []).append(f)
        out: dict[str, Verdict] = {}
        for (artifact, version), staged in groups.items():
            promoted = [replace(f, state=ArtifactState.ACTIVE) for f in staged]
            kept = [f for f in inp.findings if f.state is not ArtifactState.SHADOW
                    and not (f.artifact == artifact and f.version != version)]
            what_if = replace(inp, findings=tuple(kept + promoted))
            out[f"{artifact}@{version}"] = decide(what_if, self.policy, recipient)
        return out

    @staticmethod
    def _with_versions(verdict: Verdict, versions: Mapping[str, str]) -> Verdict:
        used = {k: v for k, v in versions.items()
                if k in ("policy", "lists") or any(f.artifact == k for f in verdict.findings)}
        return replace(verdict, versions=MappingProxyType(used))
