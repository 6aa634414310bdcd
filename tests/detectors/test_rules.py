"""Rules detector: the Detector contract, build() from settings, overrides and versions."""

from __future__ import annotations

from email.message import EmailMessage
from pathlib import Path

import pytest

from mailsift.config.schema import RuleSettings, Settings
from mailsift.core.context import ScanContext
from mailsift.core.errors import ConfigError, RuleError
from mailsift.core.findings import ArtifactState, Stage
from mailsift.detectors.base import Detector, Services
from mailsift.detectors.rules import RulesDetector, build
from mailsift.parsing import parse_message

GTUBE = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"
LOCAL_PACK = '''[pack]
name = "site"
description = "local rules"

[[rule]]
id = "SITE_PROJECT_X"
description = "Mentions the confidential project name"
category = "spam"
weight = 3.0
body = "/project\\\\s+x-?ray/i"
'''


def ctx(text: str) -> ScanContext:
    msg = EmailMessage()
    msg["From"] = "a@example.org"
    msg["To"] = "b@example.net"
    msg["Subject"] = "hello"
    msg["Date"] = "Thu, 01 Jan 2026 00:00:00 +0000"
    msg["Message-ID"] = "<1@example.org>"
    msg.set_content(text)
    return ScanContext(parse_message(msg.as_bytes()))


def detector(**rules: object) -> RulesDetector:
    return build(Settings(rules=RuleSettings(**rules)), Services())  # type: ignore[arg-type]


def test_detector_contract() -> None:
    det = detector()
    assert isinstance(det, Detector)
    assert det.name == "rules" and det.stage is Stage.CONTENT
    assert "GTUBE" in det.codes and not any(code.startswith("__") for code in det.codes)
    (version,) = det.versions().values()
    assert list(det.versions()) == ["rules:default"] and len(version) == 12


def test_gtube_finding() -> None:
    det = detector()
    (finding,) = det.run(ctx(f"test message\n{GTUBE}\n"))
    assert finding.code == "GTUBE" and finding.category == "spam" and finding.weight == 20.0
    assert finding.detector == "rules" and finding.artifact == "rules:default"
    assert finding.version == det.versions()["rules:default"]
    assert finding.state is ArtifactState.ACTIVE and "GTUBE" in finding.description
    assert finding.evidence == (GTUBE,)
    assert det.describe("GTUBE") is not None


def test_clean_message_has_no_findings() -> None:
    assert detector().run(ctx("Lunch tomorrow at noon?")) == []


def test_local_pack_is_loaded_after_builtin(tmp_path: Path) -> None:
    path = tmp_path / "site.toml"
    path.write_text(LOCAL_PACK, encoding="utf-8")
    det = detector(paths=(str(path),))
    assert set(det.versions()) == {"rules:default", "rules:site"}
    (finding,) = det.run(ctx("news about Project X-Ray"))
    assert finding.code == "SITE_PROJECT_X" and finding.artifact == "rules:site"
    assert finding.state is ArtifactState.SHADOW  # born in shadow: recorded, never acts
    assert not finding.acts


def test_builtin_can_be_switched_off(tmp_path: Path) -> None:
    path = tmp_path / "site.toml"
    path.write_text(LOCAL_PACK, encoding="utf-8")
    det = detector(builtin=False, paths=(str(path),))
    assert det.codes == frozenset({"SITE_PROJECT_X"})


def test_disabled_and_weight_overrides() -> None:
    det = detector(disabled=("GTUBE",), weights={"PHARMACY_DRUGS": 0.5})
    assert "GTUBE" not in det.codes
    assert det.run(ctx(GTUBE)) == []
    (finding,) = det.run(ctx("cheap viagra"))
    assert finding.code == "PHARMACY_DRUGS" and finding.weight == 0.5
    assert "rules:overrides" in det.versions()


def test_bad_config_fails_startup(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="NO_SUCH_RULE"):
        detector(disabled=("NO_SUCH_RULE",))
    bad = tmp_path / "bad.toml"
    bad.write_text('[pack]\nname = "bad"\n\n[[rule]]\nid = "X_BAD"\ndescription = "d"\n'
                   'body = "/(/"\n', encoding="utf-8")
    with pytest.raises(RuleError) as info:
        detector(paths=(str(bad),))
    assert info.value.line == 5 and str(bad) in str(info.value)
