"""Allow/block list use cases: validate and normalise entries, audit changes, take snapshots.

Values are normalised on the way in (lower-cased addresses and domains, canonical networks,
lower-case hashes) so policy can compare them with plain equality. Incident entries are the
time-boxed allows that may override even high-confidence verdicts, so they must expire.

A *wide* admin or incident entry (``services.list_scope``: a free-mail or public-suffix domain,
a network wider than /24 or /48, a public-suffix host) is refused unless it is forced with a
reason; a forced one is audited as ``lists.force`` and raises an alert.
"""

from __future__ import annotations

import ipaddress
import logging
import re
from collections.abc import Callable
from urllib.parse import urlsplit

from mailsift.core.errors import InputError, Overridable
from mailsift.core.lists import LIST_KINDS, ListEntry, ListSnapshot
from mailsift.services.access import NotFound, Principal, require
from mailsift.services.list_scope import wide_reason
from mailsift.store import Store

__all__ = ["AlertFn", "ListService", "check_wide", "normalise_value", "parse_duration"]

log = logging.getLogger("mailsift.lists")

#: ``(kind, subject, message) -> alert id``: ``Alerter.raise_alert`` where settings are known
AlertFn = Callable[[str, str, str], object]

_DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9])?\.)+[a-z0-9-]{2,63}$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)([smhdw])$")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_USER_KINDS = ("sender", "domain")


def parse_duration(text: str) -> float:
    """``90m``, ``12h``, ``7d``, ``2w`` -> seconds."""
    m = _DURATION.match(text.strip().lower())
    if not m:
        raise InputError(f"invalid duration {text!r} (use e.g. 12h, 7d, 2w)")
    return float(m.group(1)) * _UNIT[m.group(2)]


def _domain(value: str) -> str:
    d = value.strip().lower().lstrip("@").rstrip(".")
    try:
        d = d.encode("idna").decode("ascii") if not d.isascii() else d
    except UnicodeError as exc:
        raise InputError(f"invalid domain {value!r}") from exc
    if not _DOMAIN.match(d):
        raise InputError(f"invalid domain {value!r}")
    return d


def _network(value: str) -> str:
    try:
        net = ipaddress.ip_network(value.strip(), strict=False)
    except ValueError as exc:
        raise InputError(f"invalid IP address or network {value!r}") from exc
    return str(net.network_address) if net.num_addresses == 1 else str(net)


def _infra(value: str) -> str:
    try:
        return _network(value)
    except InputError:
        return _domain(value)


def normalise_value(kind: str, value: str) -> str:
    """The canonical form of a list value; raises InputError when it is not valid."""
    v = value.strip()
    if kind == "sender":
        addr = v.strip("<>").lower()
        local, _, dom = addr.rpartition("@")
        if not local or not dom:
            raise InputError(f"invalid sender address {value!r}")
        return f"{local}@{_domain(dom)}"
    if kind == "domain":
        return _domain(v)
    if kind == "ip":
        return _network(v)
    if kind == "url":
        parts = urlsplit(v if "://" in v else f"http://{v}")
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise InputError(f"invalid URL {value!r}")
        host = parts.hostname.lower()
        rest = v.split(parts.netloc, 1)[1] if parts.netloc else ""
        return f"{parts.scheme}://{host}{rest}" if "://" in v else f"{host}{rest}"
    if kind == "hash":
        h = v.lower()
        if not _SHA256.match(h):
            raise InputError(f"invalid sha256 {value!r}")
        return h
    if kind == "spoof_pair":
        claimed, sep, infra = v.partition("|")
        if not sep:
            raise InputError("a spoof pair is 'claimed-domain|infrastructure'")
        return f"{_domain(claimed)}|{_infra(infra)}"
    raise InputError(f"unknown list kind {kind!r} (one of {', '.join(LIST_KINDS)})")


