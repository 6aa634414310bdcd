"""Rule regexes: the ``/.../flags`` and plain-with-flags forms, validation, and literal prefilters.

Case-insensitive searches cannot use the ``re`` engine's literal-prefix fast path: measured here,
one alternation-heavy body rule costs ~0.25 ms on a 7 kB body, and even ``literal in text`` costs
~3.5 us, so dozens of rules each scanning the body blow the per-message budget. Instead, every
pattern carries *requirement groups* found by walking its parse tree: each group is a set of
literals one of which must occur in any match (``verify\\s+your\\s+account`` needs ``verify``,
``your`` and ``account``). The engine finds all literals of all rules in one Aho-Corasick pass
over the lower-cased text and runs a regex only when all its groups are satisfied. Requirements
are only ever necessary conditions: when in doubt a group is left out and the regex runs.
"""

from __future__ import annotations

import importlib
import itertools
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

__all__ = ["Pattern", "check_pattern", "compile_pattern", "fold"]

_PERL_FORM = re.compile(r"^/(?P<body>.*)/(?P<flags>[a-z]*)$", re.DOTALL)
_FLAG_BITS = {"i": re.IGNORECASE, "m": re.MULTILINE, "s": re.DOTALL, "x": re.VERBOSE}
_MIN_LITERAL = 3
# Words so common that requiring them filters nothing while every occurrence costs the
# Aho-Corasick pass a match; groups containing one are dropped (always safe: weaker condition).
_STOPWORDS = frozenset((  # noqa: SIM905
    "the you your this that with from have will here been there what which when please "
    "they them their than then were would could should about into only also more"
).split())

# Characters that ``re.IGNORECASE`` equates with an ASCII letter although ``str.lower`` does not
# (see ``re._casefix``); folding them before lowering keeps the prefilter a necessary condition.
_FOLD_SPECIAL = re.compile("[\u0131\u017f\u0130\u212a]")
_FOLD_TABLE = str.maketrans({"\u0131": "i", "\u017f": "s", "\u0130": "i", "\u212a": "k"})


def fold(text: str) -> str:
    """Lower-case ``text`` for the prefilter of case-insensitive patterns."""
    if not text.isascii() and _FOLD_SPECIAL.search(text):
        text = text.translate(_FOLD_TABLE)
    return text.lower()


@dataclass(frozen=True, slots=True)
class Pattern:
    """A compiled rule regex with its requirement groups (lower-cased literals).

    ``folded`` is the case-sensitive twin of a case-insensitive ASCII pattern, run on the folded
    text (same length and offsets as the original, see ``fold``), where the engine can skip
    ahead by literal prefixes; ``scanner`` is that twin without a leading ``\\b``, which would
    otherwise disable the skip. Both are exact: ``scanner`` only proposes start positions and
    ``folded.match`` decides at each of them.
    """

    source: str
    regex: re.Pattern[str]
    groups: tuple[frozenset[str], ...]
    folded: re.Pattern[str] | None = None
    scanner: re.Pattern[str] | None = None
    parts: tuple[Pattern, ...] = ()

    @property
    def literals(self) -> frozenset[str]:
        """Every prefilter literal of this pattern and its parts (for the automaton)."""
        out = {lit for group in self.groups for lit in group}
        for part in self.parts:
            out |= part.literals
        return frozenset(out)

    def find(self, text: str, folded: str, present: frozenset[str]) -> tuple[int, int] | None:
        """Prefiltered search. A split alternation (``parts``) hits if any alternative does."""
        if self.parts:
            for part in self.parts:
                span = part.find(text, folded, present)
                if span:
                    return span
            return None
        if self.groups and not self.may_match(present):
            return None
        return self.search(text, folded)

    def may_match(self, present: frozenset[str] | set[str]) -> bool:
        """False when some required literal group has no member in ``present``."""
        return all(not group.isdisjoint(present) for group in self.groups)

    def search(self, text: str, folded: str | None = None) -> tuple[int, int] | None:
        """Span of the leftmost match in ``text``; ``folded`` is ``fold(text)`` if known."""
        if self.folded is None:
            found = self.regex.search(text)
            return found.span() if found else None
        if folded is None or len(folded) != len(text):
            folded = fold(text)
        if self.scanner is None:
            found = self.folded.search(folded)
            return found.span() if found else None
        pos = 0
        while True:
            candidate = self.scanner.search(folded, pos)
            if candidate is None:
                return None
            found = self.folded.match(folded, candidate.start())
            if found:
                return found.span()
            pos = candidate.start() + 1


