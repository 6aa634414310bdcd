"""Domain comparisons shared by the links and impersonation detectors.

Owns the homoglyph *skeleton* of a name (Unicode confusables, from the ``confusable-homoglyphs``
package which ships Unicode's confusables data offline, plus the ASCII tricks ``rn``->``m``,
``vv``->``w``, ``0``->``o``, ``1``/``i``->``l``), mixed-script detection for IDN labels, an
optimal-string-alignment edit distance, and ``Protected``: the set of domains an organisation
cares about with a ``lookalike()`` check against it.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

from mailsift.parsing import registrable_domain

__all__ = ["Lookalike", "Protected", "edit_distance", "first_label", "mixed_script", "skeleton"]

_ASCII_PAIRS = (("rn", "m"), ("vv", "w"), ("cl", "d"), ("0", "o"), ("1", "l"), ("i", "l"),
                ("|", "l"))


def _load_confusables() -> dict[str, str]:
    """char -> one ASCII letter/digit it is confusable with (lower-cased)."""
    from confusable_homoglyphs import confusables

    table: dict[str, str] = {}
    data: dict[str, list[dict[str, str]]] = confusables.confusables_data
    for char, glyphs in data.items():
        if len(char) != 1 or char.isascii():
            continue
        for glyph in glyphs:
            target = glyph.get("c", "")
            if len(target) == 1 and target.isascii() and target.isalnum():
                table[char] = target.lower()
                break
    return table


_TABLE: dict[str, str] | None = None


def _table() -> dict[str, str]:
    global _TABLE
    if _TABLE is None:
        _TABLE = _load_confusables()
    return _TABLE


@lru_cache(maxsize=8192)
def skeleton(name: str) -> str:
    """A visual normal form: two names with the same skeleton look alike to a reader."""
    text = unicodedata.normalize("NFKC", name).lower()
    if not text.isascii():
        # The confusables table (~0.1 s to load) is only needed for non-ASCII names, so a
        # worker that never sees one never loads it.
        table = _table()
        text = "".join(table.get(ch, ch) for ch in text)
        # Strip combining marks left by decomposition (é -> e): accents must not hide a
        # lookalike.
        text = "".join(ch for ch in unicodedata.normalize("NFD", text)
                       if not unicodedata.combining(ch))
    for seq, repl in _ASCII_PAIRS:
        text = text.replace(seq, repl)
    return text


def _script(ch: str) -> str:
    if ch.isascii():
        return "LATIN" if ch.isalpha() else ""
    try:
        return unicodedata.name(ch).split(" ", 1)[0]
    except ValueError:
        return ""


@lru_cache(maxsize=8192)
def mixed_script(host: str) -> str:
    """Why an IDN host is deceptive, or ``""``.

    A label mixing Latin with another alphabet (``pаypal`` with a Cyrillic ``а``), or a label
    written wholly in another alphabet whose skeleton is plain ASCII (``аррӏе``), is deceptive;
    a label wholly in one non-Latin script that does not read as Latin (``пример``, ``例え``) or
    Latin with accents (``münchen``) is an ordinary IDN.
    """
    for label in host.split("."):
        if label.isascii():
            continue
        scripts = {s for s in map(_script, label) if s}
        if "LATIN" in scripts and len(scripts) > 1:
            return f"mixed scripts in {label!r}: {', '.join(sorted(scripts))}"
        if "LATIN" not in scripts:
            skel = skeleton(label)
            if skel.isascii() and any(c.isalpha() for c in skel):
                return f"{label!r} reads as {skel!r}"
    return ""


def edit_distance(a: str, b: str, limit: int = 3) -> int:
    """Optimal string alignment distance (transpositions count 1); ``limit + 1`` when above."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    prev2: list[int] = []
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i] + [0] * len(b)
        for j, cb in enumerate(b, 1):
            cost = 0 if ca == cb else 1
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                cur[j] = min(cur[j], prev2[j - 2] + 1)
        if min(cur) > limit:
            return limit + 1
        prev2, prev = prev, cur
    return prev[-1]


def _deletions(label: str) -> set[str]:
    return {label[:i] + label[i + 1 :] for i in range(len(label))}


def first_label(domain: str) -> str:
    """``example`` of ``example.co.uk`` (the label the public suffix does not cover)."""
    return domain.split(".", 1)[0]


@dataclass(frozen=True, slots=True)
class Lookalike:
    """``domain`` looks like the protected ``target``; ``how`` says why (for the evidence)."""

    domain: str
    target: str
    how: str
    kind: str  # own | partner | brand


