"""An example mailsift detector in one file: subjects written in capitals.

"FINAL NOTICE: YOUR ACCOUNT WILL BE CLOSED" is a spam habit; legitimate mail rarely shouts a
whole subject. The detector declares everything mailsift needs to know about it in ``SPEC``:
its name, stage, code (with weight, family and description) and settings model. mailsift finds
it through the ``mailsift.detectors`` entry point in this package's ``pyproject.toml``, accepts
a ``[shouting]`` section validated by ``ShoutingSettings``, reserves the ``SHOUT_`` prefix from
rule packs and documents it with ``mailsift docs detectors --dist mailsift-example-detector``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from pydantic import BaseModel, ConfigDict, Field

from mailsift.config.schema import Settings
from mailsift.core.context import ScanContext
from mailsift.core.findings import Family, Finding, Stage
from mailsift.detectors.base import Services
from mailsift.detectors.spec import CodeSpec, DetectorSpec

__all__ = ["SPEC", "ShoutingDetector", "ShoutingSettings"]

CODES: Mapping[str, CodeSpec] = {
    "SHOUT_SUBJECT": CodeSpec(1.0, Family.SPAM, "The subject is written in capitals"),
}


class ShoutingSettings(BaseModel):
    """The ``[shouting]`` section."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    min_letters: int = Field(12, ge=1, description="shorter subjects are never judged")
    ratio: float = Field(0.9, gt=0, le=1, description="share of capitals that counts as shouting")
    weight: float = Field(1.0, ge=0, description="weight of SHOUT_SUBJECT")


class ShoutingDetector:
    name = "shouting"
    stage = Stage.CONTENT
    codes = frozenset(CODES)

    def __init__(self, settings: ShoutingSettings) -> None:
        self.settings = settings

    def versions(self) -> Mapping[str, str]:
        return {}

    def run(self, ctx: ScanContext) -> Sequence[Finding]:
        subject = ctx.message.subject
        letters = [c for c in subject if c.isalpha()]
        if len(letters) < self.settings.min_letters:
            return ()
        upper = sum(1 for c in letters if c.isupper())
        if upper / len(letters) < self.settings.ratio:
            return ()
        spec = CODES["SHOUT_SUBJECT"]
        return (Finding(code="SHOUT_SUBJECT", weight=self.settings.weight,
                        evidence=(subject[:120], f"{upper} of {len(letters)} letters capital"),
                        detector=self.name, category=spec.family,
                        description=spec.description),)


def build(settings: Settings, services: Services) -> ShoutingDetector:
    return ShoutingDetector(settings.detector_section("shouting", ShoutingSettings))


SPEC = DetectorSpec(
    name="shouting",
    stage=Stage.CONTENT,
    order=90,
    prefix="SHOUT_",
    codes=CODES,
    settings=ShoutingSettings,
    factory=build,
    summary="Subjects written in capitals (an example third-party detector)",
    notes="An example of a detector shipped outside mailsift: see "
          "`examples/mailsift-example-detector/` in the mailsift repository.",
)
