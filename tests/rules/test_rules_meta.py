"""Meta expressions: parsing without eval, boolean logic, counting, errors."""

from __future__ import annotations

import pytest

from mailsift.rules.meta import parse_meta


def test_boolean_logic_and_precedence() -> None:
    expr = parse_meta("A || B && !C")
    assert expr.names == ("A", "B", "C")
    assert expr({"A": True})
    assert expr({"B": True})
    assert not expr({"B": True, "C": True})
    assert not expr({})


def test_parentheses() -> None:
    expr = parse_meta("(A || B) && !(C || D)")
    assert expr({"A": True})
    assert not expr({"A": True, "D": True})


def test_counting() -> None:
    expr = parse_meta("(A + B + C) >= 2")
    assert not expr({"A": True})
    assert expr({"A": True, "C": True})
    assert parse_meta("A + B == 0")({})
    assert parse_meta("(A + B) < 1 || C")({"C": True})


def test_sub_rule_names() -> None:
    assert parse_meta("__X && Y_2").names == ("__X", "Y_2")


@pytest.mark.parametrize(
    "source",
    ["", "A &&", "(A", "A B", "A & B", ">= 2", "A || || B", "__import__('os')", "A ; B",
     "(" * 60 + "A" + ")" * 60, "!" * 60 + "A"],
)
def test_invalid_expressions(source: str) -> None:
    with pytest.raises(ValueError):
        parse_meta(source)
