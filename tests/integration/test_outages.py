"""PostgreSQL or Redis down (issue 21.5): the gateway answers 4xx and loses nothing.

``mailsift serve`` reaches the shared PostgreSQL and Redis through TCP proxies the test cuts
and restores (the real servers stay up for everyone else). While PostgreSQL is unreachable
every message is answered 4xx (nothing can be recorded, so nothing is accepted); when it is
back, the senders' retries get 250s. While Redis (the breaker's counters) is unreachable mail
keeps flowing: only the counting pauses, with a warning in the log. Afterwards each message
answered 250 was delivered exactly once or is held in quarantine exactly once.
"""

from __future__ import annotations

import smtplib
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest
from integration_support import MailsiftProcess, ham, phish, trace_records, write_config

from mailsift.testing.sink import SmtpSink, free_port
from mailsift.testing.storekit import pg_unavailable
from mailsift.testing.tcpproxy import TcpProxy

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


def _send(port: int, mid: str, raw: bytes) -> int:
    """The reply code to the end of DATA (or the first refusal); 0 if no SMTP answer."""
    try:
        with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
            client.sendmail("alice@example.org", ["bob@example.net"], raw)
        return 250
    except smtplib.SMTPResponseException as exc:
        return int(exc.smtp_code)
    except smtplib.SMTPRecipientsRefused as exc:
        return int(next(iter(exc.recipients.values()))[0])
    except (OSError, smtplib.SMTPException):
        return 0


def _message(i: int) -> tuple[str, bytes]:
    mid = f"<outage-{i}@example.org>"
    return mid, (phish(mid) if i % 4 == 0 else ham(mid, headers={"X-Sequence": str(i)}))


def _until_accepted(port: int, todo: list[tuple[str, bytes]], accepted: set[str],
                    timeout: float) -> None:
    deadline = time.monotonic() + timeout
    for mid, raw in todo:
        while mid not in accepted:
            assert time.monotonic() < deadline, f"{mid} not accepted after the outage"
            if _send(port, mid, raw) == 250:
                accepted.add(mid)
            else:
                time.sleep(0.5)


def _send_each(port: int, messages: list[tuple[str, bytes]], accepted: set[str],
               answers: list[int]) -> None:
    """Send each message once; its answer goes to ``answers``, a 250 to ``accepted``."""
    for mid, raw in messages:
        code = _send(port, mid, raw)
        answers.append(code)
        if code == 250:
            accepted.add(mid)


def test_postgresql_or_redis_down_answers_4xx_and_loses_nothing(tmp_path: Path) -> None:
    if why := pg_unavailable():
        pytest.skip(why)
    schema = f"mailsift_out_{uuid.uuid4().hex[:10]}"
    port = free_port()
    with SmtpSink() as sink, TcpProxy("127.0.0.1", 5432) as pg, \
            TcpProxy("127.0.0.1", 6379) as redis:
        config = write_config(tmp_path / "mailsift.toml", {
            "store": {"data_dir": str(tmp_path / "data"), "db_schema": schema,
                      "url": f"postgresql+psycopg://postgres@127.0.0.1:{pg.port}/test"},
            "gateway": {"next_hop_port": sink.port, "workers": 1, "spool_retry_seconds": 1,
                        "lists_refresh_seconds": 1},
            "smtp": {"port": port},
            "http": {"enabled": False},
            "milter": {"enabled": False},
            "scan": {"offline": True},
            "rollout": {"counters_url": f"redis://127.0.0.1:{redis.port}/"
                                        f"{1 + uuid.uuid4().int % 15}"},
        })
        gateway = MailsiftProcess(config, tmp_path / "mailsift.log", port).start()
        messages = [_message(i) for i in range(40)]
        accepted: set[str] = set()
        answers: dict[str, list[int]] = {}
        try:
            _until_accepted(port, messages[:10], accepted, 60)  # all up

            pg.cut()  # PostgreSQL down
            time.sleep(1.5)  # the lists snapshot goes stale: the store is needed again
            _send_each(port, messages[10:20], accepted, answers.setdefault("postgresql down", []))
            pg.restore()
            _until_accepted(port, messages[10:20], accepted, 90)

            redis.cut()  # Redis down
            _send_each(port, messages[20:30], accepted, answers.setdefault("redis down", []))
            redis.restore()
            _until_accepted(port, messages[20:40], accepted, 90)
            time.sleep(2)
        finally:
            gateway.stop()
        log = gateway.log()
        with gateway.store() as store:
            held = Counter(r.message_id_header.strip()
                           for r in trace_records(store, status="quarantined"))
            with store.engine.begin() as conn:
                conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        delivered = Counter(m.message_id for m in sink.messages)
    print("\noutages:", answers)
    assert all(400 <= c < 500 for c in answers["postgresql down"]), (answers, log[-3000:])
    assert all(c == 250 or 400 <= c < 500 for c in answers["redis down"]), answers
    assert accepted == {mid for mid, _ in messages}
    assert all(n == 1 for n in delivered.values()), delivered
    assert all(n == 1 for n in held.values()), held
    assert not set(delivered) & set(held)
    assert set(delivered) | set(held) == accepted, (sorted(accepted - set(delivered)
                                                           - set(held)))
