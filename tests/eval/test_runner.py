"""The eval harness drives the real pipeline, and the CLI commands around it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mailsift.config.schema import Settings
from mailsift.eval.runner import eval_settings, scan_sources
from mailsift.interfaces.cli.main import main
from mailsift.ml.corpus import read_manifest


def test_eval_settings_switch_the_model_on() -> None:
    s = eval_settings(Settings(), "/m.json")
    assert "ml" in s.detectors.enabled and s.ml.model_path == "/m.json" and s.ml.enabled


def test_scan_sources_runs_the_full_pipeline(synthetic: tuple[Path, Path]) -> None:
    corpus, model = synthetic
    sources = [s for s in read_manifest(corpus) if s.name in ("ham_list_a", "phish_pot")]
    records = scan_sources(eval_settings(Settings(), str(model)), sources, cap=8)
    assert len(records) == 16
    ham = [r for r in records if r.label == "ham"]
    phish = [r for r in records if r.label == "phish"]
    assert all(r.action == "deliver" for r in ham)
    assert sum(r.action != "deliver" for r in phish) >= 6
    assert all(r.p_threat > 0.5 for r in phish) and all(r.elapsed_ms > 0 for r in records)


def test_eval_command_json(synthetic: tuple[Path, Path], tmp_path: Path,
                           capsys: pytest.CaptureFixture[str]) -> None:
    corpus, model = synthetic
    code = main(["eval", "--corpus", str(corpus), "--model", str(model), "--cap", "6",
                 "--format", "json", "--plots", str(tmp_path), "--records",
                 str(tmp_path / "r.jsonl")])
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert report["mode"].startswith("model-as-configured (trained on")
    assert report["messages"] == 42
    assert report["per_label"]["ham"]["quarantine_or_worse_rate"] == 0.0
    assert (tmp_path / "roc.png").is_file()
    assert len((tmp_path / "r.jsonl").read_text().splitlines()) == 42


def test_leave_one_source_out(synthetic: tuple[Path, Path],
                              capsys: pytest.CaptureFixture[str]) -> None:
    corpus, model = synthetic
    code = main(["eval", "--corpus", str(corpus), "--model", str(model), "--loso",
                 "--held-out", "phish_pot", "--train-cap", "15", "--cap", "10",
                 "--format", "json"])
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert report["mode"] == "leave-one-source-out"
    assert set(report["per_source"]) == {"phish_pot"}
    assert report["per_source"]["phish_pot"]["junk_or_worse_rate"] >= 0.8


def test_train_command(synthetic: tuple[Path, Path], tmp_path: Path,
                       capsys: pytest.CaptureFixture[str]) -> None:
    corpus, _ = synthetic
    out = tmp_path / "m.json"
    code = main(["train", "--corpus", str(corpus), "--exclude", "ham_office", "--cap", "10",
                 "--folds", "2", "--out", str(out)])
    assert code == 0
    meta = json.loads(out.read_text())
    assert "ham_office" not in meta["training_sources"]
    assert out.with_suffix(".npz").is_file()
    assert "version" in capsys.readouterr().out


def test_unknown_source_name_is_an_error(synthetic: tuple[Path, Path]) -> None:
    corpus, _ = synthetic
    assert main(["train", "--corpus", str(corpus), "--only", "nope"]) == 2


def _with_noncommercial_pot(corpus: Path, tmp_path: Path) -> Path:
    """A copy of the synthetic MANIFEST whose phish_pot rows carry CC BY-NC terms."""
    rows = (corpus / "MANIFEST.tsv").read_text().splitlines()
    out = tmp_path / "corpus"
    out.mkdir()
    lines = [r.replace("licence: CC0", "licence CC BY-NC 4.0 (non-commercial)")
             if "\tphish_pot\t" in r else r for r in rows]
    (out / "MANIFEST.tsv").write_text("\n".join(lines) + "\n")
    for label in ("ham", "spam", "phish"):
        (out / label).symlink_to(corpus / label)
    return out


def test_train_leaves_noncommercial_sources_out_unless_asked(
        synthetic: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str],
        caplog: pytest.LogCaptureFixture) -> None:
    from mailsift.ml.model import load_model

    corpus = _with_noncommercial_pot(synthetic[0], tmp_path)
    default, full = tmp_path / "default.json", tmp_path / "full.json"
    assert main(["train", "--corpus", str(corpus), "--cap", "10", "--folds", "2",
                 "--out", str(default)]) == 0
    assert "not learning from phish_pot (licence CC BY-NC 4.0" in capsys.readouterr().err
    meta = json.loads(default.read_text())
    assert "phish_pot" not in meta["training_sources"] and meta["noncommercial_sources"] == []
    assert load_model(default).noncommercial_sources == ()

    assert main(["train", "--corpus", str(corpus), "--cap", "10", "--folds", "2",
                 "--include-noncommercial", "--out", str(full)]) == 0
    assert "learning from phish_pot" in capsys.readouterr().err
    assert json.loads(full.read_text())["noncommercial_sources"] == ["phish_pot"]
    with caplog.at_level("WARNING", logger="mailsift.ml.model"):
        assert load_model(full).noncommercial_sources == ("phish_pot",)
    assert "learned from non-commercial data (phish_pot)" in caplog.text


def test_loso_scans_noncommercial_sources_but_never_trains_on_them(
        synthetic: tuple[Path, Path], tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    corpus = _with_noncommercial_pot(synthetic[0], tmp_path)
    assert main(["eval", "--corpus", str(corpus), "--model", str(synthetic[1]), "--loso",
                 "--train-cap", "15", "--cap", "6"]) == 0
    out = capsys.readouterr()
    learned = [line for line in out.err.splitlines() if line.startswith("features: ")]
    assert len(learned) == 6 and not any("phish_pot" in line for line in learned)
    assert "held out phish_pot (phish_pot): 6 scanned" in out.err  # still measured, unseen
    assert "phish_pot" in out.out
