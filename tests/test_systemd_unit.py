"""The systemd unit in contrib/systemd (docs/gateway.md, "Running as a service"): its own user,
the data directory owned by it, restarted on failure, the config in /etc/mailsift, and a unit
file systemd itself accepts (``systemd-analyze verify``, where it is installed)."""

from __future__ import annotations

import configparser
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mailsift.config.loader import DEFAULT_PATHS
from mailsift.interfaces.cli.main import parse_command

UNIT = Path(__file__).resolve().parent.parent / "contrib" / "systemd" / "mailsift.service"


def _unit() -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(UNIT.read_text(encoding="utf-8"))
    return parser


def test_the_unit_runs_serve_as_its_own_user_and_restarts_on_failure() -> None:
    service = _unit()["Service"]
    assert service["User"] == service["Group"] == "mailsift"
    assert service["Restart"] == "on-failure"
    assert service["StateDirectory"] == "mailsift"  # /var/lib/mailsift, owned by the user
    assert "/var/lib/mailsift" in service["ReadWritePaths"]
    words = shlex.split(service["ExecStart"])
    assert Path(words[0]).name == "mailsift"
    args = parse_command(words[1:])
    assert args.command == "serve"
    # the standard place, the same the loader falls back to without --config
    assert Path(args.config) in DEFAULT_PATHS and Path(args.config).is_absolute()
    assert _unit()["Install"]["WantedBy"] == "multi-user.target"


@pytest.mark.skipif(shutil.which("systemd-analyze") is None,
                    reason="systemd-analyze is not installed")
def test_systemd_accepts_the_unit(tmp_path: Path) -> None:
    # verify wants ExecStart's program to exist: point it at this environment's mailsift
    exe = Path(sys.executable).with_name("mailsift")
    text = UNIT.read_text(encoding="utf-8").replace("/opt/mailsift/bin/mailsift", str(exe))
    unit = tmp_path / "mailsift.service"
    unit.write_text(text, encoding="utf-8")
    got = subprocess.run(["systemd-analyze", "verify", "--man=no", str(unit)],
                         capture_output=True, text=True, timeout=120)
    assert got.returncode == 0, got.stderr
    # unknown keys are only warned about: any complaint about our unit is a failure
    assert str(unit) not in got.stderr, got.stderr
