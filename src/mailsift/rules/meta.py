"""Meta expressions: boolean and counting logic over other rules' results.

Grammar (parsed here by recursive descent, never ``eval``)::

    expr    := or
    or      := and ("||" and)*
    and     := not ("&&" not)*
    not     := "!" not | compare
    compare := sum (("<=" | ">=" | "==" | "!=" | "<" | ">") sum)?
    sum     := atom ("+" atom)*
    atom    := RULE_ID | NUMBER | "(" expr ")"

A rule id is 1 when that rule hit and 0 otherwise, so ``(A + B + C) >= 2`` counts. The result
is true when the value is non-zero. Expressions compile to nested closures over a
``Mapping[str, bool]`` of the hits so far; evaluation order guarantees inputs are present.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

__all__ = ["MetaExpr", "parse_meta"]

class Hits(Protocol):
    """What an expression reads: the hit (truthy) or miss of a rule id."""

    def get(self, key: str, /) -> object: ...


_Node = Callable[[Hits], int]

_TOKEN = re.compile(
    r"\s*(?:(?P<op>&&|\|\||<=|>=|==|!=|[<>!+()])|(?P<num>\d+)|(?P<name>_{0,2}[A-Za-z][A-Za-z0-9_]*))"
)
_COMPARE: dict[str, Callable[[int, int], bool]] = {
    "<=": operator.le,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    ">": operator.gt,
}
_MAX_DEPTH = 50


@dataclass(frozen=True, slots=True)
class MetaExpr:
    """A parsed meta expression: ``names`` are the rule ids it reads."""

    source: str
    names: tuple[str, ...]
    _fn: _Node

    def __call__(self, hits: Hits) -> bool:
        return bool(self._fn(hits))


def parse_meta(source: str) -> MetaExpr:
    """Parse ``source``; raise ``ValueError`` with the position of the problem."""
    tokens = _tokenize(source)
    parser = _Parser(source, tokens)
    fn = parser.expr(0)
    if parser.pos != len(tokens):
        raise ValueError(f"unexpected {tokens[parser.pos][1]!r} in meta {source!r}")
    return MetaExpr(source, tuple(dict.fromkeys(parser.names)), fn)


def _tokenize(source: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos = 0
    stripped = source.rstrip()
    while pos < len(stripped):
        match = _TOKEN.match(stripped, pos)
        if not match or match.end() == pos:
            raise ValueError(f"bad character at offset {pos} in meta {source!r}")
        kind = match.lastgroup or ""
        out.append((kind, match.group(kind)))
        pos = match.end()
    if not out:
        raise ValueError("empty meta expression")
    return out


class _Parser:
    def __init__(self, source: str, tokens: list[tuple[str, str]]) -> None:
        self.source = source
        self.tokens = tokens
        self.pos = 0
        self.names: list[str] = []

    def _peek(self) -> str | None:
        return self.tokens[self.pos][1] if self.pos < len(self.tokens) else None

    def _take(self, value: str) -> bool:
        if self._peek() == value and self.tokens[self.pos][0] == "op":
            self.pos += 1
            return True
        return False

    def expr(self, depth: int) -> _Node:
        if depth > _MAX_DEPTH:
            raise ValueError(f"meta expression nested too deeply: {self.source!r}")
        left = self._and(depth)
        while self._take("||"):
            right = self._and(depth)
            left = _or(left, right)
        return left

    def _and(self, depth: int) -> _Node:
        left = self._not(depth)
        while self._take("&&"):
            right = self._not(depth)
            left = _and(left, right)
        return left

    def _not(self, depth: int) -> _Node:
        if self._take("!"):
            if depth > _MAX_DEPTH:
                raise ValueError(f"meta expression nested too deeply: {self.source!r}")
            inner = self._not(depth + 1)
            return lambda hits: 0 if inner(hits) else 1
        return self._compare(depth)

    def _compare(self, depth: int) -> _Node:
        left = self._sum(depth)
        op = self._peek()
        if op in _COMPARE and self.tokens[self.pos][0] == "op":
            self.pos += 1
            right = self._sum(depth)
            cmp = _COMPARE[op]
            return lambda hits: int(cmp(left(hits), right(hits)))
        return left

    def _sum(self, depth: int) -> _Node:
        terms = [self._atom(depth)]
        while self._take("+"):
            terms.append(self._atom(depth))
        if len(terms) == 1:
            return terms[0]
        return lambda hits: sum(term(hits) for term in terms)

    def _atom(self, depth: int) -> _Node:
        if self.pos >= len(self.tokens):
            raise ValueError(f"meta expression ends early: {self.source!r}")
        kind, value = self.tokens[self.pos]
        self.pos += 1
        if kind == "name":
            self.names.append(value)
            return lambda hits: 1 if hits.get(value) else 0
        if kind == "num":
            number = int(value)
            return lambda hits: number
        if value == "(":
            inner = self.expr(depth + 1)
            if not self._take(")"):
                raise ValueError(f"missing ')' in meta {self.source!r}")
            return inner
        raise ValueError(f"unexpected {value!r} in meta {self.source!r}")


def _or(left: _Node, right: _Node) -> _Node:
    return lambda hits: 1 if left(hits) or right(hits) else 0


def _and(left: _Node, right: _Node) -> _Node:
    return lambda hits: 1 if left(hits) and right(hits) else 0
