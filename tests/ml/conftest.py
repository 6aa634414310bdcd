"""A tiny model trained on the synthetic corpus, shared by the ml tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailsift.ml.synthetic import train_synthetic_model


@pytest.fixture(scope="session")
def synthetic_model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return train_synthetic_model(tmp_path_factory.mktemp("ml"))
