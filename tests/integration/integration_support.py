"""Helpers of the integration tests: ``mailsift serve`` as a real process, swaks, store reads."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from email import policy
from email.parser import BytesParser
from pathlib import Path
from typing import Any

import pytest

from mailsift.config import load_settings
from mailsift.store.query import TraceQuery
from mailsift.store.records import MessageRecord
from mailsift.store.store import Store
from mailsift.testing.messages import make_message
from mailsift.testing.postfix import (
    PostfixInstance,
    content_filter_postfix,
    milter_postfix,
    postfix_missing,
    swaks_missing,
)
from mailsift.testing.sink import SmtpSink, free_port

SAMPLES = Path(__file__).resolve().parents[2] / "samples"

# A 2 MB attachment whose bytes can be checked after the trip through Postfix and mailsift.
BIG_PAYLOAD = os.urandom(2 * 1024 * 1024)


def ham(message_id: str, headers: dict[str, str] | None = None) -> bytes:
    return make_message(subject="Lunch on Friday?", message_id=message_id, headers=headers or {},
                        text="Shall we meet at noon at the usual place?\n")


def big(message_id: str) -> bytes:
    return make_message(subject="The report you asked for", message_id=message_id,
                        text="Attached: the full data set.\n",
                        attachments=[("dataset.bin", BIG_PAYLOAD, "application/octet-stream")])


def phish(message_id: str) -> bytes:
    raw = (SAMPLES / "phish-credential.eml").read_bytes()
    return _with_message_id(raw, message_id)


def gtube(message_id: str) -> bytes:
    return _with_message_id((SAMPLES / "spam-gtube.eml").read_bytes(), message_id)


def malformed(message_id: str) -> bytes:
    """Broken in the ways real mail is: a header line without a colon, 8-bit bytes in a header,
    a runaway nested comment in From, an unknown charset, a multipart without its closing
    boundary and an over-long line."""
    return (
        b"Message-ID: " + message_id.encode() + b"\r\n"
        b"From: ((((((((((((((((((((" + b"(" * 3000 + b"x <mallory@example.com>\r\n"
        b"To: bob@example.net\r\n"
        b"Subject: caf\xe9 \xff\xfe broken\r\n"
        b"this line is not a header\r\n"
        b"MIME-Version: 1.0\r\n"
        b"Content-Type: multipart/mixed; boundary=\"BOUND\"\r\n"
        b"\r\n"
        b"--BOUND\r\n"
        b"Content-Type: text/plain; charset=x-no-such-charset\r\n"
        b"\r\n"
        b"body text " + b"y" * 3000 + b"\r\n"
        b"--BOUND\r\n"
        b"Content-Type: application/octet-stream\r\n"
        b"Content-Transfer-Encoding: base64\r\n"
        b"\r\n"
        b"!!!! not base64 ====\r\n"
    )


def _with_message_id(raw: bytes, message_id: str) -> bytes:
    lines = raw.replace(b"\r\n", b"\n").split(b"\n")
    out = [ln for ln in lines if not ln.lower().startswith(b"message-id:")]
    return b"Message-ID: " + message_id.encode() + b"\n" + b"\n".join(out)


def attachment_of(data: bytes) -> bytes:
    msg = BytesParser(policy=policy.default).parsebytes(data)
    for part in msg.iter_attachments():
        payload = part.get_payload(decode=True)
        assert isinstance(payload, bytes)
        return payload
    raise AssertionError("no attachment")



MAILSIFT = str(Path(sys.executable).with_name("mailsift"))


def require_postfix_and_swaks() -> None:
    reason = postfix_missing() or swaks_missing()
    if reason:
        pytest.skip(f"integration test needs Postfix and swaks: {reason}")
    if os.geteuid() != 0:
        pytest.skip("a private Postfix instance must be started as root")


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + "}"
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def write_config(path: Path, sections: dict[str, dict[str, Any]]) -> Path:
    lines = []
    for section, values in sections.items():
        lines.append(f"[{section}]")
        lines += [f"{k} = {_toml_value(v)}" for k, v in values.items()]
        lines.append("")
    path.write_text("\n".join(lines))
    return path


def wait_port(port: int, timeout: float, proc: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before listening")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port} after {timeout} s")


class MailsiftProcess:
    """``mailsift serve --config FILE`` in a child process (libmilter wants its own process;
    the crash test needs a process it can kill -9)."""

    def __init__(self, config: Path, log: Path, wait_for_port: int) -> None:
        self.config = config
        self.log_path = log
        self.port = wait_for_port
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60.0) -> MailsiftProcess:
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen([MAILSIFT, "serve", "--config", str(self.config)],
                                         stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_port(self.port, timeout, self.proc)
        except RuntimeError as exc:
            raise RuntimeError(f"{exc}\n{self.log()}") from exc
        return self

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def store(self) -> Store:
        return Store.open(load_settings(str(self.config)).settings.store)


_REPLY = re.compile(r"^(?:<-|<\*\*)\s+(\d{3})[ -](.*)$")


def swaks(port: int, data: Path, *, to: str = "bob@example.net",
          mail_from: str = "alice@example.org", timeout: float = 60.0) -> tuple[int, str]:
    """Send ``data`` with swaks; the reply to the end of DATA (or the first refusal)."""
    proc = subprocess.run(
        ["swaks", "--server", f"127.0.0.1:{port}", "--from", mail_from, "--to", to,
         "--data", str(data), "--timeout", str(int(timeout)), "--suppress-data"],
        capture_output=True, text=True, timeout=timeout + 10)
    replies = []
    for line in proc.stdout.splitlines():
        match = _REPLY.match(line)
        if match:
            replies.append((int(match.group(1)), match.group(2)))
    refusals = [r for r in replies if r[0] >= 400]
    if refusals:
        return refusals[0]
    # the last reply is the 221 to QUIT; the one before is the reply to the data
    assert len(replies) >= 2, proc.stdout + proc.stderr
    return replies[-2]


def trace_records(store: Store, **query: Any) -> Iterator[MessageRecord]:
    cursor = None
    seen: set[str] = set()
    while True:
        page = store.trace.search(TraceQuery(**query), cursor=cursor, limit=500)
        for item in page.items:
            if item.message not in seen:
                seen.add(item.message)
                record = store.trace.get(item.message)
                assert record is not None
                yield record
        if page.next_cursor is None:
            return
        cursor = page.next_cursor


def find_by_message_id(store: Store, message_id: str) -> list[MessageRecord]:
    return [r for r in trace_records(store) if r.message_id_header.strip() == message_id]


def write_eml(directory: Path, name: str, raw: bytes) -> Path:
    path = directory / name
    path.write_bytes(raw)
    return path


@contextlib.contextmanager
def content_filter_setup(root: Path, extra_toml: str = ""
                         ) -> Iterator[tuple[SmtpSink, MailsiftProcess, PostfixInstance]]:
    """A private Postfix whose after-queue content filter is a running ``mailsift serve``
    (offline, no HTTP, no milter) re-injecting into Postfix, which delivers to a recording
    sink. ``extra_toml`` is appended to mailsift's configuration."""
    filter_port, reinject_port = free_port(), free_port()
    with SmtpSink() as sink:
        config = write_config(root / "mailsift.toml", {
            "store": {"data_dir": str(root / "data")},
            "gateway": {"next_hop_port": reinject_port, "workers": 0, "next_hop_timeout": 20},
            "smtp": {"port": filter_port},
            "http": {"enabled": False},
            "milter": {"enabled": False},
            "scan": {"offline": True},
        })
        if extra_toml:
            config.write_text(config.read_text() + extra_toml)
        mailsift = MailsiftProcess(config, root / "mailsift.log", filter_port).start()
        postfix = content_filter_postfix(filter_port=filter_port,
                                         sink_port=sink.port, reinject_port=reinject_port)
        with _running(mailsift, postfix):
            yield sink, mailsift, postfix


