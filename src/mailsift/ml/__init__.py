"""The content model: sender-view feature extraction (receiver-added headers stripped), the
safe model format (arrays + JSON, never pickle), scoring with explanations, and training.

Heavy dependencies (numpy for scoring, scikit-learn for training, torch for the comparison model)
are imported only where they are used: importing this package imports none of them, so
``mailsift.ml.corpus`` and the CLI load without the ``[ml]`` extra. The names below are
resolved on first access.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mailsift.ml.features import FEATURE_VERSION, extract
    from mailsift.ml.model import (
        LinearModel,
        Prediction,
        load_model,
        save_model,
        shipped_model_path,
    )
    from mailsift.ml.receiver import SenderView, sender_view

__all__ = ["FEATURE_VERSION", "LinearModel", "Prediction", "SenderView", "extract", "load_model",
           "save_model", "sender_view", "shipped_model_path"]

_WHERE: dict[str, str] = {
    "FEATURE_VERSION": "mailsift.ml.features",
    "extract": "mailsift.ml.features",
    "LinearModel": "mailsift.ml.model",
    "Prediction": "mailsift.ml.model",
    "load_model": "mailsift.ml.model",
    "save_model": "mailsift.ml.model",
    "shipped_model_path": "mailsift.ml.model",
    "SenderView": "mailsift.ml.receiver",
    "sender_view": "mailsift.ml.receiver",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
