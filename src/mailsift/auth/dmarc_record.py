"""DMARC record syntax (RFC 7489 section 6.3, RFC 9989 tags ``np``, ``t``, ``psd``).

Owns parsing one TXT string into a ``DmarcRecord`` and the rules for bad tag values: an invalid
``p`` with a valid ``rua`` is read as ``p=none`` (RFC 7489 6.6.3); other invalid values of
optional tags fall back to their defaults; a record that is not ``v=DMARC1`` first is not a
DMARC record at all.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DmarcRecord", "DmarcSyntaxError", "is_dmarc", "parse_record"]

_POLICIES = frozenset({"none", "quarantine", "reject"})


class DmarcSyntaxError(ValueError):
    """A ``v=DMARC1`` record that cannot be used."""


@dataclass(frozen=True, slots=True)
class DmarcRecord:
    p: str
    sp: str | None = None
    np: str | None = None
    adkim: str = "r"
    aspf: str = "r"
    pct: int = 100
    t: bool = False
    psd: str = "u"
    raw: str = ""
    notes: tuple[str, ...] = ()


def is_dmarc(text: str) -> bool:
    """RFC 7489 6.6.3: keep only records whose first tag is ``v=DMARC1``."""
    head = text.split(";", 1)[0].replace(" ", "").replace("\t", "")
    return head == "v=DMARC1"


def parse_record(text: str) -> DmarcRecord:
    if not is_dmarc(text):
        raise DmarcSyntaxError("record does not start with v=DMARC1")
    tags: dict[str, str] = {}
    for part in text.split(";")[1:]:
        part = part.strip()
        if not part:
            continue
        name, eq, value = part.partition("=")
        name = name.strip().lower()
        if not eq or not name:
            raise DmarcSyntaxError(f"malformed tag {part!r}")
        if name in tags:
            raise DmarcSyntaxError(f"duplicate tag {name}")
        tags[name] = value.strip()
    notes: list[str] = []

    def policy(tag: str) -> str | None:
        value = tags.get(tag)
        if value is None:
            return None
        if value.lower() in _POLICIES:
            return value.lower()
        notes.append(f"invalid {tag}={value!r} ignored")
        return None

    p = policy("p")
    if p is None:
        # RFC 7489 6.6.3: without a usable p, a record with rua is p=none; RFC 9989 reads a
        # record without p (e.g. reporting-only or psd records) as p=none too.
        if "p" in tags and "rua" not in tags:
            raise DmarcSyntaxError(f"invalid p={tags['p']!r}")
        p = "none"
    sp, np = policy("sp"), policy("np")
    adkim = tags.get("adkim", "r").lower()
    aspf = tags.get("aspf", "r").lower()
    for tag, val in (("adkim", adkim), ("aspf", aspf)):
        if val not in ("r", "s"):
            notes.append(f"invalid {tag}={val!r}, relaxed used")
    adkim = adkim if adkim in ("r", "s") else "r"
    aspf = aspf if aspf in ("r", "s") else "r"
    pct = 100
    if "pct" in tags:
        try:
            pct = int(tags["pct"])
        except ValueError:
            pct = -1
        if not 0 <= pct <= 100:
            notes.append(f"invalid pct={tags['pct']!r}, 100 used")
            pct = 100
    testing = tags.get("t", "n").lower() == "y"
    psd = tags.get("psd", "u").lower()
    if psd not in ("y", "n", "u"):
        notes.append(f"invalid psd={psd!r} ignored")
        psd = "u"
    return DmarcRecord(p, sp, np, adkim, aspf, pct, testing, psd, text, tuple(notes))
