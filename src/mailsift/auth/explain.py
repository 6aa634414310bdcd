"""Authentication results as sentences a mail admin understands (``scan --format text``)."""

from __future__ import annotations

from mailsift.core.auth import ArcResult, AuthResults, AuthStatus, DmarcResult, SpfResult

__all__ = ["describe"]

_MEANING = {
    AuthStatus.PASS: "pass",
    AuthStatus.FAIL: "FAIL",
    AuthStatus.SOFTFAIL: "softfail (domain says: probably not authorized)",
    AuthStatus.NEUTRAL: "neutral (domain makes no statement)",
    AuthStatus.NONE: "none",
    AuthStatus.TEMPERROR: "temperror (DNS trouble, retry later; not a failure)",
    AuthStatus.PERMERROR: "permerror (broken record or signature)",
    AuthStatus.POLICY: "policy",
    AuthStatus.SOFTPASS: "softpass",
}


def _why(reason: str) -> str:
    return f": {reason}" if reason else ""


def _spf(label: str, spf: SpfResult) -> str:
    who = f"{spf.identity or spf.domain}" if spf.scope == "mailfrom" else spf.domain
    return (
        f"{label} <{who}> from {spf.client_ip or 'unknown IP'}: "
        f"{_MEANING[spf.result]}{_why(spf.reason)}"
    )


def _dmarc(d: DmarcResult) -> list[str]:
    if not d.from_domain:
        return [f"DMARC: {_MEANING[d.result]}{_why(d.reason)}"]
    if d.result in (AuthStatus.NONE, AuthStatus.PERMERROR, AuthStatus.TEMPERROR):
        return [f"DMARC for From domain {d.from_domain}: {_MEANING[d.result]}{_why(d.reason)}"]
    yes = {True: "yes", False: "no"}
    lines = [
        f"DMARC for From domain {d.from_domain}: {_MEANING[d.result]} "
        f"(record at _dmarc.{d.policy_domain}, organizational domain {d.org_domain})",
        f"  alignment: SPF {yes[d.spf_aligned]}, DKIM {yes[d.dkim_aligned]}"
        + (f" (d={d.aligned_dkim_domain})" if d.aligned_dkim_domain else ""),
        f"  published policy {d.policy}"
        + (", testing (t=y)" if d.testing else "")
        + (f", pct={d.pct}" if d.pct != 100 else "")
        + f"; disposition for this message: {d.disposition}",
    ]
    if d.reason:
        lines.append(f"  why: {d.reason}")
    return lines


def _arc(a: ArcResult) -> str:
    if a.result is AuthStatus.NONE:
        return "ARC: none (no ARC seals)"
    trust = "trusted" if a.trusted else "not on the trusted sealer list"
    why = _why(a.reason if a.result is not AuthStatus.PASS else "")
    text = (
        f"ARC: chain {_MEANING[a.result]} ({a.instances} set(s), last sealer "
        f"{a.last_sealer or 'unknown'}, {trust}){why}"
    )
    pairs = (("dmarc", a.sealed_dmarc), ("spf", a.sealed_spf), ("dkim", a.sealed_dkim))
    sealed = [f"{name}={value}" for name, value in pairs if value]
    if sealed:
        text += f"; sealed results: {', '.join(sealed)}"
    return text


def describe(auth: AuthResults) -> list[str]:
    """One line per fact, most important last (the composite judgement)."""
    if auth.offline:
        rest = [f"note: {n}" for n in auth.notes if not n.startswith("offline:")]
        return ["Authentication not checked: offline, DNS checks skipped.", *rest]
    lines: list[str] = []
    if auth.spf is not None:
        lines.append(_spf("SPF for MAIL FROM", auth.spf))
    if auth.spf_helo is not None:
        lines.append(_spf("SPF for HELO", auth.spf_helo))
    if not auth.dkim:
        lines.append("DKIM: the message carries no DKIM signature")
    for sig in auth.dkim:
        lines.append(
            f"DKIM signature {sig.index + 1} d={sig.domain or '?'} s={sig.selector or '?'}"
            + (f" ({sig.algorithm})" if sig.algorithm else "")
            + f": {_MEANING[sig.result]}{_why(sig.reason)}"
        )
    if auth.dmarc is not None:
        lines.extend(_dmarc(auth.dmarc))
    if auth.arc is not None:
        lines.append(_arc(auth.arc))
    lines.extend(f"note: {n}" for n in auth.notes)
    if auth.compauth is not None:
        verdict = {
            AuthStatus.PASS: "From domain authenticated",
            AuthStatus.SOFTPASS: "From domain not strictly authenticated, but acceptable",
            AuthStatus.FAIL: "From domain NOT authenticated (possible spoofing)",
            AuthStatus.TEMPERROR: "undecided because of DNS trouble",
            AuthStatus.NONE: "no judgement (nothing published to check against)",
        }.get(auth.compauth.result, auth.compauth.result.value)
        lines.append(
            f"Composite authentication: {auth.compauth.result.value} - {verdict}"
            f"{_why(auth.compauth.reason)}"
        )
    return lines
