"""Render our RFC 8601 ``Authentication-Results`` header with ``authres``, and ``Received-SPF``.

One result clause per check, with the ptypes RFC 8601/7489/8617 register: ``smtp.mailfrom``,
``smtp.helo``, ``header.d``/``header.s``/``header.a``/``header.i``, ``header.from``,
``policy.dmarc``, and our composite result as ``compauth`` (the method name Microsoft uses).
"""

from __future__ import annotations

import authres
import authres.arc
import authres.dmarc

from mailsift.core.auth import AuthResults, SpfResult

__all__ = ["render_header", "render_received_spf"]

_FEATURES = authres.all_features()


def _prop(ptype: str, name: str, value: str) -> authres.core.AuthenticationResultProperty:
    return authres.core.AuthenticationResultProperty(ptype, name, value)


def _reason(text: str) -> str | None:
    text = " ".join(text.split())
    return text[:200] if text else None


def render_header(auth: AuthResults) -> str:
    """The header value (without the ``Authentication-Results:`` name)."""
    results: list[object] = []
    if auth.spf is not None:
        results.append(
            _FEATURES.result(
                "spf",
                result=auth.spf.result.value,
                reason=_reason(auth.spf.reason),
                properties=[_prop("smtp", "mailfrom", auth.spf.identity or auth.spf.domain)],
            )
        )
    if auth.spf_helo is not None:
        results.append(
            _FEATURES.result(
                "spf",
                result=auth.spf_helo.result.value,
                reason=_reason(auth.spf_helo.reason),
                properties=[_prop("smtp", "helo", auth.spf_helo.domain)],
            )
        )
    for sig in auth.dkim:
        props = []
        if sig.domain:
            props.append(_prop("header", "d", sig.domain))
        if sig.selector:
            props.append(_prop("header", "s", sig.selector))
        if sig.algorithm:
            props.append(_prop("header", "a", sig.algorithm))
        results.append(
            _FEATURES.result(
                "dkim", result=sig.result.value, reason=_reason(sig.reason), properties=props
            )
        )
    if auth.arc is not None:
        props = []
        if auth.arc.last_sealer:
            props.append(_prop("header", "as-d", auth.arc.last_sealer))
        results.append(
            _FEATURES.result("arc", result=auth.arc.result.value, properties=props)
        )
    if auth.dmarc is not None:
        props = [_prop("header", "from", auth.dmarc.from_domain or "unknown")]
        if auth.dmarc.policy_domain:
            props.append(_prop("policy", "dmarc", auth.dmarc.disposition))
        results.append(
            _FEATURES.result(
                "dmarc",
                result=auth.dmarc.result.value,
                result_comment=(
                    f"p={auth.dmarc.policy} dis={auth.dmarc.disposition}"
                    if auth.dmarc.policy_domain
                    else None
                ),
                reason=_reason(auth.dmarc.reason),
                properties=props,
            )
        )
    if auth.compauth is not None:
        results.append(
            _FEATURES.result(
                "compauth", result=auth.compauth.result.value, reason=_reason(auth.compauth.reason)
            )
        )
    header = _FEATURES.header(authserv_id=auth.authserv_id or "unknown", results=results)
    return str(header.header_value())


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def render_received_spf(spf: SpfResult, receiver: str, helo: str = "") -> str:
    """The RFC 7208 section 9.1 ``Received-SPF`` value for one SPF result (kept for the trace)."""
    comment = f"{receiver}: {spf.reason}" if spf.reason else receiver
    comment = comment.replace("(", "[").replace(")", "]")
    parts = [f"{spf.result.value} ({' '.join(comment.split())})"]
    pairs = [("client-ip", spf.client_ip)]
    if spf.scope == "mailfrom":
        pairs.append(("envelope-from", spf.identity))
    if helo or spf.scope == "helo":
        pairs.append(("helo", helo or spf.domain))
    pairs += [("receiver", receiver), ("identity", spf.scope)]
    keys = "; ".join(f"{k}={_quote(v) if any(c in v for c in ' ;@') else v}"
                     for k, v in pairs if v)
    return f"{parts[0]} {keys};"
