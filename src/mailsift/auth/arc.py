"""ARC (RFC 8617) chain validation with dkimpy, and what trusted sealers vouch for.

A valid chain proves who handled the message, not that the original was genuine; only sealers an
admin trusts (``AuthSettings.trusted_arc_sealers``) have their ARC-Authentication-Results
believed. Walking from the newest set back, as long as each sealer is trusted, the first AAR that
reports ``dmarc=pass`` (or an SPF/DKIM pass aligned with the From domain) vouches for the message:
that is how mailing-list and forwarded mail is not punished for a DKIM signature the list broke.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import authres
import dkim

from mailsift.auth.dkim_check import make_dnsfunc
from mailsift.core.auth import ArcResult, AuthStatus
from mailsift.core.errors import DnsTempError
from mailsift.core.protocols import Resolver

__all__ = ["ArcVerdict", "SealedResults", "parse_aar", "sealer_trusted", "verify_arc"]

_QUIET = logging.getLogger("mailsift.auth.dkimpy")
_INSTANCE = re.compile(r"^\s*i\s*=\s*\d+\s*;\s*", re.IGNORECASE)
_AR_FEATURES = authres.all_features()


@dataclass(frozen=True, slots=True)
class SealedResults:
    """The interesting parts of one ARC-Authentication-Results header."""

    text: str
    authserv_id: str = ""
    dmarc: str = ""
    dmarc_from: str = ""
    spf: str = ""
    spf_domain: str = ""
    dkim: tuple[tuple[str, str], ...] = ()  # (result, header.d)


@dataclass(frozen=True, slots=True)
class ArcVerdict:
    result: ArcResult
    vouches: bool = False


def _prop(res: Any, ptype: str, name: str) -> str:
    for prop in getattr(res, "properties", []):
        if prop.type == ptype and prop.name == name:
            return str(prop.value or "").lower()
    return ""


def parse_aar(value: str) -> SealedResults:
    """Parse an AAR value (``i=N; authserv-id; method=result ...``)."""
    text = " ".join(value.split())
    body = _INSTANCE.sub("", text, count=1)
    try:
        header = _AR_FEATURES.parse_value(body)
    except authres.AuthResError:
        return SealedResults(text)
    dmarc = dmarc_from = spf = spf_domain = ""
    dkims: list[tuple[str, str]] = []
    for res in header.results:
        method = getattr(res, "method", "")
        if method == "dmarc" and not dmarc:
            dmarc, dmarc_from = res.result, _prop(res, "header", "from")
        elif method == "spf" and not spf:
            spf = res.result
            spf_domain = _prop(res, "smtp", "mailfrom").rpartition("@")[2]
        elif method == "dkim":
            dkims.append((res.result, _prop(res, "header", "d")))
    return SealedResults(
        text, header.authserv_id or "", dmarc, dmarc_from, spf, spf_domain, tuple(dkims)
    )


def sealer_trusted(sealer: str, trusted: Sequence[str]) -> bool:
    sealer = sealer.lower().rstrip(".")
    for entry in trusted:
        entry = entry.lower().strip().rstrip(".")
        if entry and (sealer == entry or sealer.endswith("." + entry)):
            return True
    return False


def _vouches(sealed: SealedResults, from_domain: str, org: Any) -> bool:
    if sealed.dmarc == "pass" and (not sealed.dmarc_from or sealed.dmarc_from == from_domain):
        return True
    from_org = org(from_domain)
    if any(r == "pass" and d and org(d) == from_org for r, d in sealed.dkim):
        return True
    return bool(sealed.spf == "pass" and sealed.spf_domain and org(sealed.spf_domain) == from_org)


def verify_arc(
    raw: bytes,
    resolver: Resolver,
    trusted: Sequence[str],
    from_domain: str,
    org: Any,
    minkey: int = 1024,
) -> ArcVerdict:
    """Validate the chain; ``org`` maps a domain to its organizational domain (for vouching)."""
    verifier = dkim.ARC(raw, logger=_QUIET, minkey=minkey)
    try:
        cv, sets, reason = verifier.verify(dnsfunc=make_dnsfunc(resolver))
    except DnsTempError as exc:
        return ArcVerdict(ArcResult(AuthStatus.TEMPERROR, reason=f"key lookup failed: {exc}"))
    except dkim.DKIMException as exc:
        return ArcVerdict(ArcResult(AuthStatus.FAIL, reason=str(exc)))
    if cv == dkim.CV_None:
        return ArcVerdict(ArcResult(AuthStatus.NONE, reason="message is not ARC sealed"))
    status = AuthStatus.PASS if cv == dkim.CV_Pass else AuthStatus.FAIL
    text = reason if isinstance(reason, str) else str(reason)
    newest = sets[0] if sets else {}
    last_sealer = _b(newest.get("as-domain")).lower()
    trusted_last = bool(last_sealer) and sealer_trusted(last_sealer, trusted)
    first_sealed = parse_aar(_b(newest.get("aar-value"))) if newest else SealedResults("")
    chosen, vouches = first_sealed, False
    if status is AuthStatus.PASS:
        for item in sets:
            sealer = _b(item.get("as-domain")).lower()
            if not sealer_trusted(sealer, trusted):
                break
            sealed = parse_aar(_b(item.get("aar-value")))
            if _vouches(sealed, from_domain, org):
                chosen, vouches = sealed, True
                break
    dkim_words = " ".join(f"{r}(d={d})" if d else r for r, d in chosen.dkim)
    result = ArcResult(
        status,
        instances=len(sets),
        last_sealer=last_sealer,
        trusted=trusted_last,
        reason="chain valid" if text == "success" else text,
        sealed_auth_results=chosen.text,
        sealed_dmarc=chosen.dmarc,
        sealed_spf=chosen.spf,
        sealed_dkim=dkim_words,
    )
    return ArcVerdict(result, vouches)


def _b(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return "" if value is None else str(value)
