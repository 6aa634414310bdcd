"""Test helpers for the store: a settable clock, scan results without a pipeline, a recording
SMTP sink (aiosmtpd) standing in for the next hop, and throw-away stores on SQLite or
PostgreSQL (a unique schema per store, dropped afterwards, so parallel runs never collide).
"""

from __future__ import annotations

import contextlib
import json
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Any

from mailsift.config.store import StoreSettings
from mailsift.core.envelope import Connection, Envelope
from mailsift.core.findings import Finding
from mailsift.core.message import Address, Attachment, ParsedMessage, Url
from mailsift.core.result import ScanResult
from mailsift.core.verdict import Action, Category, DecisionStep, Verdict
from mailsift.testing import templates
from mailsift.testing.sink import ReceivedMessage
from mailsift.testing.templates import PG_DSN, PG_URL

__all__ = [
    "PG_DSN",
    "PG_URL",
    "FakeClock",
    "SmtpSinkProcess",
    "make_result",
    "pg_unavailable",
    "temp_store_settings",
]



class FakeClock:
    """A clock tests move by hand."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.t = start

    def now(self) -> float:
        return self.t

    def monotonic(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


def make_result(
    msg_id: str,
    raw: bytes,
    *,
    mail_from: str = "sender@example.org",
    recipients: Mapping[str, Action] | Sequence[str] = ("user@example.net",),
    category: Category = Category.PHISH,
    findings: Sequence[Finding] = (),
    versions: Mapping[str, str] | None = None,
    subject: str = "Hello",
    from_addr: str = "alice@example.org",
    client_ip: str = "192.0.2.10",
    from_header: str | None = None,
    message_id: str | None = None,
    urls: Sequence[Url] = (),
    attachments: Sequence[Attachment] = (),
) -> ScanResult:
    """A ScanResult as the pipeline would produce it, for store and release tests.
    ``from_header`` is the From header as written (default: the bare ``from_addr``)."""
    actions = dict(recipients) if isinstance(recipients, Mapping) else {
        r: Action.QUARANTINE for r in recipients
    }
    vers = MappingProxyType(dict(versions or {}))
    per = {
        r: Verdict(category if a is not Action.DELIVER else Category.CLEAN, a, 7.5,
                   DecisionStep.DETECTION, f"{category.value}: test", recipient=r,
                   policy="default", versions=vers, reasons=tuple(findings),
                   findings=tuple(findings))
        for r, a in actions.items()
    }
    strictest = max(per.values(), key=lambda v: v.action.strictness) if per else Verdict(
        category, Action.QUARANTINE, 7.5, DecisionStep.DETECTION, "test")
    from_value = from_header or from_addr
    message = ParsedMessage(
        raw=raw,
        headers=(("From", from_value), ("To", ", ".join(actions)), ("Subject", subject)),
        header_index=MappingProxyType({"from": (from_value,), "to": (", ".join(actions),),
                                       "subject": (subject,)}),
        from_addr=Address("", from_addr),
        subject=subject,
        message_id=message_id if message_id is not None else f"<{msg_id}@example.org>",
        urls=tuple(urls),
        attachments=tuple(attachments),
        date="Fri, 20 Nov 2026 09:30:00 +0000",
    )
    return ScanResult(
        id=msg_id, verdict=strictest, message=message,
        envelope=Envelope(mail_from=mail_from, rcpt_to=tuple(actions),
                          connection=Connection(client_ip=client_ip, helo="mx.example.org")),
        findings=tuple(findings), recipients=MappingProxyType(per), versions=vers,
    )


def pg_unavailable() -> str | None:
    """Why PostgreSQL tests cannot run here, or None when they can."""
    try:
        import psycopg
    except ImportError:
        return "psycopg is not installed"
    try:
        with psycopg.connect(PG_DSN, connect_timeout=3):
            return None
    except Exception as exc:  # any connection failure means "skip", with the reason shown
        return f"PostgreSQL at 127.0.0.1:5432/test unreachable: {exc}"


@contextlib.contextmanager
def temp_store_settings(backend: str, data_dir: Path, *, migrated: bool = True,
                        **overrides: Any) -> Iterator[StoreSettings]:
    """Settings for a fresh store; a PostgreSQL schema is dropped on exit.

    With ``migrated`` (the default) the database starts as a copy of this process's migrated
    template (see :mod:`mailsift.testing.templates`), so opening it runs no migration; pass
    ``migrated=False`` for an empty database that the first ``Store.open`` migrates.
    """
    schema = ""
    if backend == "postgresql":
        schema = f"mailsift_t_{uuid.uuid4().hex[:12]}"
        settings = StoreSettings(data_dir=str(data_dir), url=PG_URL, db_schema=schema,
                                 **overrides)
    else:
        settings = StoreSettings(data_dir=str(data_dir), **overrides)
    try:
        if migrated and not {"url", "db_schema"} & overrides.keys():
            templates.seed(settings)
        yield settings
    finally:
        if schema:
            import psycopg

            with psycopg.connect(PG_DSN, autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


class _LogHandler:
    """aiosmtpd handler of the out-of-process sink: one JSON line per accepted message."""

    def __init__(self, path: str) -> None:
        self.fh = open(path, "a", encoding="utf-8")  # noqa: SIM115 - lives as long as the server

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        msg = ReceivedMessage(envelope.mail_from, tuple(envelope.rcpt_tos),
                              bytes(envelope.content), time.time())
        self.fh.write(json.dumps({
            "mail_from": msg.mail_from, "rcpt_tos": list(msg.rcpt_to),
            "release_id": (msg.header("X-Mailsift-Release-Id") or [""])[0],
            "message_id": msg.message_id,
        }) + "\n")
        self.fh.flush()
        return "250 2.0.0 queued"


class SmtpSinkProcess:
    """A recording sink in its own process (``python -m mailsift.testing.storekit PORT LOG``), so
    it does not share the GIL with the releaser being measured."""

    def __init__(self, log: Path, host: str = "127.0.0.1") -> None:
        self.log = log
        self.host = host
        self.port = 0
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> SmtpSinkProcess:
        with socket.socket() as s:
            s.bind((self.host, 0))
            self.port = s.getsockname()[1]
        self.log.write_text("")
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "mailsift.testing.storekit", str(self.port), str(self.log)]
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection((self.host, self.port),
                                                                        timeout=1):
                return self
            time.sleep(0.05)
        self.stop()
        raise RuntimeError("the SMTP sink did not start")

    def stop(self) -> None:
        if self._proc is not None:
            self._proc.terminate()
            self._proc.wait(timeout=10)
            self._proc = None

    def records(self) -> list[dict[str, Any]]:
        lines = self.log.read_text(encoding="utf-8").splitlines()
        return [json.loads(line) for line in lines if line.strip()]

    def copies(self) -> dict[tuple[str, str], int]:
        out: dict[tuple[str, str], int] = {}
        for rec in self.records():
            for r in rec["rcpt_tos"]:
                key = (rec["message_id"], r.lower())
                out[key] = out.get(key, 0) + 1
        return out


def _serve(port: int, log: str) -> None:  # pragma: no cover - runs in the child process
    from aiosmtpd.controller import Controller

    controller = Controller(_LogHandler(log), hostname="127.0.0.1", port=port,
                            data_size_limit=0)
    controller.start()
    signal.sigwait({signal.SIGTERM, signal.SIGINT})
    controller.stop()


if __name__ == "__main__":  # pragma: no cover
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})
    _serve(int(sys.argv[1]), sys.argv[2])
