"""A synthetic corpus and a model trained on it, shared by the eval tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailsift.ml.synthetic import train_synthetic_model


@pytest.fixture(scope="session")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(corpus folder with MANIFEST.tsv, model JSON path)."""
    root = tmp_path_factory.mktemp("eval")
    model = train_synthetic_model(root, per_source=20)
    return root / "corpus", model