@contextlib.contextmanager
def milter_setup(root: Path, quarantine: str = "store", sections: dict[str, Any] | None = None,
                 extra_toml: str = ""
                 ) -> Iterator[tuple[SmtpSink, MailsiftProcess, PostfixInstance]]:
    """A private Postfix with a running ``mailsift serve`` as its milter (offline, no SMTP
    listener, no HTTP), delivering to a recording sink. ``sections`` are added to mailsift's
    configuration, ``extra_toml`` appended to it."""
    milter_port = free_port()
    with SmtpSink() as sink:
        config = write_config(root / "mailsift.toml", {
            "store": {"data_dir": str(root / "data")},
            "gateway": {"next_hop_port": sink.port, "workers": 0, "junk_subject_tag": "[SPAM] "},
            "smtp": {"enabled": False},
            "http": {"enabled": False},
            "milter": {"enabled": True, "socket": f"inet:{milter_port}@127.0.0.1",
                       "quarantine": quarantine},
            "scan": {"offline": True},
            **(sections or {}),
        })
        if extra_toml:
            config.write_text(config.read_text() + extra_toml)
        mailsift = MailsiftProcess(config, root / "mailsift.log", milter_port).start()
        postfix = milter_postfix(milter_port=milter_port, sink_port=sink.port)
        with _running(mailsift, postfix):
            yield sink, mailsift, postfix


@contextlib.contextmanager
def _running(mailsift: MailsiftProcess, postfix: PostfixInstance) -> Iterator[None]:
    """Start Postfix beside a started mailsift; stop both, Postfix first."""
    try:
        postfix.start()
        yield
    finally:
        postfix.stop()
        mailsift.stop()
