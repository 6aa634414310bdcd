"""The `mailsift scan` command-line contract (issue 2, item 7)."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path

import pytest

from mailsift.interfaces.cli.main import main
from mailsift.testing.messages import make_message

pytestmark = pytest.mark.slow  # most tests start `mailsift scan` processes (~1.5 s CPU each)


def run_cli(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "mailsift", *args], input=stdin,
                          capture_output=True, timeout=120)


@pytest.fixture()
def mbox(tmp_path: Path) -> Path:
    parts = []
    for i in range(40):
        subject = "Verify your account now" if i % 5 == 0 else f"Meeting notes {i}"
        parts.append(b"From x@example.org Fri Nov 20 09:30:00 2026\n"
                     + make_message(subject=subject, message_id=f"<m{i}@example.org>") + b"\n")
    path = tmp_path / "box.mbox.gz"
    path.write_bytes(gzip.compress(b"".join(parts)))
    return path


REQUIRED = {"id", "category", "action", "score", "decided_by", "findings", "versions",
            "elapsed_ms"}


def test_json_for_one_message_has_the_contract_fields(samples_dir: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["scan", str(samples_dir / "clean-personal.eml"), "--format", "json",
                 "--offline"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out.keys() >= REQUIRED
    assert out["category"] == "clean" and out["action"] == "deliver"
    assert out["auth"]["offline"] is True


def test_jsonl_ids_are_mbox_indexes_and_workers_agree(mbox: Path) -> None:
    one = run_cli("scan", str(mbox), "--format", "jsonl", "--offline")
    two = run_cli("scan", str(mbox), "--format", "jsonl", "--offline", "--workers", "2")
    assert one.returncode == 0 and two.returncode == 0, two.stderr
    rows1 = [json.loads(x) for x in one.stdout.splitlines()]
    rows2 = [json.loads(x) for x in two.stdout.splitlines()]
    assert [r["id"] for r in rows1] == [str(i) for i in range(40)]
    strip = [{k: v for k, v in r.items() if k not in ("elapsed_ms",)} for r in rows1]
    strip2 = [{k: v for k, v in r.items() if k not in ("elapsed_ms",)} for r in rows2]
    assert strip == strip2
    for row in rows1:
        assert row.keys() >= REQUIRED
        for finding in row["findings"]:
            assert {"code", "weight", "evidence"} <= finding.keys()


def test_json_array_for_many_and_stdin(mbox: Path) -> None:
    res = run_cli("scan", str(mbox), "--format", "json", "--offline")
    assert len(json.loads(res.stdout)) == 40
    single = run_cli("scan", "-", "--format", "json", "--offline", stdin=make_message())
    assert json.loads(single.stdout)["id"] == "-"


def test_text_explains_findings_and_decision(samples_dir: Path) -> None:
    res = run_cli("scan", str(samples_dir / "phish-credential.eml"), "--offline")
    text = res.stdout.decode()
    assert res.returncode == 0
    for expected in ("Verdict:", "Why:", "Findings:", "evidence:", "decided by step",
                     "Versions:", "authentication"):
        assert expected.lower() in text.lower()


def test_envelope_flags_reach_the_result(samples_dir: Path) -> None:
    res = run_cli("scan", str(samples_dir / "clean-personal.eml"), "--format", "json",
                  "--offline", "--client-ip", "192.0.2.10", "--helo", "mx.example.org",
                  "--mail-from", "maria.keller@example.org", "--rcpt", "tom@example.net",
                  "ann@example.net")
    out = json.loads(res.stdout)
    assert out["envelope"] == {"client_ip": "192.0.2.10", "helo": "mx.example.org",
                               "mail_from": "maria.keller@example.org",
                               "rcpt_to": ["tom@example.net", "ann@example.net"]}
    assert set(out["recipients"]) == {"tom@example.net", "ann@example.net"}


@pytest.mark.parametrize("args, message", [
    (["scan", "/nonexistent/x.eml"], "no such file"),
    (["scan", "samples", "--dns", "nope"], "HOST:PORT"),
    (["scan", "samples", "--client-ip", "999.1.1.1"], "not an IP"),
    (["scan", "samples", "--workers", "0"], "at least 1"),
])
def test_bad_usage_exits_2_with_a_clear_message(args: list[str], message: str) -> None:
    res = run_cli(*args)
    assert res.returncode == 2
    assert message in res.stderr.decode()
    assert b"Traceback" not in res.stderr


def test_unknown_format_is_usage_error() -> None:
    res = run_cli("scan", "x.eml", "--format", "xml")
    assert res.returncode == 2


def test_config_check_dump_explain(tmp_path: Path) -> None:
    cfg = tmp_path / "mailsift.toml"
    cfg.write_text("[policy]\npreset = \"strict\"\n")
    ok = run_cli("config", "check", "--config", str(cfg))
    assert ok.returncode == 0 and b"config: OK" in ok.stdout
    dump = run_cli("config", "dump", "--config", str(cfg), "--format", "json")
    assert json.loads(dump.stdout)["policy"]["preset"] == "strict"
    toml_dump = run_cli("config", "dump", "--config", str(cfg))
    import tomllib

    assert tomllib.loads(toml_dump.stdout.decode())["policy"]["preset"] == "strict"
    explain = run_cli("config", "explain", "--config", str(cfg)).stdout.decode()
    assert f"# {cfg}" in next(line for line in explain.splitlines()
                              if line.startswith("policy.preset"))
    cfg.write_text("[policy]\npreset = 3\n")
    bad = run_cli("config", "check", "--config", str(cfg))
    assert bad.returncode == 1 and b"INVALID" in bad.stderr


def test_every_command_is_mapped_to_the_module_that_registers_it() -> None:
    import argparse

    from mailsift.interfaces.cli.main import COMMAND_MODULES, COMMANDS, build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    assert set(sub.choices) == set(COMMAND_MODULES)
    assert set(COMMAND_MODULES.values()) == set(COMMANDS)
    for command, module in COMMAND_MODULES.items():  # the lazy path finds each command
        only = build_parser(command)
        sub = next(a for a in only._actions if isinstance(a, argparse._SubParsersAction))
        assert command in sub.choices, (command, module)


def test_top_level_help_lists_what_each_module_registers_without_importing_it() -> None:
    """``mailsift --help`` reads COMMAND_HELP (no command module imported, so it works without
    the extras); the summaries must match what the modules register."""
    import argparse

    from mailsift.interfaces.cli.main import COMMAND_HELP, COMMAND_MODULES, build_parser

    assert set(COMMAND_HELP) == set(COMMAND_MODULES)
    full = build_parser(load_all=True)
    sub = next(a for a in full._actions if isinstance(a, argparse._SubParsersAction))
    registered = {a.dest: a.help for a in sub._choices_actions}
    assert registered == COMMAND_HELP


def test_config_dump_round_trips_as_a_config_file(tmp_path: Path) -> None:
    """The TOML dump is itself a valid config that loads to the same settings (array-of-table
    sections such as [[ml.bands]] included)."""
    from mailsift.config import load_settings

    dumped = run_cli("config", "dump").stdout.decode()
    cfg = tmp_path / "mailsift.toml"
    cfg.write_text(dumped)
    assert load_settings(cfg, environ={}).settings == load_settings(
        environ={}, use_default_paths=False).settings


IDNA_SUBJECT = (b"From: a@example.org\nTo: b@example.net\nSubject: =?idna?q?h=E9llo?=\n"
                b"\nhello\n")


def test_scan_never_abandons_its_input(tmp_path: Path) -> None:
    """Issue 18.2: a hostile message in the middle of a mailbox printed a traceback and the
    rest of the input was never scanned."""
    box = tmp_path / "box.mbox"
    box.write_bytes(b"".join(
        b"From x@example.org Fri Nov 20 09:30:00 2026\n" + raw + b"\n"
        for raw in (make_message(subject="first"), IDNA_SUBJECT, make_message(subject="last"))))
    out = run_cli("scan", str(box), "--format", "jsonl", "--offline")
    assert out.returncode == 0, out.stderr
    rows = [json.loads(x) for x in out.stdout.splitlines()]
    assert [r["id"] for r in rows] == ["0", "1", "2"]
    assert all("category" in r for r in rows)


def test_a_message_that_fails_is_an_error_object_and_the_run_goes_on(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Whatever fails in a scan (here: the pipeline itself, forced) is reported as an error
    object in place of that message; the others are scanned; the exit status says so."""
    from mailsift.pipeline.runner import Pipeline

    real = Pipeline.scan

    def scan(self: Pipeline, raw: bytes, *args: object, **kwargs: object) -> object:
        if b"explode" in raw:
            raise RuntimeError("boom")
        return real(self, raw, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Pipeline, "scan", scan)
    box = tmp_path / "box.mbox"
    box.write_bytes(b"".join(
        b"From x@example.org Fri Nov 20 09:30:00 2026\n" + make_message(subject=s) + b"\n"
        for s in ("first", "explode", "last")))
    assert main(["scan", str(box), "--format", "jsonl", "--offline"]) == 1
    rows = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [r["id"] for r in rows] == ["0", "1", "2"]
    assert rows[1]["error"] == "RuntimeError: boom" and "category" not in rows[1]
    assert "category" in rows[0] and "category" in rows[2]


def test_an_unreadable_file_in_a_folder_does_not_abandon_the_rest(tmp_path: Path) -> None:
    (tmp_path / "a.eml").write_bytes(make_message(subject="first"))
    (tmp_path / "b.mbox.gz").write_bytes(b"not gzip at all")
    (tmp_path / "c.eml").write_bytes(make_message(subject="last"))
    out = run_cli("scan", str(tmp_path), "--format", "jsonl", "--offline")
    rows = [json.loads(x) for x in out.stdout.splitlines()]
    assert [Path(r["id"]).name for r in rows] == ["a.eml", "b.mbox.gz", "c.eml"], out.stderr
    assert "cannot read" in rows[1]["error"] and "category" in rows[2]
    assert out.returncode == 1