def _scope(scope: str) -> str:
    s = scope.strip()
    if s in ("admin", "incident"):
        return s
    if s.startswith("user:"):
        return "user:" + normalise_value("sender", s[5:])
    raise InputError(f"invalid scope {scope!r} (admin, incident or user:<address>)")


def check_wide(kind: str, norm: str, action: str, scope: str, *, force: bool,
               reason: str) -> str | None:
    """Refuse a wide entry that is not forced with a reason; the wide reason when forced."""
    wide = wide_reason(kind, norm, scope)
    if wide is None:
        return None
    if not force or not reason.strip():
        raise Overridable(f"{action} {kind} {norm} is wide: {wide}")
    return wide


class ListService:
    def __init__(self, store: Store, *, alert: AlertFn | None = None) -> None:
        self.store = store
        self._alert = alert

    def _raise_alert(self, subject: str, message: str) -> None:
        if self._alert is not None:
            self._alert("forced_list_entry", subject, message)
            return
        self.store.rollout.alert("forced_list_entry", subject, message)
        log.warning("ALERT forced_list_entry %s: %s", subject, message)

    def add(self, actor: Principal, kind: str, value: str, action: str, *,
            scope: str = "admin", expires_at: float | None = None, note: str = "",
            force: bool = False, reason: str = "") -> ListEntry:
        """Add an entry; a wide one (``services.list_scope``) needs ``force`` and a reason."""
        require(actor, "lists.write")
        if action not in ("allow", "block"):
            raise InputError(f"invalid action {action!r} (allow or block)")
        scope = _scope(scope)
        norm = normalise_value(kind, value)
        if scope == "incident":
            if action != "allow":
                raise InputError("incident entries are allows (a block needs no incident)")
            if expires_at is None:
                raise InputError("incident entries must expire (give an expiry)")
        if scope.startswith("user:") and kind not in _USER_KINDS:
            raise InputError("per-user entries are senders or domains")
        if expires_at is not None and expires_at <= self.store.clock.now():
            raise InputError("the expiry is in the past")
        wide = check_wide(kind, norm, action, scope, force=force, reason=reason)
        entry = self.store.lists.add(ListEntry(kind, norm, action, scope, "", expires_at, note,
                                               actor.name))
        details: dict[str, object] = {
            "kind": kind, "value": norm, "action": action, "scope": scope,
            "expires_at": expires_at, "note": note,
        }
        if wide is None:
            self.store.audit.append(actor.name, "lists.add", entry.entry_id, details)
            return entry
        self.store.audit.append(actor.name, "lists.force", entry.entry_id,
                                {**details, "wide": wide, "reason": reason})
        self._raise_alert(f"list:{entry.entry_id}",
                          f"{actor.name} forced a wide {scope} {action} of {kind} {norm} "
                          f"({wide}): {reason}")
        return entry

    def remove(self, actor: Principal, entry_id: str, *, reason: str = "") -> ListEntry:
        require(actor, "lists.write")
        entry = self.store.lists.remove(entry_id)
        if entry is None:
            raise NotFound(f"no list entry {entry_id}")
        self.store.audit.append(actor.name, "lists.remove", entry_id, {
            "kind": entry.kind, "value": entry.value, "action": entry.action,
            "scope": entry.scope, **({"reason": reason} if reason else {}),
        })
        return entry

    def entries(self, actor: Principal, *, kind: str | None = None, scope: str | None = None,
                action: str | None = None, include_expired: bool = True) -> list[ListEntry]:
        require(actor, "lists.read")
        return self.store.lists.entries(kind=kind, scope=scope, action=action,
                                        include_expired=include_expired)

    def snapshot(self) -> ListSnapshot:
        """What policy reads: the active entries with a content version."""
        return self.store.lists.snapshot()


def entry_dict(e: ListEntry) -> dict[str, object]:
    return {"id": e.entry_id, "kind": e.kind, "value": e.value, "action": e.action,
            "scope": e.scope, "expires_at": e.expires_at, "note": e.note, "author": e.author}
