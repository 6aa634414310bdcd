"""CPU per message of the gateway's store writer thread, by kind of write (issue 26).

The gateway's main process spends about 40% of its CPU on its store writer thread
(``AsyncRecorder``). This scans ``--messages`` of the benchmark mix once (offline, one
recipient each, not timed), then times on one thread with ``time.thread_time`` (CPU of this
thread only: user + system, so the kernel's share of writes and fsyncs counts; best of
``--rounds``, a fresh SQLite store each round) what the writer does per message, in batches
of ``--batch`` messages as the group commit forms them:

* the retry look-up (``TraceStore.statuses_many``),
* recording (``TraceStore.write_batch`` with the records: rows, findings, versions; blobs of
  quarantined messages),
* the delivery status (``write_batch`` with the status changes),
* teaching the sender history: one transaction per message (``learn``) and one per batch
  (``learn_many``, what the gateway does).

    python bench/writer_cpu.py [--messages 400] [--batch 8] [--rounds 5]
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import benchargs  # bench/ is not a package: the script's own folder

HERE = Path(__file__).resolve().parent
MIX = HERE.parent.parent / "shared" / "bench" / "mix-1000.mbox.gz"


def main() -> int:
    ap = benchargs.bench_parser(__doc__, messages=400, batch=8, rounds=5)
    ap.add_argument("--mix", type=Path, default=MIX)
    args = ap.parse_args()
    sys.path.insert(0, str(HERE.parent / "src"))
    from mailsift.config import load_settings
    from mailsift.core.envelope import Envelope
    from mailsift.history import SqliteHistory, learn, learn_many
    from mailsift.parsing.sources import iter_messages
    from mailsift.pipeline.build import ScanOptions, build_pipeline
    from mailsift.services.gateway import message_ref
    from mailsift.store import Recordable, Store

    settings = load_settings(None, environ={}, use_default_paths=False).settings
    pipeline = build_pipeline(settings, ScanOptions(offline=True))
    env = Envelope(mail_from="bench@example.org", rcpt_to=("user@example.net",))
    items = []
    for i, (_, raw) in enumerate(iter_messages([str(args.mix)])):
        if i >= args.messages:
            break
        raw = raw.replace(b"\nSubject:", f"\nX-Bench-Seq: {i}\nSubject:".encode(), 1)
        result = pipeline.scan(raw, env, message_id=message_ref(raw, env))
        items.append(Recordable(result, raw, time.time()))
    n = len(items)
    batches = [items[i:i + args.batch] for i in range(0, n, args.batch)]
    tmp = Path(tempfile.mkdtemp(prefix="mailsift-writer-"))
    best: dict[str, float] = {}

    def timed(name: str, fn: Callable[[], object]) -> None:
        start = time.thread_time()
        fn()
        best[name] = min(best.get(name, float("inf")), (time.thread_time() - start) * 1e3 / n)

    def one_round(r: int) -> None:
        store = Store.open(settings.store.model_copy(update={"data_dir": str(tmp / str(r))}))
        trace = store.trace
        timed("retry look-up", lambda: [trace.statuses_many([x.result.id for x in b])
                                        for b in batches])
        def record() -> None:
            for b in batches:
                trace.write_batch(b, ())

        def delivered() -> None:
            for b in batches:
                trace.write_batch((), [(x.result.id, "delivered", env.rcpt_to) for x in b])

        timed("record", record)
        timed("delivery status", delivered)
        one = SqliteHistory(str(tmp / str(r) / "history-one.sqlite3"))
        timed("history, a transaction per message",
              lambda: [learn(one, x.result, "example.org", time.time()) for x in items])
        many = SqliteHistory(str(tmp / str(r) / "history-many.sqlite3"))
        timed("history, a transaction per batch", lambda: [learn_many(
            many, [(x.result, "example.org") for x in b], time.time()) for b in batches])
        assert one.learned() == many.learned()
        one.close()
        many.close()
        store.engine.dispose()

    for r in range(args.rounds):
        one_round(r)
    print(f"data: {args.mix.name}, {n} messages in batches of {args.batch}; writer-thread CPU "
          f"(time.thread_time), best of {args.rounds}, SQLite synchronous=FULL")
    for name, ms in best.items():
        print(f"  {name:38s} {ms:.3f} ms per message")
    return 0


if __name__ == "__main__":
    sys.exit(main())
