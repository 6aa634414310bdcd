"""DMARC evaluation: discovery, Organizational Domain, alignment, policy and disposition.

Our own evaluator because the libraries are wrong (authheaders mis-parses hyphenated domains and
applies ``sp=`` to the organizational domain itself; checkdmarc only discovers). Two discovery
modes (``AuthSettings.dmarc_discovery``):

* ``treewalk`` (RFC 9989, default): the DNS tree walk. Query ``_dmarc.<domain>``; then drop labels
  (jumping to four labels when there are more, then one at a time). Multiple records at one name
  are discarded. The policy record is the first valid one found. The Organizational Domain of a
  name is where a ``psd=n`` record is, or one label below a ``psd=y`` record, or else the record
  with the fewest labels, or else the name itself.
* ``psl`` (RFC 7489): ``_dmarc.<From domain>``, then ``_dmarc.<org domain>`` where the org domain
  comes from the Public Suffix List shipped with publicsuffixlist (no download).

Policy: ``p`` at the From domain itself, for a subdomain ``np`` when the domain does not exist
(no A/AAAA/MX, RFC 9091) else ``sp`` else ``p``. Disposition: ``t=y`` (RFC 9989) downgrades one
level, as ``pct=0`` did; ``pct`` < 100 samples deterministically on a per-message key, and
messages not sampled are downgraded one level (RFC 7489 6.6.4). DNS trouble is ``temperror``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from mailsift.auth.dmarc_record import DmarcRecord, DmarcSyntaxError, is_dmarc, parse_record
from mailsift.core.auth import AuthStatus, DkimResult, DmarcResult, SpfResult
from mailsift.core.errors import DnsTempError
from mailsift.core.protocols import Resolver
from mailsift.parsing.urls import public_suffix_list

__all__ = ["DmarcEvaluator", "walk_targets"]

_DOWNGRADE = {"reject": "quarantine", "quarantine": "none", "none": "none"}


def walk_targets(domain: str) -> Iterator[str]:
    """The names the RFC 9989 tree walk queries, in order."""
    labels = domain.split(".")
    yield domain
    n = min(len(labels) - 1, 4)
    while n >= 1:
        yield ".".join(labels[-n:])
        n -= 1


@dataclass
class _Found:
    domain: str
    record: DmarcRecord


@dataclass
class DmarcEvaluator:
    """Evaluates DMARC for one message; memoizes record lookups for that message."""

    resolver: Resolver
    discovery: str = "treewalk"
    _records: dict[str, DmarcRecord | None] = field(default_factory=dict)
    record_errors: dict[str, str] = field(default_factory=dict)

    @property
    def errors(self) -> list[str]:
        """Problems with DMARC records seen so far (multiple records, syntax errors)."""
        return list(self.record_errors.values())

    # --- DNS ---------------------------------------------------------------------------

    def record_at(self, domain: str) -> DmarcRecord | None:
        """The single valid DMARC record at ``_dmarc.<domain>``, or None. Raises DnsTempError."""
        if domain in self._records:
            return self._records[domain]
        answer = self.resolver.query(f"_dmarc.{domain}", "TXT")
        candidates = [r for r in answer.records if is_dmarc(r)]
        record: DmarcRecord | None = None
        if len(candidates) > 1:
            self.record_errors[domain] = f"multiple DMARC records at _dmarc.{domain} (discarded)"
        elif candidates:
            try:
                record = parse_record(candidates[0])
            except DmarcSyntaxError as exc:
                self.record_errors[domain] = f"syntax error in _dmarc.{domain}: {exc}"
        self._records[domain] = record
        return record

    def discover(self, from_domain: str) -> _Found | None:
        if self.discovery == "psl":
            org = self.psl_org(from_domain)
            for name in dict.fromkeys((from_domain, org)):
                rec = self.record_at(name)
                if rec is not None:
                    return _Found(name, rec)
            return None
        for name in walk_targets(from_domain):
            rec = self.record_at(name)
            if rec is not None:
                return _Found(name, rec)
        return None

    @staticmethod
    def psl_org(domain: str) -> str:
        return public_suffix_list().privatesuffix(domain) or domain

    def org_domain(self, domain: str) -> str:
        if self.discovery == "psl":
            return self.psl_org(domain)
        fewest: str | None = None
        for name in walk_targets(domain):
            rec = self.record_at(name)
            if rec is None:
                continue
            if rec.psd == "n":
                return name
            if rec.psd == "y" and name != domain:
                labels = domain.split(".")
                return ".".join(labels[-(len(name.split(".")) + 1):])
            fewest = name
        return fewest or domain

    def _exists(self, domain: str) -> bool:
        for rdtype in ("A", "AAAA", "MX"):
            answer = self.resolver.query(domain, rdtype)
            if answer.nxdomain:
                return False
            if answer.records:
                return True
        return False

    # --- evaluation --------------------------------------------------------------------

    def _aligned(self, ident: str, from_domain: str, mode: str) -> bool:
        ident = ident.lower().rstrip(".")
        if ident == from_domain:
            return True
        if mode == "s" or not ident:
            return False
        return self.org_domain(ident) == self.org_domain(from_domain)

    def evaluate(
        self,
        from_domain: str,
        spf: SpfResult | None,
        dkim: Sequence[DkimResult],
        sample_key: str = "",
    ) -> DmarcResult:
        from_domain = from_domain.lower().rstrip(".")
        if not from_domain:
            return DmarcResult(AuthStatus.NONE, "", reason="no RFC5322.From domain")
        try:
            return self._evaluate(from_domain, spf, dkim, sample_key)
        except DnsTempError as exc:
            return DmarcResult(AuthStatus.TEMPERROR, from_domain, reason=f"DNS: {exc}")

    def _evaluate(
        self, from_domain: str, spf: SpfResult | None, dkim: Sequence[DkimResult], sample_key: str
    ) -> DmarcResult:
        found = self.discover(from_domain)
        if found is None:
            searched = (
                (from_domain, self.psl_org(from_domain))
                if self.discovery == "psl"
                else tuple(walk_targets(from_domain))
            )
            errors = [self.record_errors[d] for d in searched if d in self.record_errors]
            if errors:
                return DmarcResult(AuthStatus.PERMERROR, from_domain, reason="; ".join(errors))
            return DmarcResult(AuthStatus.NONE, from_domain, reason="no DMARC record")
        rec = found.record
        org = self.org_domain(from_domain)
        spf_aligned = bool(
            spf is not None
            and spf.result is AuthStatus.PASS
            and self._aligned(spf.domain, from_domain, rec.aspf)
        )
        aligned_dkim = ""
        for sig in dkim:
            if sig.result is AuthStatus.PASS and self._aligned(sig.domain, from_domain, rec.adkim):
                aligned_dkim = sig.domain
                break
        if found.domain == from_domain:
            policy = rec.p
        elif rec.np is not None and not self._exists(from_domain):
            policy = rec.np
        else:
            policy = rec.sp or rec.p
        passed = spf_aligned or bool(aligned_dkim)
        notes = list(rec.notes)
        temp = (spf is not None and spf.result is AuthStatus.TEMPERROR) or any(
            d.result is AuthStatus.TEMPERROR for d in dkim
        )
        if not passed and temp:
            # An identifier we could not check might have aligned: never "fail" on DNS trouble.
            return DmarcResult(
                AuthStatus.TEMPERROR, from_domain, policy=policy, org_domain=org,
                policy_domain=found.domain, record=rec.raw, pct=rec.pct, testing=rec.t,
                reason="SPF or DKIM had a temporary DNS error; DMARC cannot be decided",
            )
        disposition = "none"
        if not passed:
            disposition = policy
            if rec.t:
                disposition = _DOWNGRADE[policy]
                notes.append("t=y: testing, policy downgraded one level")
            elif rec.pct < 100 and not _sampled(sample_key, rec.pct):
                disposition = _DOWNGRADE[policy]
                notes.append(f"pct={rec.pct}: message not sampled, policy downgraded one level")
        if passed:
            how = []
            if spf_aligned:
                how.append(f"SPF {spf.domain if spf else ''} aligned")
            if aligned_dkim:
                how.append(f"DKIM d={aligned_dkim} aligned")
            reason = ", ".join(how)
        else:
            reason = _fail_reason(from_domain, spf, dkim)
        if notes:
            reason = f"{reason}; {'; '.join(notes)}"
        return DmarcResult(
            AuthStatus.PASS if passed else AuthStatus.FAIL,
            from_domain,
            policy=policy,
            disposition=disposition,
            org_domain=org,
            policy_domain=found.domain,
            spf_aligned=spf_aligned,
            dkim_aligned=bool(aligned_dkim),
            aligned_dkim_domain=aligned_dkim,
            record=rec.raw,
            pct=rec.pct,
            testing=rec.t,
            reason=reason,
        )


def _sampled(key: str, pct: int) -> bool:
    """Deterministic pct sampling: the same message always gets the same answer."""
    if pct >= 100:
        return True
    if pct <= 0:
        return False
    bucket = int.from_bytes(hashlib.sha256(key.encode("utf-8")).digest()[:4], "big") % 100
    return bucket < pct


def _fail_reason(from_domain: str, spf: SpfResult | None, dkim: Sequence[DkimResult]) -> str:
    parts = []
    if spf is None:
        parts.append("SPF not checked")
    elif spf.result is AuthStatus.PASS:
        parts.append(f"SPF pass for {spf.domain} not aligned with {from_domain}")
    else:
        parts.append(f"SPF {spf.result.value} for {spf.domain or 'unknown'}")
    passing = [d.domain for d in dkim if d.result is AuthStatus.PASS]
    if passing:
        parts.append(f"DKIM pass for {', '.join(passing)} not aligned")
    elif dkim:
        parts.append("no DKIM signature verified")
    else:
        parts.append("no DKIM signature")
    return "; ".join(parts)