def check_pattern(spec: str, flags: str = "") -> re.Pattern[str]:
    """Validate and compile just the regex (what loading a pack needs); ``ValueError`` if bad."""
    body, bits = _body_and_bits(spec, flags, 0)
    return _compile(spec, body, bits)


@lru_cache(maxsize=4096)
def compile_pattern(spec: str, flags: str = "", *, extra: int = 0) -> Pattern:
    """Compile ``/body/flags`` or a plain pattern with ``flags``, with all its fast paths.

    Cached: workers and tests build the same packs repeatedly, and the prefilter analysis
    (the ``re`` parser, one compile per split alternative) is the costly part of startup.
    """
    body, bits = _body_and_bits(spec, flags, extra)
    regex = _compile(spec, body, bits)
    alternatives = _split_alternation(body)
    parts = tuple(_compile_part(alt, regex.flags) for alt in alternatives)
    if parts and all(part is not None for part in parts):
        # The engine searches the parts; the whole pattern's twin would never run.
        kept = tuple(part for part in parts if part is not None)
        return Pattern(spec, regex, _groups(body, regex.flags), parts=kept)
    folded, scanner = _case_sensitive_twin(body, regex.flags)
    return Pattern(spec, regex, _groups(body, regex.flags), folded, scanner)


def _body_and_bits(spec: str, flags: str, extra: int) -> tuple[str, int]:
    match = _PERL_FORM.match(spec)
    if match and len(spec) >= 2:
        if flags:
            raise ValueError("flags given both in /.../flags form and in 'flags'")
        body, flags = match.group("body"), match.group("flags")
    else:
        body = spec
    bits = extra
    for letter in flags:
        if letter not in _FLAG_BITS:
            raise ValueError(f"unknown regex flag {letter!r} (allowed: i, m, s, x)")
        bits |= _FLAG_BITS[letter]
    if not body:
        raise ValueError("empty pattern")
    return body, bits


def _compile(spec: str, body: str, bits: int) -> re.Pattern[str]:
    try:
        return re.compile(body, bits)
    except re.error as exc:
        raise ValueError(f"bad regex {spec!r}: {exc}") from None


def _compile_part(body: str, bits: int) -> Pattern | None:
    folded, scanner = _case_sensitive_twin(body, bits)
    try:
        # With a twin, ``search`` never uses ``regex``: skip compiling the re.I original.
        regex = folded if folded is not None else re.compile(body, bits)
    except re.error:
        return None
    return Pattern(body, regex, _groups(body, bits), folded, scanner)


_BACKREF = re.compile(r"\\[1-9]|\(\?P=")
_MAX_PARTS = 32


def _split_alternation(body: str) -> list[str]:
    """``PRE(?:A|B|C)POST`` or ``A|B|C`` -> ``[PRE A POST, PRE B POST, ...]``, else ``[]``.

    A top-level alternation's prefilter must accept any alternative, so one common word in one
    branch makes the whole regex run on nearly every message; split, each alternative gets the
    conjunction of its own literals. "Some alternative matches" is exactly "the whole matches".
    """
    if _BACKREF.search(body):
        return []
    top = _top_level_bars(body, 0)
    if top:
        return _cut(body, top) if len(top) < _MAX_PARTS else []
    start = body.find("(?:")
    if start < 0 or _top_level_bars(body[:start], 0) or "(" in body[:start]:
        return []
    end = _closing(body, start)
    if end < 0:
        return []
    pre, inner, post = body[:start], body[start + 3: end], body[end + 1:]
    if post[:1] in ("*", "+", "?", "{") or "(" in post or "|" in post:
        return []
    bars = _top_level_bars(inner, 0)
    if not bars or len(bars) >= _MAX_PARTS:
        return []
    return [f"{pre}(?:{alt}){post}" for alt in _cut(inner, bars)]


def _cut(text: str, bars: list[int]) -> list[str]:
    edges = [-1, *bars, len(text)]
    return [text[a + 1: b] for a, b in itertools.pairwise(edges)]


def _walk(text: str, start: int = 0, depth: int = 0) -> Iterator[tuple[int, str, int]]:
    """``(position, character, group depth after it)`` for every character outside escapes
    and character classes: the one regex tokenizer the helpers below share."""
    in_class = False
    i = start
    while i < len(text):
        ch = text[i]
        if ch == "\\":
            i += 2
            continue
        if in_class:
            if ch == "]":
                in_class = False
        elif ch == "[":
            in_class = True
            if text[i + 1: i + 2] == "^":
                i += 1
            if text[i + 1: i + 2] == "]":
                i += 1
        else:
            if ch == "(":
                depth += 1
            elif ch == ")":
                depth -= 1
            yield i, ch, depth
        i += 1