class Protected:
    """Domains that must not be imitated: the organisation's own, its partners, known brands.

    Brands are matched by label only (``paypal`` in ``paypal.de`` is PayPal's own ccTLD, so a
    different suffix alone is not suspicious for a brand); own and partner domains also flag a
    swapped suffix (``example.co`` for ``example.com``), the classic supplier-fraud trick.
    """

    def __init__(self, own: Iterable[str] = (), partners: Iterable[str] = (),
                 brands: Iterable[str] = (), *, max_distance: int = 1,
                 min_length: int = 5) -> None:
        self.max_distance = max_distance
        self.min_length = min_length
        entries: dict[str, str] = {}
        for kind, domains in (("brand", brands), ("partner", partners), ("own", own)):
            for dom in domains:
                entries[registrable_domain(dom.lower())] = kind  # later kinds win: own > brand
        self.kinds = entries
        self.labels: dict[str, list[str]] = {}
        for dom in entries:
            self.labels.setdefault(first_label(dom), []).append(dom)
        self._skeletons = {skeleton(label): label for label in self.labels}
        # Symmetric-delete index: labels within one edit share a one-deletion variant (or one
        # is a deletion of the other), so only those few candidates get the full distance.
        self._deletes: dict[str, set[str]] = {}
        for label in self.labels:
            if len(label) >= min_length:
                for variant in {label, *_deletions(label)}:
                    self._deletes.setdefault(variant, set()).add(label)

    def is_protected(self, domain: str) -> bool:
        return domain in self.kinds

    def owner_of_label(self, domain: str) -> bool:
        """Same first label as a protected *brand* (``amazon.de`` for ``amazon.com``)."""
        doms = self.labels.get(first_label(domain), ())
        return any(self.kinds[d] == "brand" for d in doms)

    def lookalike(self, domain: str) -> Lookalike | None:
        """Does registrable ``domain`` imitate a protected domain (and is not one)?"""
        if not domain or domain in self.kinds:
            return None
        return self._lookalike(domain)

    @lru_cache(maxsize=4096)  # noqa: B019 - instances live as long as the detector
    def _lookalike(self, domain: str) -> Lookalike | None:
        label = first_label(domain)
        if label in self.labels:
            for target in self.labels[label]:
                if self.kinds[target] != "brand":
                    return Lookalike(domain, target, "same name, other suffix", self.kinds[target])
            return None  # a brand's label under another suffix: usually the brand's own ccTLD
        skel = skeleton(label)
        if skel in self._skeletons:
            target = self.labels[self._skeletons[skel]][0]
            return Lookalike(domain, target, f"homoglyph of {first_label(target)!r}",
                             self.kinds[target])
        if len(label) < self.min_length or self.max_distance == 0:
            return None
        if self.max_distance == 1:
            near: set[str] = set()
            for variant in {label, *_deletions(label)}:
                near |= self._deletes.get(variant, set())
            candidates = sorted(near)
        else:
            candidates = sorted(self.labels)
        for plabel in candidates:
            targets = self.labels[plabel]
            if len(plabel) < self.min_length or abs(len(plabel) - len(label)) > self.max_distance:
                continue
            kind = self.kinds[targets[0]]
            if (kind == "brand" and len(label) == len(plabel)
                    and sorted(label) != sorted(plabel)):
                # A brand name with one letter swapped for a visually different one is usually
                # another name (pcloud/icloud); visual swaps were caught by the skeleton above.
                continue
            dist = edit_distance(label, plabel, self.max_distance)
            if dist <= self.max_distance:
                return Lookalike(domain, targets[0], f"{dist} edit(s) from {plabel!r}",
                                 self.kinds[targets[0]])
        return None

    def brand_in_host(self, host: str, domain: str) -> str:
        """A protected domain written as labels of an unrelated host
        (``paypal.com.secure-check.top``, ``login.microsoft.com-verify.net``); returns it.

        A protected *name* alone (``apple.slashdot.org``, ``outlook.4team.biz``) is not enough:
        measured on ham, sites name sections and products after brands all the time.
        """
        if domain in self.kinds or self.owner_of_label(domain):
            return ""
        # Hyphens join labels in the trick (paypal.com-verify.net), so split on both; a match
        # must not be the host's own ending (ssl-images-amazon.com is Amazon's CDN name).
        labels = host.replace("-", ".").split(".")
        for size in (2, 3):
            for i in range(len(labels) - size):
                cand = ".".join(labels[i : i + size])
                if cand in self.kinds:
                    return cand
        return ""
