"""DKIM (RFC 6376, ed25519 per RFC 8463) with dkimpy: every signature, each with its own result.

Traps handled here (measured; docs/architecture.md): ``dkim.verify`` checks only the top
signature, so each one is verified with ``DKIM(msg).verify(idx=i)``; dkimpy turns its own
``DnsTimeoutError`` into a plain ``False``, so our ``dnsfunc`` raises ``DnsTempError`` instead,
which dkimpy does not catch, and we report ``temperror``. dkimpy also returns ``False`` for a
missing or unusable key; the recording ``dnsfunc`` lets us tell those (``permerror``) apart from
a bad signature (``fail``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import dkim
from dkim.util import InvalidTagValueList, parse_tag_value

from mailsift.core.auth import AuthStatus, DkimResult
from mailsift.core.errors import DnsTempError
from mailsift.core.protocols import Resolver

__all__ = ["TxtFunc", "make_dnsfunc", "verify_dkim"]

TxtFunc = Callable[..., bytes | None]

# dkimpy logs every failed verification at ERROR; those are results, not operational errors.
_QUIET = logging.getLogger("mailsift.auth.dkimpy")
_QUIET.addHandler(logging.NullHandler())
_QUIET.propagate = False

def make_dnsfunc(resolver: Resolver, seen: dict[str, bytes | None] | None = None) -> TxtFunc:
    """A dkimpy ``dnsfunc`` backed by ``resolver``; records what each key lookup returned."""

    def get_txt(name: str | bytes, timeout: float = 5) -> bytes | None:
        del timeout  # the resolver has its own
        qname = (name.decode("ascii", "replace") if isinstance(name, bytes) else name).rstrip(".")
        answer = resolver.query(qname, "TXT")  # DnsTempError propagates through dkimpy on purpose
        value = answer.records[0].encode("utf-8") if answer.records else None
        # RFC 6376 3.6.2.2: several TXT records at a key name make the key unusable.
        if len(answer.records) > 1:
            keys = [r for r in answer.records if "p=" in r]
            value = keys[0].encode("utf-8") if len(keys) == 1 else None
        if seen is not None:
            seen[qname.lower()] = value
        return value

    return get_txt


def _tags(header_value: bytes) -> dict[bytes, bytes]:
    try:
        return dict(parse_tag_value(header_value))
    except (InvalidTagValueList, ValueError):
        return {}


def _signature_headers(raw: bytes) -> list[dict[bytes, bytes]]:
    msg = dkim.DKIM(raw, logger=_QUIET)
    return [_tags(v) for k, v in msg.headers if k.lower() == b"dkim-signature"]


def _text(value: bytes | None) -> str:
    return value.decode("ascii", "replace").strip() if value else ""


def verify_dkim(raw: bytes, resolver: Resolver, minkey: int = 1024) -> tuple[DkimResult, ...]:
    """Verify every DKIM-Signature in ``raw`` (index 0 is the topmost header)."""
    results: list[DkimResult] = []
    for idx, tags in enumerate(_signature_headers(raw)):
        domain = _text(tags.get(b"d")).lower()
        selector = _text(tags.get(b"s"))
        algorithm = _text(tags.get(b"a"))
        identity = _text(tags.get(b"i"))
        seen: dict[str, bytes | None] = {}

        def res(status: AuthStatus, reason: str, *, _d: str = domain, _s: str = selector,
                _a: str = algorithm, _i: str = identity, _x: int = idx) -> DkimResult:
            return DkimResult(status, _d, _s, _x, _a, reason, _i)

        if not tags:
            results.append(res(AuthStatus.PERMERROR, "signature header does not parse"))
            continue
        verifier = dkim.DKIM(raw, logger=_QUIET, minkey=minkey)
        try:
            ok = verifier.verify(idx=idx, dnsfunc=make_dnsfunc(resolver, seen))
        except DnsTempError as exc:
            results.append(res(AuthStatus.TEMPERROR, f"key lookup failed: {exc}"))
            continue
        except dkim.ValidationError as exc:
            msg = str(exc)
            if "body hash mismatch" in msg:
                results.append(res(AuthStatus.FAIL, "body hash did not verify"))
            elif "expired" in msg or "in the future" in msg:
                results.append(res(AuthStatus.FAIL, msg))
            else:
                results.append(res(AuthStatus.PERMERROR, msg))
            continue
        except dkim.DKIMException as exc:
            results.append(res(AuthStatus.PERMERROR, f"{exc.__class__.__name__}: {exc}"))
            continue
        if ok:
            results.append(res(AuthStatus.PASS, "signature verified"))
            continue
        key_name = f"{selector}._domainkey.{domain}".lower()
        if key_name in seen and seen[key_name] is None:
            results.append(res(AuthStatus.PERMERROR, f"no key for signature at {key_name}"))
            continue
        try:
            dkim.evaluate_pk(key_name.encode(), seen.get(key_name))
        except (dkim.DKIMException, ValueError, TypeError) as exc:
            results.append(res(AuthStatus.PERMERROR, f"unusable key at {key_name}: {exc}"))
            continue
        results.append(res(AuthStatus.FAIL, "signature did not verify (headers changed)"))
    return tuple(results)
