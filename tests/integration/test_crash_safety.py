"""Crash safety: kill -9 the gateway under a steady stream; nothing answered 250 is lost or
duplicated.

Senders behave like MTAs: a message is done only when it got 250; a 4xx, a refused connection
or a connection dropped mid-transaction means "try again". Meanwhile ``mailsift serve`` is
killed with SIGKILL twice and restarted. Afterwards every message that received 250 must be at
the sink (counted by Message-ID) or in the quarantine (counted in the store) exactly once.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
from integration_support import (
    Ledger,
    MailsiftProcess,
    ham,
    phish,
    send_like_an_mta,
    trace_records,
    write_config,
)

from mailsift.testing.sink import SmtpSink, free_port
from mailsift.testing.waiting import WaitTimeout, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

MESSAGES = 300
SENDERS = 4
KILLS = 2


def _message(i: int) -> tuple[str, bytes, bool]:
    mid = f"<crash-{i}@example.org>"
    if i % 5 == 0:
        return mid, phish(mid), True
    return mid, ham(mid, headers={"X-Sequence": str(i)}), False


def _children(pid: int) -> set[int]:
    out: set[int] = set()
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):
            out.update(int(c) for c in (task / "children").read_text().split())
    return out


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_kill_9_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    port = free_port()
    with SmtpSink() as sink:
        config = write_config(tmp_path / "mailsift.toml", {
            "store": {"data_dir": str(tmp_path / "data")},
            "gateway": {"next_hop_port": sink.port, "workers": 1, "spool_retry_seconds": 1},
            "smtp": {"port": port},
            "http": {"enabled": False},
            "milter": {"enabled": False},
            "scan": {"offline": True},
        })
        gateway = MailsiftProcess(config, tmp_path / "mailsift.log", port).start()
        messages = [_message(i) for i in range(MESSAGES)]
        ledger = Ledger()
        deadline = time.monotonic() + 120
        threads = [threading.Thread(
            target=send_like_an_mta,
            args=([port], [(mid, raw, "alice@example.org") for mid, raw, _ in
                           messages[k::SENDERS]], ledger, deadline),
            kwargs={"timeout": 15, "pause": 0.2}) for k in range(SENDERS)]
        for t in threads:
            t.start()
        kills = 0
        orphans: set[int] = set()
        kill_times: list[float] = []
        try:
            for k in range(1, KILLS + 1):
                # kill while the stream is flowing: after k/(KILLS+1) of the messages got 250
                target = MESSAGES * k // (KILLS + 1)
                while len(ledger.accepted) < target and time.monotonic() < deadline:
                    time.sleep(0.01)
                assert gateway.proc is not None
                orphans |= _children(gateway.proc.pid)
                kill_times.append(time.time())
                gateway.kill9()
                kills += 1
                time.sleep(0.5)
                gateway.start()
            for t in threads:
                t.join(max(1.0, deadline - time.monotonic()))
            # the retry spool (if anything was spooled) drains in the background
            ids = {mid for mid, _, _ in messages}
            clean = {mid for mid, _, is_phish in messages if not is_phish}
            with contextlib.suppress(WaitTimeout):  # what is missing is reported below
                wait_until(lambda: clean <= {m.message_id for m in sink.messages}, timeout=30,
                           what="every clean message to reach the next hop")
        finally:
            gateway.stop()
        copies = [m for m in sink.messages if m.message_id in ids]
    with gateway.store() as store:
        quarantined = Counter(r.message_id_header.strip()
                              for r in trace_records(store, status="quarantined"))
    delivered = Counter(m.message_id for m in copies)
    # A copy that reached the sink during an attempt that never got its 250 was in flight when
    # the gateway died: relayed, but the kill came before the answer (RFC 1047's window; the
    # sender must retry, so that copy can repeat). Any other repeat is a real duplicate.
    in_flight: list[tuple[str, float]] = []
    strict = 0
    for mid in delivered:
        others = 0
        for copy in (c for c in copies if c.message_id == mid):
            attempt = ledger.attempt_of(mid, copy.received_at)
            if attempt is not None and not attempt[3]:
                in_flight.append((mid, min(abs(k - copy.received_at) for k in kill_times)))
            else:
                others += 1
        strict += max(0, others - 1)
    strict += sum(n - 1 for n in quarantined.values() if n > 1)
    strict += len(set(delivered) & set(quarantined))
    in_flight_dups = sum(delivered.values()) - len(delivered) - strict
    phish_ids = {mid for mid, _, is_phish in messages if is_phish}
    accepted = ledger.accepted
    lost = sorted(mid for mid in accepted if mid not in delivered and mid not in quarantined)
    summary = (f"sent={MESSAGES} kills={kills} attempts={len(ledger.attempts)} "
               f"250s={len(accepted)} delivered={sum(delivered.values())} "
               f"(distinct {len(delivered)}) quarantined={sum(quarantined.values())} "
               f"duplicates={strict} in-flight-at-kill duplicates={in_flight_dups} "
               f"lost={len(lost)} rejected={len(ledger.rejected)}")
    print("\ncrash safety:", summary, "in-flight copies (id, s from kill):", in_flight)
    assert kills == KILLS
    # scan workers of a killed gateway exit by themselves instead of lingering forever
    assert orphans, "the gateway should have had scan worker processes"
    assert not [p for p in orphans if _alive(p)], orphans
    assert len(accepted) == MESSAGES, (summary, ledger.rejected)
    assert not lost, (summary, lost[:10], gateway.log()[-3000:])
    assert strict == 0, summary
    # at most the transactions that were between relay and reply when a kill landed
    assert in_flight_dups <= SENDERS * KILLS, summary
    assert all(gap < 1.0 for _, gap in in_flight), in_flight
    # and each went where its verdict says
    assert set(quarantined) == phish_ids, summary
    assert set(delivered) == ids - phish_ids, summary
