"""Loading packs: validation errors carry file and line; versions are content hashes."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailsift.core.errors import RuleError
from mailsift.core.findings import ArtifactState
from mailsift.rules import RuleSet, load_pack

HEADER = '[pack]\nname = "local"\ndescription = "test pack"\n\n'
GOOD = '''[[rule]]
id = "GOOD_ONE"
description = "a good rule"
category = "spam"
weight = 1.5
body = "/cheap\\\\s+pills/i"
'''


def write(tmp_path: Path, text: str, name: str = "pack.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def error_of(path: Path) -> RuleError:
    with pytest.raises(RuleError) as info:
        RuleSet([load_pack(path)])
    return info.value


def test_good_pack_loads(tmp_path: Path) -> None:
    pack = load_pack(write(tmp_path, HEADER + GOOD))
    assert pack.name == "local"
    (rule,) = pack.rules
    assert (rule.id, rule.kind, rule.category, rule.weight) == ("GOOD_ONE", "body", "spam", 1.5)
    assert rule.state is ArtifactState.SHADOW  # new rules are born in shadow
    assert rule.line == 6 and rule.path.endswith("pack.toml")


BAD_RULES = [
    ('body = "/a(b/"', "bad regex"),
    ('body = "x"\nsize = 3', "unknown field"),
    ('header = "From:color"\npattern = "x"', "unknown header pseudo-field"),
    ('header = "Subject:addr"\npattern = "x"', ":addr exists only for"),
    ('check = "no_such_check"', "unknown check"),
    ('check = "many_recipients"\nargs = { min = "ten" }', "min must be int"),
    ('check = "many_recipients"\nargs = { max = 3 }', "takes no argument"),
    ('meta = "A &&"', "ends early"),
    ('body = "x"\nheader = "Subject"', "exactly one matcher"),
    ('header = "Subject"', "exactly one of pattern"),
    ('header = "Date"\nabsent = false', "absent must be true"),
    ('body = "x"\nflags = "q"', "unknown regex flag"),
    ('body = "x"\nstate = "live"', "state must be one of"),
    ('body = "x"\ncategory = "evil"', "category must be one of"),
]


@pytest.mark.parametrize(("matcher", "message"), BAD_RULES)
def test_invalid_rule_reports_file_and_line(tmp_path: Path, matcher: str, message: str) -> None:
    weight = "" if "category" in matcher else "weight = 1.0\n"
    text = HEADER + GOOD + f'\n[[rule]]\nid = "BAD_ONE"\ndescription = "d"\n{weight}{matcher}\n'
    err = error_of(write(tmp_path, text))
    assert message in str(err)
    assert err.path and err.path.endswith("pack.toml")
    assert err.line == 13  # the line of id = "BAD_ONE"
    assert ":13:" in str(err)


@pytest.mark.parametrize(
    ("rule_id", "message"),
    [("lower_case", "UPPER_SNAKE"), ("AUTH_MINE", "reserved prefix"),
     ("__URL_THING", "reserved prefix"), ("A__B", "UPPER_SNAKE")],
)
def test_bad_ids(tmp_path: Path, rule_id: str, message: str) -> None:
    text = HEADER + f'[[rule]]\nid = "{rule_id}"\ndescription = "d"\nbody = "x"\n'
    err = error_of(write(tmp_path, text))
    assert message in str(err) and err.line == 6


def test_missing_description(tmp_path: Path) -> None:
    err = error_of(write(tmp_path, HEADER + '[[rule]]\nid = "NO_DESC"\nbody = "x"\n'))
    assert "description is required" in str(err) and err.line == 6


def test_subrule_cannot_score(tmp_path: Path) -> None:
    text = HEADER + '[[rule]]\nid = "__SUB"\ndescription = "d"\ncategory = "spam"\n' \
        'weight = 1.0\nbody = "x"\n'
    assert "sub-rules" in str(error_of(write(tmp_path, text)))


def test_category_needs_weight(tmp_path: Path) -> None:
    text = HEADER + '[[rule]]\nid = "NO_W"\ndescription = "d"\ncategory = "spam"\nbody = "x"\n'
    assert "needs a weight" in str(error_of(write(tmp_path, text)))


def test_duplicate_id_points_at_second(tmp_path: Path) -> None:
    err = error_of(write(tmp_path, HEADER + GOOD + "\n" + GOOD))
    assert "duplicate rule id GOOD_ONE" in str(err)
    assert err.line == 13


def test_dangling_meta_reference(tmp_path: Path) -> None:
    text = HEADER + GOOD + '\n[[rule]]\nid = "META_X"\ndescription = "d"\n' \
        'meta = "GOOD_ONE && NOPE"\n'
    err = error_of(write(tmp_path, text))
    assert "unknown rule NOPE" in str(err) and err.line == 13


def test_meta_cycle(tmp_path: Path) -> None:
    text = HEADER + (
        '[[rule]]\nid = "M_A"\ndescription = "d"\nmeta = "M_B"\n\n'
        '[[rule]]\nid = "M_B"\ndescription = "d"\nmeta = "M_C || M_A"\n\n'
        '[[rule]]\nid = "M_C"\ndescription = "d"\nmeta = "!M_A"\n'
    )
    err = error_of(write(tmp_path, text))
    assert "cycle" in str(err) and "M_A -> M_B" in str(err)
    assert err.line in (6, 11, 16)


def test_meta_self_reference(tmp_path: Path) -> None:
    text = HEADER + '[[rule]]\nid = "SELF"\ndescription = "d"\nmeta = "SELF || SELF"\n'
    assert "itself" in str(error_of(write(tmp_path, text)))


def test_toml_syntax_error_has_line(tmp_path: Path) -> None:
    err = error_of(write(tmp_path, HEADER + GOOD + "\n[[rule]\nid = 3\n"))
    assert "invalid TOML" in str(err) and err.line == 12


def test_unknown_top_level_and_pack_keys(tmp_path: Path) -> None:
    err = error_of(write(tmp_path, HEADER + "[rules]\nx = 1\n"))
    assert "unknown top-level key" in str(err) and err.line == 5
    err = error_of(write(tmp_path, '[pack]\nname = "x"\nversion = "1"\n'))
    assert "unknown [pack] field" in str(err) and err.line == 1


def test_missing_pack_table_and_bad_name(tmp_path: Path) -> None:
    assert "missing [pack]" in str(error_of(write(tmp_path, GOOD)))
    assert "name must match" in str(error_of(write(tmp_path, '[pack]\nname = "Bad Name"\n')))


def test_missing_path() -> None:
    with pytest.raises(RuleError, match="no such rule file"):
        load_pack("/nonexistent/rules.toml")


def test_folder_pack(tmp_path: Path) -> None:
    folder = tmp_path / "site-rules"
    folder.mkdir()
    write(folder, HEADER.replace('"local"', '"site"'), "00-pack.toml")
    write(folder, GOOD, "10-spam.toml")
    write(folder, GOOD.replace("GOOD_ONE", "OTHER_ONE"), "20-more.toml")
    pack = load_pack(folder)
    assert pack.name == "site" and [r.id for r in pack.rules] == ["GOOD_ONE", "OTHER_ONE"]
    assert pack.rules[1].path.endswith("20-more.toml")


def test_folder_without_pack_table_is_named_after_folder(tmp_path: Path) -> None:
    folder = tmp_path / "extra"
    folder.mkdir()
    write(folder, GOOD, "a.toml")
    assert load_pack(folder).name == "extra"


def test_folder_with_two_pack_tables(tmp_path: Path) -> None:
    folder = tmp_path / "two"
    folder.mkdir()
    write(folder, HEADER, "a.toml")
    write(folder, HEADER, "b.toml")
    with pytest.raises(RuleError, match="second \\[pack\\]"):
        load_pack(folder)


def test_versions_stable_and_content_sensitive(tmp_path: Path) -> None:
    base = load_pack(write(tmp_path, HEADER + GOOD, "a.toml"))
    reformatted = load_pack(write(
        tmp_path, "# a comment\n" + HEADER + GOOD.replace("weight = 1.5", "weight   =   1.5"),
        "b.toml",
    ))
    assert base.version == reformatted.version
    assert base.rules[0].version == reformatted.rules[0].version
    assert len(base.version) == 12

    heavier = load_pack(write(tmp_path, HEADER + GOOD.replace("1.5", "2.5"), "c.toml"))
    assert heavier.version != base.version
    assert heavier.rules[0].version != base.rules[0].version

    # Promotion (state) and wording change the pack, not the rule's logic version.
    promoted = load_pack(write(tmp_path, HEADER + GOOD + 'state = "active"\n', "d.toml"))
    assert promoted.version != base.version
    assert promoted.rules[0].version == base.rules[0].version


def test_rule_order_does_not_change_version(tmp_path: Path) -> None:
    other = GOOD.replace("GOOD_ONE", "OTHER_ONE")
    one = load_pack(write(tmp_path, HEADER + GOOD + "\n" + other, "a.toml"))
    two = load_pack(write(tmp_path, HEADER + other + "\n" + GOOD, "b.toml"))
    assert one.version == two.version
