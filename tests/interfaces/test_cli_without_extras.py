"""The CLI as ``pip install mailsift`` (no extras) or ``mailsift[ml]`` (no ``[server]``) gets it.

Each test runs a fresh interpreter in which a meta path finder refuses the optional packages,
as if they were not installed (building a venv per test would take minutes), then runs
``mailsift.interfaces.cli.main.main``. Issue 19: ``--help`` and ``scan`` crashed on numpy or
SQLAlchemy; the ML detector, on by default, must then be left out *and say so*, and naming it
explicitly in ``[detectors] enabled`` must fail startup naming the extra.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SAMPLE = Path(__file__).resolve().parents[2] / "samples" / "clean-personal.eml"
#: what the [ml] extra installs, and what [server] adds that the CLI could trip on
NO_EXTRAS = ("numpy", "scipy", "sklearn", "matplotlib", "sqlalchemy", "alembic", "fastapi",
             "aiosmtpd", "dnslib")
ML_ONLY = ("sqlalchemy", "alembic", "fastapi", "aiosmtpd")

_SCRIPT = """
import sys
BLOCKED = set(sys.argv[1].split(","))

class Blocker:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, Blocker())
if sys.argv[2] == "--python":
    exec(sys.argv[3])
    sys.exit(0)
from mailsift.interfaces.cli.main import main
try:
    code = main(sys.argv[2:])
finally:
    leaked = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED)
    assert not leaked, leaked
sys.exit(code)
"""


def _run(blocked: tuple[str, ...], *args: str,
         cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", _SCRIPT, ",".join(blocked), *args],
                          capture_output=True, text=True, timeout=120, cwd=cwd)


def test_help_works_without_any_extra() -> None:
    for blocked in (NO_EXTRAS, ML_ONLY):
        got = _run(blocked, "--help")
        assert got.returncode == 0, got.stderr
        assert "scan" in got.stdout and "serve" in got.stdout
        assert "Traceback" not in got.stderr


def test_scan_without_ml_extra_leaves_ml_out_and_says_so(tmp_path: Path) -> None:
    got = _run(NO_EXTRAS, "scan", str(SAMPLE), "--offline", "--format", "json", cwd=tmp_path)
    assert got.returncode == 0, got.stderr
    result = json.loads(got.stdout)
    assert result["category"] == "clean"
    assert "detector 'ml' is off" in got.stderr
    assert "mailsift[ml]" in got.stderr
    assert "Traceback" not in got.stderr


def test_config_check_and_explain_without_ml_extra_say_ml_is_off(tmp_path: Path) -> None:
    for action in ("check", "explain"):
        got = _run(NO_EXTRAS, "config", action, cwd=tmp_path)
        assert got.returncode == 0, got.stderr
        assert "note: detector 'ml' is off" in got.stdout and "mailsift[ml]" in got.stdout


def test_ml_named_explicitly_without_its_extra_fails_startup_naming_the_extra(
        tmp_path: Path) -> None:
    cfg = tmp_path / "mailsift.toml"
    cfg.write_text('[detectors]\nenabled = ["parse", "rules", "ml"]\n', encoding="utf-8")
    got = _run(NO_EXTRAS, "scan", str(SAMPLE), "--offline", "--config", str(cfg), cwd=tmp_path)
    assert got.returncode == 2, (got.stdout, got.stderr)
    assert "mailsift: error:" in got.stderr and "mailsift[ml]" in got.stderr
    assert "Traceback" not in got.stderr
    got = _run(NO_EXTRAS, "config", "check", "--config", str(cfg), cwd=tmp_path)
    assert got.returncode == 2 and "mailsift[ml]" in got.stderr


def test_scan_with_ml_but_no_server_extra_runs_the_model(tmp_path: Path) -> None:
    got = _run(ML_ONLY, "scan", str(SAMPLE), "--offline", "--format", "json", cwd=tmp_path)
    assert got.returncode == 0, got.stderr
    json.loads(got.stdout)
    assert "is off" not in got.stderr


def test_importing_mailsift_ml_does_not_import_numpy() -> None:
    code = ("import mailsift.ml, mailsift.ml.corpus\n"
            "assert 'numpy' not in sys.modules\n"
            "try:\n    mailsift.ml.LinearModel\nexcept ModuleNotFoundError as e:\n"
            "    assert e.name == 'numpy'\nelse:\n    raise AssertionError('numpy imported')\n")
    got = _run(NO_EXTRAS, "--python", code)
    assert got.returncode == 0, got.stderr


def test_testing_dns_without_dnslib_names_the_dev_extra() -> None:
    code = ("from mailsift.testing.dns import DnsServer\n"
            "try:\n    DnsServer({})\nexcept ImportError as e:\n"
            "    assert \"mailsift[dev]\" in str(e), e\nelse:\n    raise AssertionError\n")
    got = _run(NO_EXTRAS, "--python", code)
    assert got.returncode == 0, got.stderr
