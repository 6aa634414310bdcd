"""ClamAV connector: the clamd protocol (``zINSTREAM``, ``zPING``, ``zVERSION``) over a unix or
TCP socket. The antivirus integration point of the attachments detector.

INSTREAM sends the file as chunks, each prefixed by its length as a 4-byte big-endian integer,
ended by a zero-length chunk; clamd answers ``stream: OK``, ``stream: <signature> FOUND`` or
``... ERROR``. Any failure (connection refused, timeout, ERROR reply) raises ``ClamdError``: the
pipeline turns it into a DETECTOR_ERROR finding, never into "clean".
"""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass

from mailsift.config.detectors import ClamavSettings
from mailsift.core.errors import DetectorError

__all__ = ["ClamdClient", "ClamdError", "ClamdResult"]


class ClamdError(DetectorError):
    """clamd could not be reached or could not scan."""

    def __init__(self, message: str) -> None:
        super().__init__("clamav", message)


@dataclass(frozen=True, slots=True)
class ClamdResult:
    infected: bool
    signature: str = ""


class ClamdClient:
    """One connection per command (clamd closes ``z`` commands after the reply)."""

    def __init__(self, settings: ClamavSettings) -> None:
        if not settings.configured:
            raise ValueError("clamd needs [clamav] socket or host")
        self.settings = settings

    def _connect(self) -> socket.socket:
        s = self.settings
        try:
            if s.socket:
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                try:
                    sock.settimeout(s.timeout)
                    sock.connect(s.socket)
                except OSError:
                    sock.close()
                    raise
            else:
                sock = socket.create_connection((s.host, s.port), timeout=s.timeout)
        except OSError as exc:
            where = s.socket or f"{s.host}:{s.port}"
            raise ClamdError(f"cannot connect to clamd at {where}: {exc}") from exc
        return sock

    @staticmethod
    def _reply(sock: socket.socket) -> str:
        data = b""
        while not data.endswith(b"\0"):
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
            if len(data) > 65536:
                raise ClamdError("clamd reply too long")
        return data.rstrip(b"\0").decode("utf-8", "replace").strip()

    def _command(self, command: bytes) -> str:
        with self._connect() as sock:
            try:
                sock.sendall(b"z" + command + b"\0")
                return self._reply(sock)
            except OSError as exc:
                raise ClamdError(f"clamd {command.decode()}: {exc}") from exc

    def ping(self) -> bool:
        return self._command(b"PING") == "PONG"

    def version(self) -> str:
        return self._command(b"VERSION")

    def scan(self, data: bytes) -> ClamdResult:
        if len(data) > self.settings.max_stream_bytes:
            raise ClamdError(f"{len(data)} bytes exceed max_stream_bytes "
                             f"({self.settings.max_stream_bytes}); not scanned")
        step = self.settings.chunk_bytes
        with self._connect() as sock:
            try:
                sock.sendall(b"zINSTREAM\0")
                for start in range(0, len(data), step):
                    chunk = data[start : start + step]
                    sock.sendall(struct.pack(">I", len(chunk)) + chunk)
                sock.sendall(struct.pack(">I", 0))
                reply = self._reply(sock)
            except OSError as exc:
                raise ClamdError(f"clamd INSTREAM: {exc}") from exc
        return parse_reply(reply)


def parse_reply(reply: str) -> ClamdResult:
    """``stream: OK`` / ``stream: Sig.Name FOUND`` / anything else is an error."""
    body = reply.split(":", 1)[1].strip() if ":" in reply else reply
    if body == "OK":
        return ClamdResult(False)
    if body.endswith(" FOUND"):
        return ClamdResult(True, body[: -len(" FOUND")].strip())
    raise ClamdError(f"clamd: {reply[:200]}")
