"""The example third-party detector (examples/mailsift-example-detector), installed for real.

pip installs the package into a temporary folder (from a copy, so the build leaves nothing in
the repository); ``mailsift`` then runs in a subprocess with that folder on its path, finds the
detector through its entry point, validates its ``[shouting]`` section and shows its finding.
Nothing under src/mailsift knows the detector.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "mailsift-example-detector"

SHOUTING = (b"From: Deals <deals@offers.example>\r\nTo: you@example.org\r\n"
            b"Subject: FINAL NOTICE: CLAIM YOUR REWARD NOW\r\nMessage-ID: <s1@offers.example>\r\n"
            b"\r\nHello.\r\n")
QUIET = SHOUTING.replace(b"FINAL NOTICE: CLAIM YOUR REWARD NOW", b"Minutes of Tuesday's meeting")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("plugin")
    source = work / "src"
    shutil.copytree(EXAMPLE, source)
    target = work / "site"
    # Built in pip's isolated environment (setuptools from the configured index), as a user
    # installs it; --no-deps: mailsift itself is the one under test, already importable.
    done = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps",
                           "--target", str(target), str(source)],
                          capture_output=True, text=True, timeout=500)
    assert done.returncode == 0, done.stderr
    return target


def _mailsift(site: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(site)}
    env.pop("MAILSIFT_CONFIG", None)
    return subprocess.run([sys.executable, "-m", "mailsift.interfaces.cli.main", *args],
                          capture_output=True, text=True, env=env, cwd=cwd, timeout=300)


def _codes(result: subprocess.CompletedProcess[str]) -> dict[str, dict[str, object]]:
    assert result.returncode == 0, result.stderr
    return {f["code"]: f for f in json.loads(result.stdout)["findings"]}


def test_installed_detector_scans_configures_and_documents(site: Path, tmp_path: Path) -> None:
    (tmp_path / "shout.eml").write_bytes(SHOUTING)
    (tmp_path / "quiet.eml").write_bytes(QUIET)

    found = _codes(_mailsift(site, "scan", "--offline", "--format", "json", "shout.eml",
                             cwd=tmp_path))
    shout = found["SHOUT_SUBJECT"]
    assert shout["detector"] == "shouting" and shout["category"] == "spam"
    assert shout["weight"] == 1.0 and "FINAL NOTICE" in shout["evidence"][0]  # type: ignore[index]
    assert "SHOUT_SUBJECT" not in _codes(_mailsift(
        site, "scan", "--offline", "--format", "json", "quiet.eml", cwd=tmp_path))

    # Its [shouting] section is validated by the model it declares.
    (tmp_path / "heavy.toml").write_text("[shouting]\nweight = 2.5\n")
    found = _codes(_mailsift(site, "scan", "--offline", "--format", "json", "--config",
                             "heavy.toml", "shout.eml", cwd=tmp_path))
    assert found["SHOUT_SUBJECT"]["weight"] == 2.5
    (tmp_path / "typo.toml").write_text("[shouting]\nwieght = 2.5\n")
    bad = _mailsift(site, "scan", "--offline", "--config", "typo.toml", "shout.eml",
                    cwd=tmp_path)
    assert bad.returncode == 2 and "wieght" in bad.stderr

    # Disabled like any built-in detector.
    (tmp_path / "off.toml").write_text("[detectors]\ndisabled = [\"shouting\"]\n")
    assert "SHOUT_SUBJECT" not in _codes(_mailsift(
        site, "scan", "--offline", "--format", "json", "--config", "off.toml", "shout.eml",
        cwd=tmp_path))

    # Its page is generated from the same declaration.
    docs = _mailsift(site, "docs", "detectors", "--dist", "mailsift-example-detector",
                     "--out", str(tmp_path / "docs"), cwd=tmp_path)
    assert docs.returncode == 0, docs.stderr
    page = (tmp_path / "docs" / "shouting.md").read_text()
    assert "| `SHOUT_SUBJECT` | spam | 1 | The subject is written in capitals |" in page
    assert "| `min_letters` | `12` |" in page


def test_installed_detector_reserves_its_prefix_from_rule_packs(site: Path,
                                                                 tmp_path: Path) -> None:
    pack = tmp_path / "pack.toml"
    pack.write_text('[pack]\nname = "local"\ndescription = "x"\n\n[[rule]]\nid = "SHOUT_X"\n'
                    'description = "x"\nbody = "x"\ncategory = "spam"\nweight = 1\n')
    (tmp_path / "rules.toml").write_text(f'[rules]\npaths = ["{pack}"]\n')
    (tmp_path / "m.eml").write_bytes(QUIET)
    result = _mailsift(site, "scan", "--offline", "--config", "rules.toml", "m.eml",
                       cwd=tmp_path)
    assert result.returncode == 2 and "SHOUT_" in result.stderr and "reserved" in result.stderr
