"""The CLI as ``pip install mailsift`` (no extras) or ``mailsift[ml]`` (no ``[server]``) gets it.

Each test runs a fresh interpreter in which a meta path finder refuses the optional packages,
as if they were not installed (building a venv per test would take minutes; `.ci/wheel-check`
does that with the built wheel), then runs ``mailsift.interfaces.cli.main.main``. Issue 19:
``--help`` and ``scan`` crashed on numpy or SQLAlchemy; numpy is now a core dependency so the
shipped model scores on a plain install; a command whose extra is missing says so in one line;
Office macro scanning, on by default, is left out *and says so* without ``[attachments]``, and
asking for it explicitly fails startup naming the extra.
"""

from __future__ import annotations

import json
import subprocess
import sys
from email.message import EmailMessage
from pathlib import Path

import pytest

# a fresh interpreter per test: out of `make test-fast`
pytestmark = pytest.mark.slow

SAMPLE = Path(__file__).resolve().parents[2] / "samples" / "clean-personal.eml"
#: what the extras install that the CLI could trip on (numpy is a core dependency)
NO_EXTRAS = ("scipy", "sklearn", "matplotlib", "sqlalchemy", "alembic", "fastapi", "uvicorn",
             "aiosmtpd", "aiosmtplib", "dnslib", "oletools", "psycopg", "redis")
ML_ONLY = ("sqlalchemy", "alembic", "fastapi", "aiosmtpd", "oletools")

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


def test_scan_without_extras_scores_with_the_shipped_model(tmp_path: Path) -> None:
    got = _run(NO_EXTRAS, "scan", str(SAMPLE), "--offline", "--format", "json", cwd=tmp_path)
    assert got.returncode == 0, got.stderr
    result = json.loads(got.stdout)
    assert result["category"] == "clean"
    assert any(k.startswith("model:") for k in result["versions"]), result["versions"]
    assert "Traceback" not in got.stderr
    # macro scanning is on by default: without its extra it is off, and says so
    assert "Office macro scanning (attachments detector) is off" in got.stderr
    assert "mailsift[attachments]" in got.stderr


def test_office_file_without_oletools_is_marked_unscannable_naming_the_extra(
        tmp_path: Path) -> None:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "a@example.org", "b@example.net", "figures"
    msg.set_content("see attached")
    ole = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 600
    msg.add_attachment(ole, maintype="application", subtype="vnd.ms-excel",
                       filename="figures.xls")
    eml = tmp_path / "office.eml"
    eml.write_bytes(msg.as_bytes())
    got = _run(NO_EXTRAS, "scan", str(eml), "--offline", "--format", "json", cwd=tmp_path)
    assert got.returncode == 0, got.stderr
    found = [f for f in json.loads(got.stdout)["findings"] if f["code"] == "ATT_UNSCANNABLE"]
    assert found and "mailsift[attachments]" in found[0]["evidence"][0], found


def test_config_check_and_explain_without_extras_say_macro_scanning_is_off(
        tmp_path: Path) -> None:
    for action in ("check", "explain"):
        got = _run(NO_EXTRAS, "config", action, cwd=tmp_path)
        assert got.returncode == 0, got.stderr
        assert "note: Office macro scanning" in got.stdout
        assert "mailsift[attachments]" in got.stdout


def test_macro_scanning_asked_for_without_its_extra_fails_startup_naming_the_extra(
        tmp_path: Path) -> None:
    cfg = tmp_path / "mailsift.toml"
    cfg.write_text('[attachments]\nmacro_extensions = ["doc", "xls"]\n', encoding="utf-8")
    got = _run(NO_EXTRAS, "scan", str(SAMPLE), "--offline", "--config", str(cfg), cwd=tmp_path)
    assert got.returncode == 2, (got.stdout, got.stderr)
    assert "mailsift: error:" in got.stderr and "mailsift[attachments]" in got.stderr
    assert "Traceback" not in got.stderr
    got = _run(NO_EXTRAS, "config", "check", "--config", str(cfg), cwd=tmp_path)
    assert got.returncode == 2 and "mailsift[attachments]" in got.stderr
    # turning it off explicitly is the other way out, and then nothing is said
    cfg.write_text("[attachments]\nmacro_extensions = []\n", encoding="utf-8")
    got = _run(NO_EXTRAS, "config", "check", "--config", str(cfg), cwd=tmp_path)
    assert got.returncode == 0 and "note:" not in got.stdout, got.stdout


