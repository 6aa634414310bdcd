"""Verdict fingerprint: proves a speed-up changed no verdict, score, finding or ML feature.

Scans the benchmark mix and an even sample of every corpus source offline, in one process, and
writes one line per message: category, action, exact score, the findings (code, weight,
evidence), a hash of the ML feature dict the model sees and a hash of the parsed message (every
field a detector reads). Each message is scanned twice: with an empty envelope (as
``bench/scan_bench.py`` does) and with an envelope naming the first To address as recipient and
the From address as sender (recipient-dependent features and per-recipient policy).
Detector time budgets are lifted, so the machine's load cannot change a verdict.

    python bench/scan_fingerprint.py --out /tmp/after.tsv [--compare /tmp/before.tsv]

Prints a summary (messages, per-category counts, one digest of everything); with ``--compare``
it lists the first differing messages and exits 1 on any difference.
"""

from __future__ import annotations

import argparse
import dataclasses
import gzip
import hashlib
import json
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
SHARED = HERE.parent.parent / "shared"
DEFAULT_MIX = SHARED / "bench" / "mix-1000.mbox.gz"
DEFAULT_CORPUS = SHARED / "corpus"


def _messages(mix: Path, corpus: Path | None, per_source: int) -> Iterator[tuple[str, bytes]]:
    from mailsift.parsing.sources import iter_mbox

    with gzip.open(mix, "rb") as fh:
        for i, raw in enumerate(iter_mbox(fh)):
            yield f"mix:{i}", raw
    if corpus is None or per_source <= 0:
        return
    from mailsift.ml.corpus import iter_source, read_manifest

    for source in read_manifest(corpus):
        yield from iter_source(source, per_source)


def _digest(value: object) -> str:
    return hashlib.sha256(repr(value).encode("utf-8", "surrogatepass")).hexdigest()[:16]


def _message_digest(msg: Any) -> str:
    fields = []
    for f in dataclasses.fields(msg):
        value = getattr(msg, f.name)
        if f.name == "header_index":
            value = sorted(value.items())
        elif f.name == "embedded":
            value = [_message_digest(m) for m in value]
        fields.append((f.name, value))
    return _digest(fields)


def _line(msg_id: str, result: Any, features: dict[str, float]) -> str:
    verdict = result.verdict
    findings = sorted((f.code, f.detector, repr(f.weight), f.evidence, f.category, f.artifact,
                       f.version, f.state.value) for f in result.findings)
    per_rcpt = sorted((r, v.category.value, v.action.value, repr(v.score), v.decided_by.value)
                      for r, v in result.recipients.items())
    shadow = sorted((a, v.category.value, v.action.value, repr(v.score))
                    for a, v in result.shadow.items())
    feats = _digest(sorted(features.items()))
    record = [msg_id, verdict.category.value, verdict.action.value, repr(verdict.score),
              verdict.decided_by.value, verdict.explanation, json.dumps(findings),
              json.dumps(per_rcpt), json.dumps(shadow), feats, _message_digest(result.message)]
    return "\t".join(r.replace("\t", " ").replace("\n", " ") for r in record)


def fingerprint(mix: Path, corpus: Path | None, per_source: int) -> Iterator[str]:
    from mailsift.config import load_settings
    from mailsift.core.envelope import Envelope
    from mailsift.ml.features import extract
    from mailsift.pipeline.build import ScanOptions, build_pipeline

    settings = load_settings(None, environ={}, use_default_paths=False).settings
    # No time budgets: a paused or busy machine must not turn a scan into DETECTOR_TIMEOUT.
    unlimited = 10**9
    detectors = settings.detectors.model_copy(update={
        "timeout_ms": unlimited,
        "timeouts_ms": dict.fromkeys(settings.detectors.timeouts_ms, unlimited)})
    settings = settings.model_copy(update={"detectors": detectors})
    pipeline = build_pipeline(settings, ScanOptions(offline=True))
    for msg_id, raw in _messages(mix, corpus, per_source):
        bare = pipeline.scan(raw, Envelope(), message_id=msg_id)
        msg = bare.message
        yield _line(msg_id, bare, extract(msg))
        rcpt = tuple(a.addr.lower() for a in msg.to[:1] if "@" in a.addr)
        env = Envelope(mail_from=msg.from_addr.addr if msg.from_addr else None, rcpt_to=rcpt)
        full = pipeline.scan(raw, env, message_id=msg_id)
        yield _line(msg_id + "+env", full, extract(full.message, rcpt))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mix", type=Path, default=DEFAULT_MIX)
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--per-source", type=int, default=200,
                        help="messages sampled per corpus source (0: the mix only)")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--compare", type=Path, help="an earlier --out file to diff against")
    args = parser.parse_args()
    lines = list(fingerprint(args.mix, args.corpus if args.corpus.is_dir() else None,
                             args.per_source))
    args.out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    categories = Counter(line.split("\t")[1] for line in lines)
    total = hashlib.sha256("\n".join(lines).encode("utf-8", "surrogatepass")).hexdigest()[:16]
    print(f"{len(lines)} scans ({len(lines) // 2} messages x 2 envelopes), digest {total}")
    print("categories: " + ", ".join(f"{c or 'clean'} {n}" for c, n in categories.most_common()))
    if args.compare is None:
        return 0
    before = args.compare.read_text(encoding="utf-8").splitlines()
    diffs = [(a, b) for a, b in zip(before, lines, strict=False) if a != b]
    if len(before) != len(lines):
        print(f"DIFFERENT: {len(before)} lines before, {len(lines)} now")
    for a, b in diffs[:10]:
        print(f"- {a[:400]}\n+ {b[:400]}")
    print(f"{len(diffs)} of {len(lines)} scans differ from {args.compare}")
    return 1 if diffs or len(before) != len(lines) else 0


if __name__ == "__main__":
    sys.exit(main())
