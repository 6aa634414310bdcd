"""A local SMTP sink that records what it receives (tests and benchmarks), and can refuse
recipients or cut connections to stand in for a misbehaving next hop.

It stands in for the next hop (Postfix's re-injection port, a mailbox server): a real aiosmtpd
server on 127.0.0.1 in its own thread. What it received can be read from any thread, counted
by Message-ID (how the crash-safety test proves "exactly once"), and waited for. ``reply``
can be changed at any time to simulate a next hop that defers or refuses.
"""

from __future__ import annotations

import re
import socket
import threading
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP

from mailsift.testing.service import Service

__all__ = ["ReceivedMessage", "SmtpSink", "free_port"]

_MESSAGE_ID = re.compile(rb"^message-id:[ \t]*(.*?)\r?$", re.I | re.M)


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago (bind to port 0 and ask)."""
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True, slots=True)
class ReceivedMessage:
    mail_from: str
    rcpt_to: tuple[str, ...]
    data: bytes
    received_at: float
    mail_options: tuple[str, ...] = ()

    @property
    def message_id(self) -> str:
        match = _MESSAGE_ID.search(self.data.split(b"\r\n\r\n", 1)[0])
        return match.group(1).strip().decode("utf-8", "replace") if match else ""

    def header(self, name: str) -> list[str]:
        """Values of every header field called ``name`` (unfolded)."""
        head = self.data.replace(b"\r\n", b"\n").split(b"\n\n", 1)[0].decode("utf-8", "replace")
        unfolded = re.sub(r"\n[ \t]+", " ", head)
        prefix = name.lower() + ":"
        return [line[len(prefix):].strip() for line in unfolded.split("\n")
                if line.lower().startswith(prefix)]


class _Handler:
    def __init__(self, sink: SmtpSink) -> None:
        self.sink = sink

    async def handle_RCPT(self, server: SMTP, session: Any, envelope: Any, address: str,
                          rcpt_options: list[str]) -> str:
        if address.lower() in self.sink.refuse:
            return "550 5.1.1 no such user"
        if address.lower() in self.sink.defer:
            return "450 4.2.1 mailbox busy, try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Any, envelope: Any) -> str:
        reply = self.sink.reply
        if reply.startswith("250"):
            data = envelope.original_content or envelope.content
            self.sink._add(ReceivedMessage(envelope.mail_from or "", tuple(envelope.rcpt_tos),
                                           bytes(data), time.time(),
                                           tuple(envelope.mail_options)))
            drop = any(r.lower() in self.sink.drop_data_for for r in envelope.rcpt_tos)
            if drop and server.transport is not None:
                # Taken, then the connection cut before the reply: the sender cannot know
                # (the "uncertain" case of a release; recorded here as received).
                server.transport.close()
        return reply


class _Controller(Controller):
    def __init__(self, sink: SmtpSink, port: int, max_bytes: int, smtputf8: bool) -> None:
        super().__init__(_Handler(sink), hostname="127.0.0.1", port=port)
        self.max_bytes = max_bytes
        self.smtputf8 = smtputf8

    def factory(self) -> SMTP:
        # Relayed mail may carry long lines (mailsift accepts up to 64 KiB by default).
        cls: type[SMTP] = type("SinkSMTP", (SMTP,), {"line_length_limit": 1024 * 1024})
        return cls(self.handler, data_size_limit=self.max_bytes, enable_SMTPUTF8=self.smtputf8,
                   decode_data=False, hostname="sink.test")


class SmtpSink(Service):
    """``with SmtpSink() as sink: ... sink.port ... sink.wait_for(3)``."""

    def __init__(self, port: int = 0, *, reply: str = "250 2.0.0 Ok: queued",
                 max_message_bytes: int = 64 * 1024 * 1024, smtputf8: bool = True) -> None:
        self.host = "127.0.0.1"
        self.port = port or free_port()
        self.reply = reply
        #: recipients answered 550 (``refuse``) or 450 (``defer``) at RCPT, and recipients
        #: whose DATA is taken but never answered (connection cut): all can be changed at any
        #: time
        self.refuse: set[str] = set()
        self.defer: set[str] = set()
        self.drop_data_for: set[str] = set()
        self._messages: list[ReceivedMessage] = []
        self._cond = threading.Condition()
        self._controller = _Controller(self, self.port, max_message_bytes, smtputf8)

    def start(self) -> SmtpSink:
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()


    def _add(self, message: ReceivedMessage) -> None:
        with self._cond:
            self._messages.append(message)
            self._cond.notify_all()

    @property
    def messages(self) -> list[ReceivedMessage]:
        with self._cond:
            return list(self._messages)

    def __len__(self) -> int:
        with self._cond:
            return len(self._messages)

    def deliveries(self) -> list[tuple[str, str]]:
        """``(X-Mailsift-Release-Id, recipient)`` for every recipient copy received."""
        return [((m.header("X-Mailsift-Release-Id") or [""])[0], r.lower())
                for m in self.messages for r in m.rcpt_to]

    def copies(self) -> Counter[tuple[str, str]]:
        """How many times each (Message-ID, recipient) arrived (above 1: a duplicate)."""
        return Counter((m.message_id, r.lower()) for m in self.messages for r in m.rcpt_to)

    def message_ids(self) -> Counter[str]:
        """How many times each Message-ID arrived (a count above 1 is a duplicate)."""
        return Counter(m.message_id for m in self.messages)

    def wait_for(self, count: int, timeout: float = 10.0) -> bool:
        """Wait until at least ``count`` messages arrived; False on timeout."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self._messages) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
            return True
