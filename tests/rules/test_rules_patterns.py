"""Rule regexes: forms, flags, validation, and that every fast path agrees with ``re``."""

from __future__ import annotations

import random
import re

import pytest

from mailsift.rules.patterns import compile_pattern, fold


def test_perl_form_with_flags() -> None:
    p = compile_pattern("/hello\\s+world/i")
    assert p.regex.flags & re.IGNORECASE
    assert p.search("say HELLO   World") == (4, 17)


def test_plain_form_uses_flags_field() -> None:
    assert compile_pattern("hello", "i").search("HELLO") == (0, 5)
    assert compile_pattern("hello").search("HELLO") is None


@pytest.mark.parametrize(
    ("spec", "flags", "message"),
    [
        ("/a(b/", "", "bad regex"),
        ("/abc/q", "", "unknown regex flag"),
        ("/abc/i", "i", "flags given both"),
        ("", "", "empty pattern"),
    ],
)
def test_invalid_patterns(spec: str, flags: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        compile_pattern(spec, flags)


def test_requirement_groups_are_conjunctions() -> None:
    p = compile_pattern(r"/\bverify\s+(?:mailbox|account)\s+(?:now|today)\b/i")
    assert set(p.groups) == {frozenset({"verify"}), frozenset({"mailbox", "account"}),
                             frozenset({"now", "today"})}
    assert p.may_match(frozenset({"verify", "account", "today"}))
    assert not p.may_match(frozenset({"verify", "account"}))


def test_common_words_make_no_group() -> None:
    p = compile_pattern(r"/\bverify\s+(?:your|the)\s+account\b/i")
    assert set(p.groups) == {frozenset({"verify"}), frozenset({"account"})}


def test_optional_parts_give_no_requirement() -> None:
    assert compile_pattern("/a(?:bcdef)?g/").groups == ()
    assert compile_pattern("/(?:abc|de)x/").groups == ()  # "de" is too short to filter on


def test_top_level_alternation_is_split() -> None:
    p = compile_pattern(r"/\b(?:next\s+of\s+kin|unclaimed\s+funds?)\b/i")
    assert [part.source for part in p.parts] == [
        r"\b(?:next\s+of\s+kin)\b", r"\b(?:unclaimed\s+funds?)\b"
    ]
    text = "the UNCLAIMED fund is waiting"
    assert p.find(text, fold(text), frozenset({"unclaimed", "fund"})) == (4, 18)
    # Without the literals the prefilter rightly skips the regex.
    assert p.find(text, fold(text), frozenset()) is None


def test_backreferences_are_not_split() -> None:
    assert compile_pattern(r"/(a)b|\1c/").parts == ()


def test_case_sensitive_twin_is_skipped_for_letter_escapes() -> None:
    assert compile_pattern(r"/\x41bc/i").folded is None
    assert compile_pattern(r"/(?i)abc/").folded is None
    assert compile_pattern(r"/\Sfoo/i").folded is not None


def test_fold_keeps_offsets_and_ignorecase_equivalents() -> None:
    text = "Veri\u0131fy \u0130STANBUL \u017fpam \u212aelvin"
    folded = fold(text)
    assert len(folded) == len(text)
    assert folded == "veriify istanbul spam kelvin"


PATTERNS = [
    r"/\bverify\s+(?:your|the)\s+account\b/i",
    r"/\b(?:click|tap)\s+(?:here|the\s+link)\b/i",
    r"/[A-Z]{3,}\s+now/i",
    r"/\bmail(?:box)?\s+(?:is\s+)?full\b/i",
    r"/^re:/im",
    r"/\$\d{1,3}(?:,\d{3}){2,}/",
    r"/\b(?:foo|bar)\W+baz/i",
]
WORDS = ["verify", "VERIFY", "your", "the", "Account", "click", "Tap", "here", "link", "mail",
         "MAILBOX", "is", "full", "now", "re:", "Re:", "$1,000,000", "foo", "BAR", "baz", "x",
         "\u0130", "\u017f", "reverify", "-", "\n", "  "]


@pytest.mark.parametrize("spec", PATTERNS)
def test_fast_paths_agree_with_re(spec: str) -> None:
    """Prefilter, case-sensitive twin, scanner and split parts never change the answer."""
    pattern = compile_pattern(spec)
    literals = pattern.literals
    rng = random.Random(spec)
    for _ in range(400):
        text = " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 12)))
        folded = fold(text)
        present = frozenset(lit for lit in literals if lit in folded)
        expected = pattern.regex.search(text) is not None
        assert (pattern.find(text, folded, present) is not None) == expected, text
