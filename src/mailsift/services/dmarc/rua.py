"""Where an aggregate report may go: the ``rua`` tag of the DMARC record, its size limits, and
the external-destination verification of RFC 9990 section 3 (RFC 7489 7.1).

A ``mailto:`` URI may carry a size limit (``mailto:rua@example.com!10m``): a report bigger than
that, once compressed and encoded, is not sent there. A destination whose Organizational Domain
differs from the policy domain's is used only when ``<policy-domain>._report._dmarc.<host>``
publishes a TXT record starting with ``v=DMARC1``; such a record may replace the URI with its own
``rua``, but only with one on the same host (otherwise neither is used). Organizational Domains
are taken from the Public Suffix List here (no DNS). A temporary DNS error propagates
(``DnsTempError``): the caller retries the report later instead of dropping a destination.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from urllib.parse import unquote

from mailsift.auth.dmarc_record import is_dmarc
from mailsift.core.protocols import Resolver

__all__ = ["RuaTarget", "parse_rua", "record_tags", "verify_targets"]

_SIZE = re.compile(r"^(\d+)([kmgt]?)$", re.IGNORECASE)
_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}
_MAX_NAME = 253


@dataclass(frozen=True, slots=True)
class RuaTarget:
    uri: str
    address: str
    host: str
    max_bytes: int | None = None

    def fits(self, size: int) -> bool:
        return self.max_bytes is None or size <= self.max_bytes


def record_tags(record: str) -> dict[str, str]:
    """The tags of a DMARC record as text (names lower-cased); bad parts are skipped."""
    tags: dict[str, str] = {}
    for part in record.split(";"):
        name, eq, value = part.partition("=")
        name = name.strip().lower()
        if eq and name and name not in tags:
            tags[name] = value.strip()
    return tags


def parse_rua(value: str) -> tuple[list[RuaTarget], list[str]]:
    """The ``mailto:`` destinations of a ``rua`` value, and notes on what was ignored."""
    targets: list[RuaTarget] = []
    notes: list[str] = []
    for raw in value.split(","):
        uri = raw.strip()
        if not uri:
            continue
        if not uri.lower().startswith("mailto:"):
            notes.append(f"rua {uri!r}: only mailto: is supported")
            continue
        body, bang, limit = uri[7:].partition("!")
        max_bytes = None
        if bang:
            m = _SIZE.match(limit.strip())
            if m is None:
                notes.append(f"rua {uri!r}: bad size limit {limit!r}")
                continue
            max_bytes = int(m.group(1)) * _UNITS[m.group(2).lower()]
        address = unquote(body.split("?", 1)[0]).strip()
        local, at, host = address.rpartition("@")
        if not at or not local or not host or any(c in address for c in " <>\r\n,;"):
            notes.append(f"rua {uri!r}: not a mailbox")
            continue
        host = host.lower().rstrip(".")
        targets.append(RuaTarget(uri, f"{local}@{host}", host, max_bytes))
    return targets, notes


def verify_targets(targets: Sequence[RuaTarget], policy_domain: str, resolver: Resolver,
                   org_domain: Callable[[str], str]) -> tuple[list[RuaTarget], list[str]]:
    """The destinations that may receive reports about ``policy_domain``, and why others
    may not. Raises ``DnsTempError`` when a verification query fails temporarily."""
    ok: list[RuaTarget] = []
    notes: list[str] = []
    own = org_domain(policy_domain)
    for target in targets:
        if org_domain(target.host) == own:
            ok.append(target)
            continue
        name = f"{_alabel(policy_domain)}._report._dmarc.{_alabel(target.host)}"
        if len(name) > _MAX_NAME:
            notes.append(f"{target.address}: verification name too long")
            continue
        answer = resolver.query(name, "TXT")
        records = [r for r in answer.records if is_dmarc(r)]
        if not records:
            notes.append(f"{target.address}: external destination not verified "
                         f"(no v=DMARC1 TXT at {name})")
            continue
        override = record_tags(records[0]).get("rua")
        if not override:
            ok.append(target)
            continue
        replaced, _ = parse_rua(override)
        if any(r.host != target.host for r in replaced):
            notes.append(f"{target.address}: {name} redirects to another host; not used")
            continue
        ok.extend(replaced)
    unique: dict[str, RuaTarget] = {}
    for t in ok:
        unique.setdefault(t.address.lower(), t)
    return list(unique.values()), notes


def _alabel(domain: str) -> str:
    try:
        return domain.encode("idna").decode("ascii")
    except UnicodeError:
        return domain
