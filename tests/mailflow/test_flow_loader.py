"""Rule files load whole or not at all, with file:line on every problem."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailsift.core.errors import ConfigError
from mailsift.mailflow.loader import load_rules, parse_rules

GOOD = (Path(__file__).parent / "rules" / "tag_and_review.toml").read_text()


def test_the_issue_shape_loads(tmp_path: Path) -> None:
    path = tmp_path / "rules.toml"
    path.write_text(GOOD)
    rules = load_rules(path).rules
    assert [r.name for r in rules] == ["tag-external", "review"]
    assert rules[0].if_.direction == ("inbound",)
    assert rules[0].then.add_header == {"X-External": "yes"}
    assert rules[1].except_.sender == ("@customer.test",)


@pytest.mark.parametrize(("text", "line", "what"), [
    (GOOD.replace('direction = "inbound"', 'directon = "inbound"'), 6, "unknown field"),
    (GOOD.replace('bcc = ["review@customer.test"]', 'bcc = ["review@"'), 21, "syntax error"),
    (GOOD.replace('prepend_subject = "[EXTERNAL] "', 'reject = "no"\nquarantine = true'), 7,
     "impossible action"),
    (GOOD.replace('mode = "test"', 'mode = "maybe"'), 13, "mode"),
    (GOOD.replace('direction = "inbound"', 'category = ["spam"]')
     .replace("priority = 10", 'priority = 10\nstage = "before"'), 1, "before-detection"),
    (GOOD.replace('["group:finance"]', '["group:nobody"]'), 1, "unknown group"),
    (GOOD.replace('bcc = ["review@customer.test"]', 'bypass = ["malware"]'), 19, "malware"),
    (GOOD + '\n[other]\nx = 1\n', GOOD.count("\n") + 2, "unknown section"),
])
def test_errors_name_file_and_line(text: str, line: int, what: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_rules(text, "rules.toml")
    assert f"rules.toml:{line}:" in str(err.value)
    assert what in str(err.value)


def test_an_unreadable_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_rules(tmp_path / "missing.toml")


def test_a_rule_without_action_is_refused() -> None:
    with pytest.raises(ConfigError, match="at least one action"):
        parse_rules('[[mailflow.rules]]\nname = "x"\n[mailflow.rules.then]\n', "r.toml")
