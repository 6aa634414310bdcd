"""Auth detector: turns ``ctx.auth`` (computed by the pipeline's Authenticator) into findings.

The codes, their families and default weights are declared once, in ``CODES`` below (override
in ``[auth] weights``); ``docs/detectors/auth.md`` is generated from them.

DKIM failures alone are never a spam or phishing signal: forwarding, lists and redacted corpus
messages break signatures all the time. Whether DMARC reject/quarantine is honoured is policy's
business (``[policy] dmarc_enforcement``), acting on the SPOOF category this detector feeds.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from importlib import metadata

from mailsift.config.schema import AuthSettings, Settings
from mailsift.core.auth import AuthResults, AuthStatus
from mailsift.core.context import ScanContext
from mailsift.core.errors import ConfigError
from mailsift.core.findings import Family, Finding, Stage
from mailsift.detectors.base import Services
from mailsift.detectors.spec import CodeSpec, DetectorSpec

__all__ = ["CODES", "SPEC", "AuthDetector", "build"]

CODES: Mapping[str, CodeSpec] = {
    "AUTH_COMPAUTH_FAIL": CodeSpec(1.0, Family.SPOOF,
                                   "The From domain is not authenticated (spoofing)"),
    "AUTH_DMARC_REJECT": CodeSpec(0.0, None,
                                  "DMARC failed and the From domain asks receivers to reject"),
    "AUTH_DMARC_QUARANTINE": CodeSpec(0.0, None,
                                      "DMARC failed and the From domain asks for quarantine"),
    "AUTH_DMARC_FAIL": CodeSpec(0.0, None, "DMARC failed: no SPF or DKIM pass aligned with From"),
    "AUTH_SPF_FAIL": CodeSpec(0.5, Family.SPAM, "SPF fail: the sending host is not authorized"),
    "AUTH_SPF_SOFTFAIL": CodeSpec(0.2, Family.SPAM,
                                  "SPF softfail: the sending host is probably not authorized"),
    "AUTH_HELO_FAIL": CodeSpec(0.3, Family.SPAM, "SPF fail for the HELO name"),
    "AUTH_DKIM_FAIL": CodeSpec(0.0, None, "A DKIM signature did not verify"),
    "AUTH_PERMERROR": CodeSpec(0.0, None, "A broken SPF/DKIM/DMARC record or signature"),
    "AUTH_TEMPERROR": CodeSpec(0.0, None, "DNS trouble: authentication undecided (temperror)"),
    "AUTH_ARC_TRUSTED": CodeSpec(0.0, None,
                                 "A trusted ARC sealer vouched for the original message"),
    "AUTH_ARC_FAIL": CodeSpec(0.0, None, "The ARC chain is broken"),
    "AUTH_SPOOF_ALLOWED": CodeSpec(0.0, None, "An allowed spoof pair matched"),
    "AUTH_COMPAUTH_SOFTPASS": CodeSpec(0.0, None,
                                       "From domain not strictly authenticated but acceptable"),
    "AUTH_OFFLINE": CodeSpec(0.0, None, "Authentication skipped: offline, no DNS"),
}


def _psl_version() -> str:
    try:
        return metadata.version("publicsuffixlist")
    except metadata.PackageNotFoundError:  # pragma: no cover - a declared dependency
        return "unknown"


class AuthDetector:
    """Reads ``ctx.auth``; performs no I/O itself."""

    name = "auth"
    stage = Stage.AUTH
    codes = frozenset(CODES)

    def __init__(self, weights: Mapping[str, float] | None = None) -> None:
        weights = dict(weights or {})
        unknown = sorted(set(weights) - set(CODES))
        if unknown:
            raise ConfigError(f"unknown auth finding code(s) {', '.join(unknown)}", source="auth")
        self._weights = weights
        self._versions = {"publicsuffixlist": _psl_version()}

    def _finding(self, code: str, *evidence: str) -> Finding:
        spec = CODES[code]
        family, weight, description = spec.family, spec.weight, spec.description
        return Finding(
            code=code,
            weight=self._weights.get(code, weight),
            evidence=tuple(e for e in evidence if e),
            detector=self.name,
            category=family,
            description=description,
        )

    def run(self, ctx: ScanContext) -> Sequence[Finding]:
        auth = ctx.auth
        if auth is None:
            return [self._finding("AUTH_OFFLINE", "authentication did not run")]
        if auth.offline:
            return [self._finding("AUTH_OFFLINE", *auth.notes)]
        return self._findings(auth)

    def _findings(self, auth: AuthResults) -> list[Finding]:
        out: list[Finding] = []
        temp: list[str] = []
        perm: list[str] = []
        for spf in (auth.spf, auth.spf_helo):
            if spf is None:
                continue
            ev = (f"{spf.scope}={spf.identity or spf.domain}", f"ip={spf.client_ip}", spf.reason)
            if spf.result is AuthStatus.FAIL:
                out.append(self._finding("AUTH_SPF_FAIL" if spf.scope == "mailfrom"
                                         else "AUTH_HELO_FAIL", *ev))
            elif spf.result is AuthStatus.SOFTFAIL and spf.scope == "mailfrom":
                out.append(self._finding("AUTH_SPF_SOFTFAIL", *ev))
            elif spf.result is AuthStatus.TEMPERROR:
                temp.append(f"spf {spf.scope} {spf.domain}: {spf.reason}")
            elif spf.result is AuthStatus.PERMERROR:
                perm.append(f"spf {spf.scope} {spf.domain}: {spf.reason}")
        failed = []
        for sig in auth.dkim:
            if sig.result is AuthStatus.FAIL:
                failed.append(f"d={sig.domain} s={sig.selector}: {sig.reason}")
            elif sig.result is AuthStatus.TEMPERROR:
                temp.append(f"dkim d={sig.domain} s={sig.selector}: {sig.reason}")
            elif sig.result is AuthStatus.PERMERROR:
                perm.append(f"dkim d={sig.domain} s={sig.selector}: {sig.reason}")
        if failed:
            out.append(self._finding("AUTH_DKIM_FAIL", *failed[:5]))
        dmarc = auth.dmarc
        if dmarc is not None:
            ev_d = (f"from={dmarc.from_domain}", f"p={dmarc.policy}",
                    f"disposition={dmarc.disposition}", dmarc.reason)
            if dmarc.result is AuthStatus.FAIL:
                out.append(self._finding("AUTH_DMARC_FAIL", *ev_d))
                if dmarc.disposition == "reject":
                    out.append(self._finding("AUTH_DMARC_REJECT", *ev_d))
                elif dmarc.disposition == "quarantine":
                    out.append(self._finding("AUTH_DMARC_QUARANTINE", *ev_d))
            elif dmarc.result is AuthStatus.TEMPERROR:
                temp.append(f"dmarc {dmarc.from_domain}: {dmarc.reason}")
            elif dmarc.result is AuthStatus.PERMERROR:
                perm.append(f"dmarc {dmarc.from_domain}: {dmarc.reason}")
        # Imported here: the catalog imports every detector module to read its declaration,
        # and the auth package (dkimpy, dnspython) is only needed once mail is scanned.
        from mailsift.auth.compauth import REASON_ARC, REASON_SPOOF_PAIR

        arc = auth.arc
        comp = auth.compauth
        if arc is not None:
            if arc.result is AuthStatus.FAIL:
                out.append(self._finding("AUTH_ARC_FAIL", f"sealer={arc.last_sealer}",
                                         arc.reason))
            elif arc.result is AuthStatus.TEMPERROR:
                temp.append(f"arc: {arc.reason}")
            if comp is not None and comp.result is AuthStatus.PASS and comp.reason.startswith(
                REASON_ARC
            ):
                out.append(self._finding("AUTH_ARC_TRUSTED", f"sealer={arc.last_sealer}",
                                         f"sealed: {arc.sealed_auth_results}"[:300]))
        if comp is not None:
            ev_c = (f"from={dmarc.from_domain}" if dmarc else "", comp.reason)
            if comp.result is AuthStatus.FAIL:
                out.append(self._finding("AUTH_COMPAUTH_FAIL", *ev_c))
            elif comp.result is AuthStatus.SOFTPASS:
                code = ("AUTH_SPOOF_ALLOWED" if comp.reason.startswith(REASON_SPOOF_PAIR)
                        else "AUTH_COMPAUTH_SOFTPASS")
                out.append(self._finding(code, *ev_c))
        if temp:
            out.append(self._finding("AUTH_TEMPERROR", *temp[:5]))
        if perm:
            out.append(self._finding("AUTH_PERMERROR", *perm[:5]))
        return out

    def versions(self) -> Mapping[str, str]:
        return dict(self._versions)


def build(settings: Settings, services: Services) -> AuthDetector:
    del services  # authentication I/O happens in the pipeline's Authenticator
    return AuthDetector(settings.auth.weights)


SPEC = DetectorSpec(
    name="auth", stage=Stage.AUTH, order=10, prefix="AUTH_", codes=CODES,
    settings=AuthSettings, factory=build,
    summary="SPF, DKIM, DMARC, ARC and composite authentication as findings",
)
