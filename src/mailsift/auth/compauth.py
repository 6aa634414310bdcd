"""Composite authentication: is the visible From domain authenticated, and why (not).

Modelled on Microsoft's ``compauth``; the order below is the whole judgement:

1. no From domain                                   -> none
2. DMARC pass                                       -> pass
3. a trusted ARC sealer vouches (see ``auth.arc``)  -> pass     (list and forwarded mail)
4. an allowed spoof pair (``spoof_allow``)          -> softpass
5. DNS trouble on DMARC, SPF, DKIM or ARC          -> temperror (never fail on DNS trouble)
6. DMARC fail, the domain asks for quarantine/reject (after pct/t)        -> fail
7. DMARC fail, policy none: another domain authenticated (SPF/DKIM pass)  -> softpass
                            nothing authenticated at all                  -> fail
8. no usable DMARC record: SPF or DKIM pass aligned by org domain         -> softpass
                           otherwise                                      -> none

``fail`` is what the auth detector turns into a SPOOF finding. Case 8 never fails: a domain
that publishes no policy has not told us what spoofing of it looks like, and small domains
without SPF/DKIM would otherwise lose legitimate mail.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from mailsift.core.auth import ArcResult, AuthStatus, CompAuth, DkimResult, DmarcResult, SpfResult

__all__ = ["REASON_ARC", "REASON_SPOOF_PAIR", "composite"]

#: Reason prefixes other layers may test for (the auth detector does).
REASON_ARC = "trusted ARC sealer"
REASON_SPOOF_PAIR = "allowed spoof pair"


def composite(
    *,
    from_domain: str,
    spf: SpfResult | None,
    dkim: Sequence[DkimResult],
    dmarc: DmarcResult | None,
    arc: ArcResult | None,
    arc_vouches: bool,
    spoof_pair: str | None,
    org: Callable[[str], str],
) -> CompAuth:
    if not from_domain:
        return CompAuth(AuthStatus.NONE, "no From domain to authenticate")
    if dmarc is not None and dmarc.result is AuthStatus.PASS:
        return CompAuth(AuthStatus.PASS, f"dmarc=pass for {from_domain}")
    if arc is not None and arc_vouches:
        sealed = f"dmarc={arc.sealed_dmarc}" if arc.sealed_dmarc else "aligned pass"
        return CompAuth(
            AuthStatus.PASS, f"{REASON_ARC} {arc.last_sealer} vouched ({sealed})"
        )
    if spoof_pair:
        return CompAuth(AuthStatus.SOFTPASS, f"{REASON_SPOOF_PAIR} {spoof_pair}")
    temp = (
        (dmarc is not None and dmarc.result is AuthStatus.TEMPERROR)
        or (spf is not None and spf.result is AuthStatus.TEMPERROR)
        or any(d.result is AuthStatus.TEMPERROR for d in dkim)
        # A chain we could not check might have been a trusted rescue.
        or (arc is not None and arc.result is AuthStatus.TEMPERROR)
    )
    if temp:
        return CompAuth(AuthStatus.TEMPERROR, "temporary DNS error; authentication undecided")
    others = _authenticated_others(spf, dkim)
    if dmarc is not None and dmarc.result is AuthStatus.FAIL:
        if dmarc.disposition in ("quarantine", "reject"):
            return CompAuth(
                AuthStatus.FAIL,
                f"dmarc=fail for {from_domain}, domain policy {dmarc.disposition}",
            )
        if others:
            return CompAuth(
                AuthStatus.SOFTPASS,
                f"{from_domain} not aligned (policy none); authenticated as {', '.join(others)}",
            )
        return CompAuth(
            AuthStatus.FAIL,
            f"dmarc=fail for {from_domain} and nothing else authenticated",
        )
    from_org = org(from_domain)
    aligned = [d for d in others if org(d) == from_org]
    if aligned:
        return CompAuth(
            AuthStatus.SOFTPASS, f"no DMARC policy; {', '.join(aligned)} authenticated (implicit)"
        )
    return CompAuth(AuthStatus.NONE, f"no DMARC policy for {from_domain}; not authenticated")


def _authenticated_others(spf: SpfResult | None, dkim: Sequence[DkimResult]) -> list[str]:
    out: list[str] = []
    if spf is not None and spf.result is AuthStatus.PASS and spf.domain:
        out.append(spf.domain)
    for sig in dkim:
        if sig.result is AuthStatus.PASS and sig.domain and sig.domain not in out:
            out.append(sig.domain)
    return out