def test_a_command_whose_extra_is_missing_says_so_in_one_line(tmp_path: Path) -> None:
    for words, extra in ((("serve",), "server"), (("trace", "--count"), "server"),
                         (("quarantine", "list"), "server"), (("train",), "ml")):
        got = _run(NO_EXTRAS, *words, cwd=tmp_path)
        assert got.returncode == 2, (words, got.stderr)
        assert "Traceback" not in got.stderr, got.stderr
        lines = got.stderr.strip().splitlines()
        assert f"pip install 'mailsift[{extra}]'" in lines[-1], got.stderr


def test_scan_with_ml_but_no_server_extra_runs_the_model(tmp_path: Path) -> None:
    got = _run(ML_ONLY, "scan", str(SAMPLE), "--offline", "--format", "json", cwd=tmp_path)
    assert got.returncode == 0, got.stderr
    json.loads(got.stdout)
    assert "Traceback" not in got.stderr


def test_importing_mailsift_ml_does_not_import_numpy() -> None:
    # numpy is installed everywhere now, but commands that never score (config, --help) should
    # not pay for importing it
    code = ("import mailsift.ml, mailsift.ml.corpus\n"
            "assert 'numpy' not in sys.modules\n"
            "mailsift.ml.LinearModel\n"
            "assert 'numpy' in sys.modules\n")
    got = _run(NO_EXTRAS, "--python", code)
    assert got.returncode == 0, got.stderr


def test_testing_dns_without_dnslib_names_the_test_extra() -> None:
    code = ("from mailsift.testing.dns import DnsServer\n"
            "try:\n    DnsServer({})\nexcept ImportError as e:\n"
            "    assert \"mailsift[test]\" in str(e), e\nelse:\n    raise AssertionError\n")
    got = _run(NO_EXTRAS, "--python", code)
    assert got.returncode == 0, got.stderr


def test_every_package_of_the_runtime_extras_names_its_extra() -> None:
    """``EXTRA_OF_MODULE`` turns a ModuleNotFoundError into "install mailsift[extra]": each
    package a runtime extra installs must be in it (checked for what is installed here)."""
    import importlib.metadata
    import re
    import tomllib

    from mailsift.interfaces.cli.main import EXTRA_OF_MODULE

    with (Path(__file__).resolve().parents[2] / "pyproject.toml").open("rb") as fh:
        extras = tomllib.load(fh)["project"]["optional-dependencies"]
    modules_of: dict[str, set[str]] = {}
    for module, dists in importlib.metadata.packages_distributions().items():
        for dist in dists:
            modules_of.setdefault(re.sub(r"[-_.]+", "-", dist).lower(), set()).add(module)
    checked = 0
    for extra in ("server", "postgres", "redis", "milter", "attachments", "ml"):
        for requirement in extras[extra]:
            dist = re.sub(r"[-_.]+", "-", re.split(r"[\[<>=;! ]", requirement)[0]).lower()
            modules = modules_of.get(dist, set()) - {"_cffi_backend"}
            if not modules:
                continue  # not installed in this environment
            named = {m for m in modules if EXTRA_OF_MODULE.get(m) == extra}
            assert named, f"{dist} ({sorted(modules)}) of [{extra}] is not in EXTRA_OF_MODULE"
            checked += 1
    assert checked >= 10
