"""SPF (RFC 7208) with pyspf behind the injected resolver.

pyspf has no resolver argument: it calls the module-level ``spf.DNSLookup``. We replace that
function once, at import, with ``_lookup``, which asks the resolver bound to the *current
context* (a ``ContextVar``, so every thread and every asyncio task has its own). Concurrent checks
with different resolvers therefore never see each other's DNS. Outside ``check_spf`` no resolver
is bound and ``_lookup`` refuses to touch the network (temperror), so nothing ever falls back to
the process-wide resolver.
"""

from __future__ import annotations

import contextvars
import ipaddress
from typing import Any

import spf

from mailsift.core.auth import AuthStatus, SpfResult
from mailsift.core.errors import DnsTempError
from mailsift.core.protocols import Resolver

__all__ = ["check_spf", "check_spf_helo"]

_current: contextvars.ContextVar[Resolver | None] = contextvars.ContextVar(
    "mailsift_spf_resolver", default=None
)

_STATUS = {
    "pass": AuthStatus.PASS,
    "fail": AuthStatus.FAIL,
    "softfail": AuthStatus.SOFTFAIL,
    "neutral": AuthStatus.NEUTRAL,
    "none": AuthStatus.NONE,
    "temperror": AuthStatus.TEMPERROR,
    "permerror": AuthStatus.PERMERROR,
}


def _lookup(name: str, qtype: str, strict: Any = True, timeout: Any = None) -> list[Any]:
    """pyspf's DNS hook: ``[((name, qtype), value), ...]`` in the shapes pyspf expects."""
    del strict, timeout  # the resolver carries its own timeouts
    resolver = _current.get()
    if resolver is None:
        raise spf.TempError("DNS: no resolver bound (mailsift refuses the process default)")
    try:
        answer = resolver.query(name, qtype)
    except DnsTempError as exc:
        raise spf.TempError(f"DNS {exc}") from exc
    out: list[Any] = []
    for rec in answer.records:
        if qtype in ("TXT", "SPF"):
            # pyspf joins a record's character-strings itself; ours are already joined.
            out.append(((name, qtype), [rec.encode("utf-8", errors="replace")]))
        elif qtype == "MX":
            pref, _, host = rec.partition(" ")
            out.append(((name, qtype), (int(pref), host)))
        else:
            out.append(((name, qtype), rec))
    return out


# The one replacement of pyspf's DNS function (see module docstring).
spf.DNSLookup = _lookup


def _run(ip: str, sender: str, helo: str, resolver: Resolver, scope: str) -> SpfResult:
    domain = sender.rsplit("@", 1)[1].lower() if "@" in sender else sender.lower()
    try:
        ipaddress.ip_address(ip)
    except ValueError:
        return SpfResult(AuthStatus.PERMERROR, scope, domain, sender, ip, f"bad client IP {ip!r}")
    token = _current.set(resolver)
    try:
        query = spf.query(i=ip, s=sender, h=helo, strict=True, querytime=20)
        result, _code, explanation = query.check()
        mech = getattr(query, "mechanism", None)
    finally:
        _current.reset(token)
    status = _STATUS.get(str(result), AuthStatus.PERMERROR)
    reason = str(explanation)
    if mech and status in (AuthStatus.PASS, AuthStatus.FAIL, AuthStatus.SOFTFAIL,
                           AuthStatus.NEUTRAL):
        reason = f"matched {mech}" + (f": {reason}" if reason and status is not AuthStatus.PASS
                                      else "")
    elif status is AuthStatus.NONE:
        reason = f"no SPF record for {domain}"
    return SpfResult(status, scope, domain, sender, ip, reason)


def check_spf(ip: str, mail_from: str, helo: str, resolver: Resolver) -> SpfResult:
    """SPF for MAIL FROM; the null sender becomes ``postmaster@HELO`` (RFC 7208 2.4)."""
    sender = mail_from if mail_from else f"postmaster@{helo}"
    if "@" in sender and not sender.split("@", 1)[0]:
        sender = "postmaster" + sender
    return _run(ip, sender, helo, resolver, "mailfrom")


def check_spf_helo(ip: str, helo: str, resolver: Resolver) -> SpfResult:
    """SPF for the HELO identity (RFC 7208 2.3): check_host(ip, helo, postmaster@helo)."""
    if not helo or "." not in helo or helo.startswith("["):
        return SpfResult(AuthStatus.NONE, "helo", helo, "", ip, "HELO is not a domain name")
    return _run(ip, f"postmaster@{helo}", helo, resolver, "helo")