def _top_level_bars(text: str, depth: int) -> list[int]:
    """Positions of ``|`` outside groups and classes (escapes skipped)."""
    return [i for i, ch, d in _walk(text, 0, depth) if ch == "|" and d == 0]


def _closing(text: str, start: int) -> int:
    """Index of the ``)`` closing the group opened at ``start`` (or -1)."""
    for i, ch, d in _walk(text, start):
        if ch == ")" and d == 0:
            return i
    return -1


_INLINE_FLAGS = re.compile(r"\(\?[aiLmsux-]")
_KEEP_ESCAPES = frozenset("bBdDsSwWAZnrtfv")


def _case_sensitive_twin(
    body: str, bits: int
) -> tuple[re.Pattern[str] | None, re.Pattern[str] | None]:
    """For an ASCII case-insensitive pattern: the same pattern lower-cased, case-sensitive.

    Letters are lower-cased outside escapes; patterns with escapes that could encode a letter
    (``\\x41``, ``\\N{...}``, octal) or inline flags keep the plain ``re.I`` path.
    """
    if not bits & re.IGNORECASE or not body.isascii() or _INLINE_FLAGS.search(body):
        return None, None
    out: list[str] = []
    i = 0
    while i < len(body):
        ch = body[i]
        if ch == "\\":
            nxt = body[i + 1: i + 2]
            if nxt.isalnum() and nxt not in _KEEP_ESCAPES:
                return None, None
            out.append(ch + nxt)
            i += 2
            continue
        out.append(ch.lower())
        i += 1
    source = "".join(out)
    try:
        folded = re.compile(source, bits & ~re.IGNORECASE)
        scanner = (
            re.compile(source[2:], bits & ~re.IGNORECASE) if source.startswith("\\b") else None
        )
    except re.error:
        return None, None
    return folded, scanner


def _groups(body: str, bits: int) -> tuple[frozenset[str], ...]:
    """Requirement groups of the pattern (folded), or ``()`` when none can be proven."""
    if bits & re.VERBOSE:
        return ()
    try:
        # re._parser is the engine's own parser (sre_parse before 3.11); using it means the
        # literals come from exactly the tree the engine runs. Any surprise: no prefilter.
        parser: Any = importlib.import_module("re._parser")
        constants = importlib.import_module("re._constants")
        tree = parser.parse(body, bits & ~re.VERBOSE)
        found = _required(list(tree), constants)
    except Exception:
        return ()
    # Folding keeps the condition necessary for case-sensitive patterns too: an ASCII literal
    # that occurs in the text also occurs, lower-cased, in the folded text.
    groups = {frozenset(fold(lit) for lit in group) for group in found}
    useful = (g for g in groups if min(map(len, g)) >= _MIN_LITERAL and g.isdisjoint(_STOPWORDS))
    return tuple(sorted(useful, key=sorted))


def _required(seq: list[tuple[Any, Any]], c: Any) -> list[set[str]]:
    """Groups of alternative literals; every match of ``seq`` contains one of each group."""
    groups: list[set[str]] = []
    run: list[str] = []

    def flush() -> None:
        if run:
            groups.append({"".join(run)})
            run.clear()

    for op, av in seq:
        if op is c.LITERAL and isinstance(av, int) and av < 128:
            run.append(chr(av))
            continue
        flush()
        if op is c.SUBPATTERN:
            _group, add, delete, sub = av
            if not add and not delete:
                groups.extend(_required(list(sub), c))
        elif op in (c.MAX_REPEAT, c.MIN_REPEAT, getattr(c, "POSSESSIVE_REPEAT", None)):
            low, _high, sub = av
            if low >= 1:
                groups.extend(_required(list(sub), c))
        elif op is getattr(c, "ATOMIC_GROUP", None):
            groups.extend(_required(list(av), c))
        elif op is c.BRANCH:
            # One group for the whole alternation: the best group of each alternative.
            alternatives: set[str] = set()
            for alt in av[1]:
                best = max(_required(list(alt), c), key=_score, default=None)
                if not best:
                    alternatives = set()
                    break
                alternatives |= best
            if alternatives:
                groups.append(alternatives)
    flush()
    return groups


def _score(candidate: set[str]) -> int:
    # The weakest alternative decides how selective the set is.
    return min(len(lit) for lit in candidate)
