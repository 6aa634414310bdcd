"""Every ``mailsift`` command shown in README.md, docs/ and the systemd unit parses with the real
command-line parser, so an example cannot rot (issue 19: the README's ``--since -1d`` failed
with "expected one argument").

Examples are taken from shell code blocks (a line starting with ``mailsift``, ``.venv/bin/
mailsift`` or ``/opt/mailsift/bin/mailsift``, continuation lines joined, ``# comments`` dropped)
and from inline code spans starting with ``mailsift``. Synopses are expanded the way a reader
reads them: ``a|b`` is each alternative, ``[--opt X]`` is with and without it, ``...`` is some
value, an upper-case placeholder given where a number is expected is a number. The ``scan`` and
``config`` examples whose files exist are also run (offline).
"""

from __future__ import annotations

import contextlib
import io
import itertools
import re
import shlex
from pathlib import Path

import pytest

from mailsift.interfaces.cli.main import main, parse_command

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
UNIT = ROOT / "contrib" / "systemd" / "mailsift.service"

_PROMPT = re.compile(r"^(?:\$ )?(?:[A-Z_]+=\S+ )*(?:\S*/)?mailsift(?= |$)")
_SPAN = re.compile(r"(?<!`)`((?:[A-Z_]+=\S+ )*mailsift [^`]+)`(?!`)")
_FENCE = re.compile(r"^```(\w*)\s*$")


def _blocks(text: str) -> list[str]:
    out: list[str] = []
    lang: str | None = None
    pending = ""
    for line in text.splitlines():
        fence = _FENCE.match(line.strip())
        if fence:
            lang = None if lang is not None else fence.group(1)
            continue
        if lang not in ("sh", "bash", "console", "shell", ""):
            continue
        line = pending + line.strip()
        pending = ""
        if line.endswith("\\"):
            pending = line[:-1] + " "
            continue
        if _PROMPT.match(line):
            out.append(line)
    return out


def _spans(text: str) -> list[str]:
    found = []
    in_fence = False
    for line in text.splitlines():
        if _FENCE.match(line.strip()):
            in_fence = not in_fence
            continue
        if not in_fence:
            found.extend(m.group(1) for m in _SPAN.finditer(line))
    return found


def examples() -> list[tuple[str, str, bool]]:
    """(where, command line, whether it is a whole example) for every example. An inline span
    may name a command without its arguments ("`mailsift rollout stage` writes..."): such a
    reference must name a command that exists, and is parsed as ``... --help``."""
    out = []
    for path in DOCS:
        text = path.read_text(encoding="utf-8")
        where = str(path.relative_to(ROOT))
        out += [(where, cmd, True) for cmd in _blocks(text)]
        out += [(where, cmd, False) for cmd in _spans(text)]
    for line in UNIT.read_text(encoding="utf-8").splitlines():
        if line.startswith("ExecStart="):
            out.append((str(UNIT.relative_to(ROOT)), line.removeprefix("ExecStart="), True))
    return out


def _words(command: str) -> list[str]:
    """The arguments after ``mailsift`` (prompt, environment and comment dropped)."""
    command = command.replace("\\|", "|")
    words = shlex.split(command, comments=True)
    while words and not re.fullmatch(r"(?:\S*/)?mailsift", words[0]):
        words.pop(0)  # "$", VAR=value
    return words[1:]


def variants(words: list[str]) -> list[list[str]]:
    """A synopsis read as a reader reads it (see the module docstring)."""
    # optional groups: [--opt X] may span several words
    groups: list[list[list[str]]] = []
    i = 0
    while i < len(words):
        w = words[i]
        if w.startswith("[") and "]" not in w[1:-1]:
            j = i
            while not words[j].endswith("]"):
                j += 1
            inner = " ".join(words[i:j + 1])[1:-1].split()
            groups.append([[], inner])
            i = j + 1
        else:
            groups.append([[w]])
            i += 1
    out = []
    for choice in itertools.islice(itertools.product(*groups), 16):
        flat = [w for part in choice for w in part]
        alternatives = [w.split("|") if "|" in w and not w.startswith("-") else
                        [w.split("|")[0]] if "|" in w else [w] for w in flat]
        for combo in itertools.islice(itertools.product(*alternatives), 16):
            out.append(["X" if w in ("...", "…") else w for w in combo])
    return out


def _parse(words: list[str]) -> tuple[int, str]:
    """(exit status, stderr) of parsing; 0 when it parsed."""
    for _ in range(4):
        err = io.StringIO()
        try:
            with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
                parse_command(words)
            return 0, ""
        except SystemExit as exc:
            text = err.getvalue()
            bad = re.search(r"invalid (?:int|float) value: '([^']+)'", text)
            if bad and re.fullmatch(r"[A-Z][A-Z0-9_-]*", bad.group(1)):
                words = ["1" if w == bad.group(1) else w for w in words]
                continue  # a placeholder where a number goes
            return int(exc.code or 0), text
    return 2, "too many placeholders"


FOUND = examples()
ALL = [(w, c) for w, c, _ in FOUND]
WHOLE = {(w, c) for w, c, whole in FOUND if whole}


def test_the_examples_are_found() -> None:
    where = {w for w, _ in ALL}
    assert len(ALL) > 60 and {"README.md", "docs/gateway.md", "docs/store.md"} <= where
    assert any("--since -1d" in cmd for _, cmd in ALL)  # the one that failed
    assert any(w.endswith(".service") for w, _ in ALL)


@pytest.mark.parametrize(("where", "command"), ALL, ids=[f"{w}:{c[:60]}" for w, c in ALL])
def test_every_documented_command_parses(where: str, command: str) -> None:
    words = _words(command)
    if not words:
        pytest.skip("the bare program name")
    for variant in variants(words):
        code, err = _parse(variant)
        if code and (where, command) not in WHOLE and "arguments are required" in err:
            code, err = _parse([*variant, "--help"])  # a reference to the command
        assert code == 0, f"{where}: `{command}` as {variant}:\n{err}"


def _paths(words: list[str]) -> list[str]:
    return [a for a in words[1:] if not a.startswith("-")]


RUNNABLE = [(w, c) for w, c in sorted(WHOLE) if (ws := _words(c)) and (
    (ws[0] == "scan" and _paths(ws) and all((ROOT / a).exists() for a in _paths(ws)))
    or (ws[0] == "config" and "--config" not in ws))]


@pytest.mark.parametrize(("where", "command"), RUNNABLE,
                         ids=[f"{w}:{c[:60]}" for w, c in RUNNABLE])
def test_scan_and_config_examples_run(where: str, command: str,
                                      monkeypatch: pytest.MonkeyPatch,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("MAILSIFT_SCAN__OFFLINE", "true")  # no live DNS in tests
    code = main(_words(command))
    out = capsys.readouterr()
    assert code == 0, f"{where}: `{command}`\n{out.err}"
    assert "Traceback" not in out.err


def test_runnable_examples_exist() -> None:
    assert any(_words(c)[0] == "scan" for _, c in RUNNABLE)
    assert any(_words(c)[0] == "config" for _, c in RUNNABLE)
