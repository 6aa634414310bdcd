"""``mailsift mailflow list|test``: the real pipeline, a rule file, an .eml."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mailsift.interfaces.cli.main import main
from mailsift.testing.messages import make_message

RULES = """\
[[mailflow.rules]]
name = "tag-external"
priority = 10
[mailflow.rules.if]
direction = "inbound"
[mailflow.rules.then]
prepend_subject = "[EXTERNAL] "

[[mailflow.rules]]
name = "watch-invoices"
mode = "test"
priority = 20
[mailflow.rules.if]
subject_words = ["invoice"]
[mailflow.rules.then]
quarantine = true
"""


@pytest.fixture()
def files(tmp_path: Path) -> tuple[Path, Path, Path]:
    rules = tmp_path / "rules.toml"
    rules.write_text(RULES)
    eml = tmp_path / "m.eml"
    eml.write_bytes(make_message(subject="Invoice 42"))
    config = tmp_path / "mailsift.toml"
    config.write_text('[direction]\naccepted_domains = ["customer.test"]\n'
                      'internal_networks = ["10.0.0.0/8"]\n')
    return rules, eml, config


def test_list(files: tuple[Path, Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    rules, _, config = files
    assert main(["mailflow", "list", "--rules", str(rules), "--config", str(config),
                 "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in rows] == ["tag-external", "watch-invoices"]
    assert rows[1]["then"] == {"quarantine": True}


def test_test_shows_what_each_rule_did(files: tuple[Path, Path, Path],
                                       capsys: pytest.CaptureFixture[str]) -> None:
    rules, eml, config = files
    assert main(["mailflow", "test", str(rules), str(eml), "--config", str(config),
                 "--offline", "--rcpt", "bob@customer.test", "--client-ip",
                 "198.51.100.7"]) == 0
    out = capsys.readouterr().out
    assert "direction: inbound" in out
    assert "rule tag-external: did: prepend subject '[EXTERNAL] '" in out
    assert "rule watch-invoices: would have (test): quarantine" in out
    assert "bob@customer.test: deliver" in out
    assert "subject:   [EXTERNAL] Invoice 42" in out


def test_a_bad_rule_file_is_refused_with_file_and_line(
        files: tuple[Path, Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    rules, eml, config = files
    rules.write_text(RULES.replace("subject_words", "subject_wrds"))
    assert main(["mailflow", "test", str(rules), str(eml), "--config", str(config),
                 "--offline"]) == 2
    assert f"{rules}:14: rules.if.subject_wrds: unknown field" in capsys.readouterr().err


def test_stage_then_the_rollout_commands(files: tuple[Path, Path, Path], tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    rules, _, config = files
    config.write_text(config.read_text() + f'[store]\ndata_dir = "{tmp_path / "data"}"\n')
    assert main(["mailflow", "stage", "--rules", str(rules), "--config", str(config),
                 "--json"]) == 0
    staged = json.loads(capsys.readouterr().out)
    assert staged["artifact"] == "mailflow:rules" and staged["state"] == "shadow"
    assert main(["mailflow", "stage", "--rules", str(rules), "--config", str(config)]) == 2
    assert "already staged" in capsys.readouterr().err
    assert main(["rollout", "status", "--config", str(config), "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    (dep,) = [d for d in status["deployments"] if d["artifact"] == "mailflow:rules"]
    assert dep["version"] == staged["version"] and dep["state"] == "shadow"
