from __future__ import annotations

import time
from collections.abc import Mapping, Sequence

from mailsift.config.schema import PolicySettings
from mailsift.core.auth import AuthResults
from mailsift.core.context import ScanContext
from mailsift.core.envelope import Envelope
from mailsift.core.findings import Finding, Stage
from mailsift.core.message import ParsedMessage
from mailsift.core.verdict import Action, Category, DecisionStep
from mailsift.pipeline import Pipeline
from mailsift.testing.messages import make_message


class Fixed:
    """A detector that reports fixed findings for messages whose subject contains a word."""

    def __init__(self, name: str, word: str, finding: Finding, stage: Stage = Stage.CONTENT,
                 version: str = "") -> None:
        self.name, self.word, self.finding, self.stage = name, word, finding, stage
        self.codes = frozenset({finding.code})
        self.version = version
        self.seen_auth: AuthResults | None = None

    def run(self, ctx: ScanContext) -> Sequence[Finding]:
        self.seen_auth = ctx.auth
        return [self.finding] if self.word in ctx.message.subject else []

    def versions(self) -> Mapping[str, str]:
        return {f"rules:{self.name}": self.version} if self.version else {}


class Broken:
    name, stage, codes = "broken", Stage.CONTENT, frozenset[str]()

    def run(self, ctx: ScanContext) -> Sequence[Finding]:
        raise ValueError("cannot cope")

    def versions(self) -> Mapping[str, str]:
        return {}


class Slow(Broken):
    name = "slow"

    def run(self, ctx: ScanContext) -> Sequence[Finding]:
        time.sleep(5)
        return []


PHISH = Finding("LURE", 7.0, ("wording",), "lure", "phish", artifact="rules:lure", version="abc")


def test_scan_runs_detectors_and_records_versions() -> None:
    det = Fixed("lure", "verify", PHISH, version="abc")
    result = Pipeline([det], PolicySettings()).scan(make_message(subject="please verify"),
                                                    message_id="m1")
    assert result.id == "m1"
    assert result.verdict.category is Category.PHISH
    assert result.findings == (PHISH,)
    assert result.versions["rules:lure"] == "abc"
    assert result.verdict.versions["rules:lure"] == "abc"
    assert "policy" in result.verdict.versions
    assert result.to_dict()["findings"][0]["evidence"] == ["wording"]  # type: ignore[index]


def test_detector_error_is_isolated_and_never_clean() -> None:
    det = Fixed("lure", "verify", PHISH)
    result = Pipeline([Broken(), det], PolicySettings()).scan(make_message(subject="hello"))
    codes = [f.code for f in result.findings]
    assert codes == ["DETECTOR_ERROR"]
    assert result.verdict.action is Action.TAG
    assert result.verdict.decided_by is DecisionStep.DETECTOR_ERROR
    assert "cannot cope" in result.findings[0].evidence[1]


def test_detector_timeout_interrupts_in_main_thread() -> None:
    start = time.monotonic()
    result = Pipeline([Slow()], PolicySettings(on_error="tempfail"), timeout_ms=200).scan(
        make_message())
    assert time.monotonic() - start < 3
    assert [f.code for f in result.findings] == ["DETECTOR_TIMEOUT"]
    assert result.verdict.action is Action.TEMPFAIL


def test_auth_runs_first_and_detectors_see_it() -> None:
    det = Fixed("lure", "x", PHISH)
    calls: list[Envelope] = []

    def authenticate(msg: ParsedMessage, env: Envelope) -> AuthResults:
        calls.append(env)
        return AuthResults(authserv_id="test")

    env = Envelope(mail_from="a@example.org", rcpt_to=("b@example.net",))
    Pipeline([det], PolicySettings(), authenticate=authenticate).scan(make_message(), env)
    assert calls == [env]
    assert det.seen_auth is not None and det.seen_auth.authserv_id == "test"


def test_failing_authenticator_becomes_a_finding() -> None:
    def authenticate(msg: ParsedMessage, env: Envelope) -> AuthResults:
        raise OSError("network unreachable")

    result = Pipeline([], PolicySettings(), authenticate=authenticate).scan(make_message())
    assert [f.code for f in result.findings] == ["DETECTOR_ERROR"]
    assert result.auth is not None and "authentication failed" in result.auth.notes[0]


def test_recipients_get_their_own_verdicts_and_message_takes_the_strictest() -> None:
    from mailsift.config.schema import RecipientPolicy

    policy = PolicySettings(policies=(RecipientPolicy(name="lenient", recipients=("a@x.example",),
                                                      actions={"phish": "junk"}),))
    det = Fixed("lure", "verify", PHISH)
    env = Envelope(rcpt_to=("a@x.example", "b@x.example"))
    result = Pipeline([det], policy).scan(make_message(subject="verify now"), env)
    assert result.recipients["a@x.example"].action is Action.JUNK
    assert result.recipients["b@x.example"].action is Action.QUARANTINE
    assert result.verdict.action is Action.QUARANTINE
