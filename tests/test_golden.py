"""The golden corpus: every `.eml` under tests/corpus/ (and the shipped samples/) is scanned
offline with the default settings and checked against its sidecar `NAME.expect.toml`:

    codes = ["RULE_A", "URL_IP_LITERAL"]   # must be among the findings
    absent = ["ML_PHISH"]                  # must not be
    category = "phish"                     # optional: the final category
    action = "quarantine"                  # optional: the message-level action
    max_action = "junk"                    # optional: the action may be at most this strict
    promoted_category = "phish"            # optional: the verdict once the pack's shadow
    promoted_action = "quarantine"         #   rules are promoted (its shadow verdict)
    [envelope]                             # optional
    client_ip = "192.0.2.1"
    mail_from = "a@example.org"
    rcpt_to = ["b@example.net"]
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from mailsift.config import load_settings
from mailsift.core.envelope import Connection, Envelope
from mailsift.core.verdict import Action
from mailsift.pipeline import Pipeline
from mailsift.pipeline.build import ScanOptions, build_pipeline

ROOT = Path(__file__).resolve().parent.parent
CASES = sorted([*(ROOT / "tests" / "corpus").rglob("*.eml"), *(ROOT / "samples").glob("*.eml")])


@pytest.fixture(scope="module")
def pipeline() -> Pipeline:
    settings = load_settings(environ={}, use_default_paths=False).settings
    return build_pipeline(settings, ScanOptions(offline=True))


def _expectation(path: Path) -> dict[str, object]:
    sidecar = path.with_suffix(".expect.toml")
    if not sidecar.is_file():
        pytest.fail(f"{path.relative_to(ROOT)} has no {sidecar.name}")
    return tomllib.loads(sidecar.read_text())


@pytest.mark.parametrize("path", CASES, ids=lambda p: str(p.relative_to(ROOT)))
def test_golden_case(path: Path, pipeline: Pipeline) -> None:
    expect = _expectation(path)
    env_spec = expect.get("envelope", {})
    assert isinstance(env_spec, dict)
    envelope = Envelope(
        mail_from=env_spec.get("mail_from"),
        rcpt_to=tuple(env_spec.get("rcpt_to", ())),
        connection=Connection(client_ip=env_spec.get("client_ip"), helo=env_spec.get("helo")),
    )
    result = pipeline.scan(path.read_bytes(), envelope, message_id=path.name)
    codes = {f.code for f in result.findings}
    missing = set(expect.get("codes", [])) - codes  # type: ignore[arg-type]
    unexpected = set(expect.get("absent", [])) & codes  # type: ignore[arg-type]
    assert not missing, f"missing {sorted(missing)}; got {sorted(codes)}"
    assert not unexpected, f"unexpected {sorted(unexpected)}"
    if "category" in expect:
        assert result.verdict.category.value == expect["category"], result.verdict.explanation
    if "action" in expect:
        assert result.verdict.action.value == expect["action"], result.verdict.explanation
    if "promoted_category" in expect or "promoted_action" in expect:
        (promoted,) = [v for k, v in result.shadow.items() if k.startswith("rules:default@")]
        if "promoted_category" in expect:
            assert promoted.category.value == expect["promoted_category"], promoted.explanation
        if "promoted_action" in expect:
            assert promoted.action.value == expect["promoted_action"], promoted.explanation
    if "max_action" in expect:
        limit = Action(str(expect["max_action"]))
        assert result.verdict.action.strictness <= limit.strictness, result.verdict.explanation


def test_golden_corpus_is_not_empty() -> None:
    assert len(CASES) >= 5
