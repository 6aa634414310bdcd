"""Run the full scan pipeline over labelled sources and keep one small record per message.

The pipeline is the real one (``mailsift.pipeline.build.build_pipeline``, offline: DNS answers
in a corpus are years stale), so the numbers include every detector and the policy, not just the
model. The model's own probabilities are recorded next to the verdict for the ROC/PR curves and
threshold selection. Worker processes each build their pipeline once, like
``mailsift scan --workers``.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from mailsift.config.schema import Settings
from mailsift.core.envelope import Envelope
from mailsift.core.verdict import Verdict
from mailsift.ml.corpus import LabelledSource, iter_source

__all__ = ["Record", "eval_settings", "scan_sources"]

_CHUNK = 32
_worker: dict[str, Any] = {}


@dataclass(frozen=True, slots=True)
class Record:
    """What eval keeps of one scanned message."""

    source: str
    label: str
    message_id: str
    category: str
    action: str
    p_phish: float
    p_spam: float
    p_threat: float
    elapsed_ms: float
    ml_ms: float = 0.0
    reasons: tuple[str, ...] = ()
    #: the verdict had the rule packs' shadow findings acted (what a site gets after promoting
    #: them); equal to category/action when no shadow rule hit
    promoted_category: str = ""
    promoted_action: str = ""
    #: codes of every finding, shadow ones included (for error analysis)
    findings: tuple[str, ...] = ()
    #: family -> score of the verdict, and of the promoted verdict
    family_scores: dict[str, float] = field(default_factory=dict)
    promoted_family_scores: dict[str, float] = field(default_factory=dict)


def eval_settings(settings: Settings, model_path: str | None = None) -> Settings:
    """``settings`` with the ml detector switched on (and pointed at ``model_path``)."""
    detectors = settings.detectors
    enabled = detectors.enabled if "ml" in detectors.enabled else (*detectors.enabled, "ml")
    disabled = tuple(d for d in detectors.disabled if d != "ml")
    ml = settings.ml.model_copy(update={"enabled": True, **(
        {"model_path": model_path} if model_path else {})})
    return settings.model_copy(update={
        "detectors": detectors.model_copy(update={"enabled": enabled, "disabled": disabled}),
        "ml": ml,
    })


def _init(settings: Settings) -> None:
    from mailsift.pipeline.build import ScanOptions, build_pipeline

    pipeline = build_pipeline(settings, ScanOptions(offline=True))
    _worker["pipeline"] = pipeline
    _worker["ml"] = next((d for d in pipeline.detectors if d.name == "ml"), None)


def _scan(chunk: list[tuple[str, str, str, bytes]]) -> list[Record]:
    pipeline = _worker["pipeline"]
    ml = _worker["ml"]
    out = []
    envelope = Envelope()
    for source, label, msg_id, raw in chunk:
        result = pipeline.scan(raw, envelope, message_id=msg_id)
        if ml is not None:
            prediction = ml.predict(result.message, ())
            p_phish, p_spam = prediction.p("phish"), prediction.p("spam")
            p_threat = prediction.p("threat")
        else:
            p_phish = p_spam = p_threat = 0.0
        verdict = result.verdict
        promoted = _promoted(result.shadow) or verdict
        out.append(Record(source, label, msg_id, verdict.category.value, verdict.action.value,
                          round(p_phish, 5), round(p_spam, 5), round(p_threat, 5),
                          round(result.elapsed_ms, 3), round(result.detector_ms.get("ml", 0.0), 3),
                          tuple(f.code for f in verdict.reasons),
                          promoted.category.value, promoted.action.value,
                          tuple(sorted({f.code for f in result.findings})),
                          _scores(verdict), _scores(promoted)))
    return out


def _promoted(shadow: Mapping[str, Verdict]) -> Verdict | None:
    """The strictest shadow verdict of a rule pack (a pack's rules that ship in shadow, acting)."""
    verdicts = [v for k, v in shadow.items() if k.startswith("rules:")]
    if not verdicts:
        return None
    return max(verdicts, key=lambda v: (v.action.strictness, -v.category.rank))


def _scores(verdict: Verdict) -> dict[str, float]:
    return {k: round(v, 3) for k, v in verdict.family_scores.items()}


def _items(sources: Sequence[LabelledSource], cap: int
           ) -> Iterator[list[tuple[str, str, str, bytes]]]:
    chunk: list[tuple[str, str, str, bytes]] = []
    for source in sources:
        for msg_id, raw in iter_source(source, cap):
            chunk.append((source.name, source.label, msg_id, raw))
            if len(chunk) >= _CHUNK:
                yield chunk
                chunk = []
    if chunk:
        yield chunk


def scan_sources(settings: Settings, sources: Sequence[LabelledSource], *, cap: int = 0,
                 workers: int = 1, progress: Callable[[int], None] | None = None
                 ) -> list[Record]:
    """Scan every (capped) message of ``sources`` with the full offline pipeline."""
    records: list[Record] = []
    batches: Iterable[list[Record]]
    if workers > 1:
        batches = _parallel(settings, _items(sources, cap), workers)
    else:
        _init(settings)
        batches = (_scan(chunk) for chunk in _items(sources, cap))
    for batch in batches:
        records.extend(batch)
        if progress is not None:
            progress(len(batch))
    return records


def _parallel(settings: Settings, chunks: Iterable[list[tuple[str, str, str, bytes]]],
              workers: int) -> Iterator[list[Record]]:
    with ProcessPoolExecutor(workers, initializer=_init, initargs=(settings,)) as pool:
        pending: deque[Future[list[Record]]] = deque()
        for chunk in chunks:
            pending.append(pool.submit(_scan, chunk))
            while len(pending) >= workers * 3:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
