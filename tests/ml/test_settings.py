"""[ml] settings: validation and a TOML round trip through `config dump`."""

from __future__ import annotations

import contextlib
import io
import tomllib

import pytest
from pydantic import ValidationError

from mailsift.config.ml import MlBand, MlSettings
from mailsift.interfaces.cli.main import main


def test_ml_settings_survive_a_toml_dump() -> None:
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        assert main(["config", "dump"]) == 0
    ml = tomllib.loads(buf.getvalue())["ml"]
    assert set(ml["bands"][-1]) == {"score", "min_probability", "family", "weight"}
    assert MlSettings(**ml) == MlSettings()


def test_bad_bands_fail() -> None:
    with pytest.raises(ValidationError):
        MlSettings(bands=())
    with pytest.raises(ValidationError):
        MlBand(score="phish", min_probability=1.5, family="phish", weight=1.0)
    with pytest.raises(ValidationError):
        MlBand(score="malware", min_probability=0.5, family="phish", weight=1.0)  # type: ignore[arg-type]
