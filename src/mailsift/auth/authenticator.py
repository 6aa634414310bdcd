"""The one entry point of authentication: ``Authenticator.authenticate(msg, envelope)``.

Synchronous by design (pyspf and dkimpy block on DNS); the gateway calls it from a thread pool.
Every check gets its DNS through the injected resolver; ``resolver=None`` means offline and
nothing DNS-based runs. Order: envelope recovery (trusted relays) -> SPF MAIL FROM and HELO ->
DKIM (every signature) -> DMARC -> ARC -> spoof-allow pairs -> composite -> header.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging

from mailsift.auth.arc import ArcVerdict, verify_arc
from mailsift.auth.compauth import composite
from mailsift.auth.dkim_check import verify_dkim
from mailsift.auth.dmarc import DmarcEvaluator
from mailsift.auth.header import render_header
from mailsift.auth.relays import envelope_from_relays
from mailsift.auth.resolver import BudgetedResolver
from mailsift.auth.spf_check import check_spf, check_spf_helo
from mailsift.config.schema import AuthSettings
from mailsift.core.auth import (
    ArcResult,
    AuthResults,
    AuthStatus,
    DkimResult,
    DmarcResult,
    SpfResult,
)
from mailsift.core.envelope import Envelope
from mailsift.core.message import ParsedMessage
from mailsift.core.protocols import Resolver

__all__ = ["OFFLINE_NOTE", "Authenticator", "match_spoof_allow"]

OFFLINE_NOTE = "offline: DNS checks skipped (SPF, DKIM, DMARC, ARC not evaluated)"

log = logging.getLogger(__name__)


def match_spoof_allow(
    entries: tuple[str, ...],
    from_domain: str,
    envelope: Envelope,
    spf: SpfResult | None,
    dkim: tuple[DkimResult, ...],
    org: DmarcEvaluator,
) -> str | None:
    """The first ``from-domain=sender`` pair that matches this message, or None.

    A domain sender matches by organizational domain against an *authenticated* identity (SPF
    pass for MAIL FROM or HELO, or a passing DKIM d=) so the pair cannot itself be spoofed; a
    network matches the client IP (which SMTP cannot forge).
    """
    if not from_domain:
        return None
    identities: list[str] = []
    if spf is not None and spf.result is AuthStatus.PASS:
        identities.append(spf.domain)
    identities += [d.domain for d in dkim if d.result is AuthStatus.PASS]
    for entry in entries:
        domain, _, sender = entry.partition("=")
        if domain != from_domain and not from_domain.endswith("." + domain):
            continue
        if sender == "*":
            return entry
        if "/" in sender or ":" in sender or sender.replace(".", "").isdigit():
            if envelope.client_ip and _in_network(envelope.client_ip, sender):
                return entry
            continue
        sender_org = org.psl_org(sender)
        if any(i and org.psl_org(i) == sender_org for i in identities):
            return entry
    return None


def _in_network(ip: str, network: str) -> bool:
    try:
        return ipaddress.ip_address(ip) in ipaddress.ip_network(network, strict=False)
    except ValueError:
        return False


class Authenticator:
    """Runs SPF, DKIM, DMARC, ARC and composite auth for one message at a time (thread-safe)."""

    def __init__(self, settings: AuthSettings, resolver: Resolver | None,
                 dns_budget: float | None = None) -> None:
        self.settings = settings
        self.resolver = resolver
        #: seconds of DNS for one message, all checks together (None: unbounded)
        self.dns_budget = dns_budget

    def authenticate(self, msg: ParsedMessage, envelope: Envelope) -> AuthResults:
        if self.dns_budget is not None and self.resolver is not None:
            # one budget per message, shared by every check below (see BudgetedResolver)
            budgeted = BudgetedResolver(self.resolver, self.dns_budget)
            return Authenticator(self.settings, budgeted).authenticate(msg, envelope)
        settings = self.settings
        notes: list[str] = []
        env = envelope_from_relays(msg, envelope, settings.trusted_relays)
        if env is not envelope:
            notes.append(
                f"envelope taken from our Received header: client {env.client_ip or '?'}, "
                f"helo {env.helo or '?'}, mail from <{env.mail_from or ''}>"
            )
        if self.resolver is None:
            offline = AuthResults(offline=True, authserv_id=settings.authserv_id,
                                  notes=(OFFLINE_NOTE, *notes))
            return _with_header(offline)
        resolver = self.resolver
        spf, spf_helo = self._spf(env, notes)
        dkim = self._dkim(msg.raw)
        evaluator = DmarcEvaluator(resolver, settings.dmarc_discovery)
        from_domains = list(dict.fromkeys(a.domain for a in msg.from_addrs if a.domain))
        if not from_domains and msg.from_domain:
            from_domains = [msg.from_domain]
        if len(from_domains) > 1:
            notes.append(f"several From domains: {', '.join(from_domains)}; each evaluated")
        sample_key = msg.message_id or hashlib.sha256(msg.raw).hexdigest()
        dmarc = self._dmarc(evaluator, from_domains, spf, dkim, sample_key)
        from_domain = dmarc.from_domain
        arc = self._arc(msg.raw, evaluator, from_domain)
        if arc.vouches and dmarc.result is AuthStatus.FAIL and dmarc.disposition != "none":
            # RFC 7489 7.3 local policy override "trusted_forwarder": keep the result honest,
            # drop the disposition.
            dmarc = _override(dmarc, f"trusted ARC sealer {arc.result.last_sealer}")
        spoof_pair = match_spoof_allow(
            settings.spoof_allow, from_domain, env, spf, dkim, evaluator
        )
        comp = composite(
            from_domain=from_domain,
            spf=spf,
            dkim=dkim,
            dmarc=dmarc,
            arc=arc.result,
            arc_vouches=arc.vouches,
            spoof_pair=spoof_pair,
            org=evaluator.psl_org,
        )
        results = AuthResults(
            spf=spf,
            spf_helo=spf_helo,
            dkim=dkim,
            dmarc=dmarc,
            arc=arc.result,
            compauth=comp,
            offline=False,
            authserv_id=settings.authserv_id,
            notes=tuple(notes + evaluator.errors),
        )
        return _with_header(results)

    # --- the checks ----------------------------------------------------------------------

    def _spf(self, env: Envelope, notes: list[str]) -> tuple[SpfResult | None, SpfResult | None]:
        assert self.resolver is not None
        ip, helo = env.client_ip, env.helo or ""
        if not ip:
            notes.append("SPF not checked: client IP unknown (give --client-ip or trusted_relays)")
            return None, None
        spf: SpfResult | None = None
        if env.mail_from is None:
            notes.append("SPF MAIL FROM not checked: envelope sender unknown")
        elif env.mail_from == "" and not helo:
            notes.append("SPF not checked: null sender and no HELO")
        else:
            spf = check_spf(ip, env.mail_from, helo, self.resolver)
        spf_helo = None
        if self.settings.check_helo and helo:
            spf_helo = check_spf_helo(ip, helo, self.resolver)
        return spf, spf_helo

    def _dkim(self, raw: bytes) -> tuple[DkimResult, ...]:
        assert self.resolver is not None
        try:
            return verify_dkim(raw, self.resolver, self.settings.min_key_bits)
        except Exception as exc:
            # A dkimpy crash on hostile input is an unrecoverable error: permerror, never fail.
            log.warning("DKIM verifier crashed: %r", exc)
            return (DkimResult(AuthStatus.PERMERROR, "", "", reason=f"verifier error: {exc!r}"),)

    def _dmarc(
        self,
        evaluator: DmarcEvaluator,
        from_domains: list[str],
        spf: SpfResult | None,
        dkim: tuple[DkimResult, ...],
        sample_key: str,
    ) -> DmarcResult:
        if not from_domains:
            return evaluator.evaluate("", spf, dkim, sample_key)
        results = [evaluator.evaluate(d, spf, dkim, sample_key) for d in from_domains]
        for res in results:
            if res.result is not AuthStatus.PASS:
                return res
        return results[0]

    def _arc(self, raw: bytes, evaluator: DmarcEvaluator, from_domain: str) -> ArcVerdict:
        assert self.resolver is not None
        try:
            return verify_arc(
                raw,
                self.resolver,
                self.settings.trusted_arc_sealers,
                from_domain,
                evaluator.psl_org,
                self.settings.min_key_bits,
            )
        except Exception as exc:
            # RFC 8617 5.2: a chain that cannot be processed is cv=fail.
            log.warning("ARC verifier crashed: %r", exc)
            return ArcVerdict(ArcResult(AuthStatus.FAIL, reason=f"verifier error: {exc!r}"))


def _override(dmarc: DmarcResult, why: str) -> DmarcResult:
    from dataclasses import replace

    return replace(
        dmarc,
        disposition="none",
        reason=f"{dmarc.reason}; policy {dmarc.disposition} overridden: {why} (trusted_forwarder)",
    )


def _with_header(results: AuthResults) -> AuthResults:
    from dataclasses import replace

    return replace(results, header=render_header(results))
