"""Stored records in plain words for the console: authentication results, audit details per
action type, delivery outcomes. Pure functions from stored data to escaped markup; times are
``<time>`` elements (``context.time_tag``) that ``localtime.js`` shows in the viewer's zone.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from markupsafe import Markup, escape

from mailsift.interfaces.web.context import time_tag

__all__ = ["audit_summary", "auth_lines", "describe_query", "outcome_word"]

# -- authentication -------------------------------------------------------------------------------

_RESULT_WORDS = {
    "pass": "passed", "fail": "failed", "softfail": "soft-failed (suspicious, not refused)",
    "neutral": "neutral (the domain makes no claim)", "none": "not published",
    "temperror": "could not be checked (temporary DNS error)",
    "permerror": "could not be checked (broken record)", "policy": "refused by local policy",
}


def _word(result: Any) -> str:
    return _RESULT_WORDS.get(str(result or "").lower(), str(result or "not checked"))


def _yes(value: Any) -> str:
    return "yes" if value else "no"


def auth_lines(auth: Mapping[str, Any] | None) -> list[tuple[str, str, str]]:
    """(check, result word for styling, sentence) per check, from ``AuthResults.to_dict``."""
    if not auth:
        return []
    out: list[tuple[str, str, str]] = []
    comp = auth.get("compauth")
    if comp:
        verdict = "authenticated" if comp.get("result") == "pass" else "not authenticated"
        out.append(("Sender domain", str(comp.get("result")),
                    f"The visible From domain is {verdict}"
                    + (f": {comp['reason']}" if comp.get("reason") else ".")))
    dmarc = auth.get("dmarc")
    if dmarc:
        text = (f"DMARC {_word(dmarc.get('result'))} for {dmarc.get('from_domain') or '?'}"
                f" (published policy: {dmarc.get('policy') or 'none'}; SPF aligned: "
                f"{_yes(dmarc.get('spf_aligned'))}, DKIM aligned: "
                f"{_yes(dmarc.get('dkim_aligned'))})")
        if dmarc.get("testing"):
            text += ", in testing mode (t=y)"
        if dmarc.get("reason"):
            text += f". {dmarc['reason']}"
        out.append(("DMARC", str(dmarc.get("result")), text))
    else:
        out.append(("DMARC", "none", "DMARC was not evaluated."))
    for key, label in (("spf", "SPF"), ("spf_helo", "SPF (HELO)")):
        spf = auth.get(key)
        if spf:
            who = spf.get("client_ip") or "the client"
            text = (f"SPF {_word(spf.get('result'))}: {who} sending for "
                    f"{spf.get('domain') or spf.get('identity') or '?'}")
            if spf.get("reason"):
                text += f" ({spf['reason']})"
            out.append((label, str(spf.get("result")), text))
        elif key == "spf":
            out.append((label, "none", "SPF was not checked."))
    dkim = auth.get("dkim") or []
    for sig in dkim:
        text = (f"DKIM signature of {sig.get('domain') or '?'} (selector "
                f"{sig.get('selector') or '?'}) {_word(sig.get('result'))}")
        if sig.get("reason"):
            text += f": {sig['reason']}"
        out.append(("DKIM", str(sig.get("result")), text))
    if not dkim:
        out.append(("DKIM", "none", "The message carries no DKIM signature."))
    arc = auth.get("arc")
    if arc and arc.get("result") not in (None, "none"):
        text = (f"ARC chain {_word(arc.get('result'))}, {arc.get('instances', 0)} hop(s), "
                f"last sealed by {arc.get('last_sealer') or '?'}"
                + (" (a trusted sealer)" if arc.get("trusted") else ""))
        out.append(("ARC", str(arc.get("result")), text))
    if auth.get("offline"):
        out.append(("DNS", "none", "DNS checks were skipped (offline scan)."))
    for note in auth.get("notes") or ():
        out.append(("Note", "none", str(note)))
    return out


# -- audit ---------------------------------------------------------------------------------------

_TIME_KEYS = ("at", "since", "until", "expires_at", "created_at", "sent_at", "decided_at",
              "cutoff", "older_than")
_LABELS = {
    "reason": "reason", "note": "note", "recipients": "recipients", "query": "query",
    "total": "copies", "rescan": "re-scanned", "expires_at": "expires", "kind": "kind",
    "value": "value", "action": "action", "scope": "scope", "role": "role", "format": "format",
    "rows": "rows", "messages": "messages", "sort": "sorted by",
}
_QUERY_WORDS = {
    "sender": "sender", "recipient": "recipient", "subject": "subject contains",
    "category": "category", "action": "action", "status": "status", "finding": "finding",
    "artifact": "artifact", "version": "version", "listed": "listed", "message": "message",
    "message_id": "Message-ID", "ref": "reference", "client_ip": "client IP",
    "url_domain": "links to", "attachment": "attachment SHA-256",
}


def describe_query(query: Mapping[str, Any]) -> Markup:
    """A trace query in words: ``sender "paypal", received since <time>``."""
    if not query:
        return Markup("<i>everything</i>")
    parts: list[Markup] = []
    for key, value in query.items():
        if key == "since":
            parts.append(Markup("received since {}").format(time_tag(_num(value))))
        elif key == "until":
            parts.append(Markup("received before {}").format(time_tag(_num(value))))
        else:
            parts.append(Markup("{} “{}”").format(_QUERY_WORDS.get(key, key), value))
    return Markup(", ").join(parts)


def _num(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _value(key: str, value: Any) -> Markup:
    if key in _TIME_KEYS and _num(value) is not None:
        return time_tag(_num(value))
    if key == "query" and isinstance(value, Mapping):
        return describe_query(value)
    if isinstance(value, bool):
        return Markup(_yes(value))
    if isinstance(value, Mapping):
        return Markup("; ").join(Markup("{}: {}").format(k.replace("_", " "), _value(k, v))
                                 for k, v in value.items() if v not in (None, "", [], {}))
    if isinstance(value, (list, tuple)):
        return Markup(", ").join(_value(key, v) for v in value)
    return escape(value)


def _fields(detail: Mapping[str, Any], skip: Iterable[str] = ()) -> list[tuple[str, Markup]]:
    skipped = set(skip)
    return [(_LABELS.get(k, k.replace("_", " ")), _value(k, v)) for k, v in detail.items()
            if k not in skipped and v not in (None, "", [], {})]


def _release(d: Mapping[str, Any]) -> Markup:
    sent = d.get("sent") or d.get("recipients")
    return Markup("released to {}").format(_value("recipients", sent)) if sent \
        else Markup("release")


_SENTENCES: dict[str, tuple[Callable[[Mapping[str, Any]], Markup], tuple[str, ...]]] = {
    "quarantine.release": (_release, ("sent", "recipients")),
    "quarantine.bulk_release.start": (
        lambda d: Markup("bulk release of {} copies matching {}").format(
            d.get("total", "?"), describe_query(d.get("query") or {})), ("total", "query")),
    "trace.export": (
        lambda d: Markup("exported {} rows as {} matching {}").format(
            d.get("rows", "?"), str(d.get("format", "")).upper(),
            describe_query(d.get("query") or {})), ("rows", "format", "query")),
    "lists.add": (
        lambda d: Markup("{} {} {} ({})").format(d.get("action", ""), d.get("kind", ""),
                                                 d.get("value", ""), d.get("scope") or "global"),
        ("action", "kind", "value", "scope")),
    "lists.remove": (
        lambda d: Markup("removed {} {} {}").format(d.get("action", ""), d.get("kind", ""),
                                                    d.get("value", "")),
        ("action", "kind", "value")),
}


def audit_summary(action: str, detail: Mapping[str, Any]) -> Markup:
    """The detail of an audit entry in words: a sentence for the common actions, then the
    remaining fields as ``label: value`` with times and queries readable."""
    sentence, used = _SENTENCES.get(action, (None, ()))
    parts: list[Markup] = []
    if sentence is not None:
        parts.append(Markup('<span class="sentence">{}</span>').format(sentence(detail)))
    parts.extend(Markup('<span class="kv"><b>{}</b>: {}</span>').format(label, value)
                 for label, value in _fields(detail, used))
    return Markup(" ").join(parts)


# -- delivery ------------------------------------------------------------------------------------

_OUTCOMES = {"delivered": "delivered", "deferred": "deferred (will be retried)",
             "failed": "failed", "bounced": "failed, sender notified (bounce)"}


def outcome_word(outcome: str) -> str:
    return _OUTCOMES.get(outcome, outcome)
