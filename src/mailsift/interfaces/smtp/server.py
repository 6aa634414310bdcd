"""SMTP listener on aiosmtpd: takes a message, hands it to the gateway, answers what it says.

- The reply to DATA comes only after the gateway relayed or durably stored the message.
- XFORWARD (Postfix's way of passing the original client to a content filter) is offered and
  read, so authentication sees the real client instead of Postfix on 127.0.0.1.
- Lines up to ``max_line_bytes`` are accepted (RFC 5321 says 1000, real mail breaks it), 8BITMIME
  and SMTPUTF8 are offered, and only CRLF.CRLF ends DATA (no SMTP smuggling).
- DATA is read in large pieces by :mod:`.data` (aiosmtpd reads it line by line, which was the
  largest cost of the event loop); the rules, replies and handler call are aiosmtpd's.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import re
import socket
from typing import Any

from aiosmtpd.smtp import SMTP, Session
from aiosmtpd.smtp import Envelope as SmtpEnvelope

from mailsift.config.gateway import SmtpSettings
from mailsift.core.envelope import Connection, Envelope
from mailsift.interfaces.smtp.data import read_data
from mailsift.services.gateway import Gateway

__all__ = ["SmtpListener", "null_sender"]

log = logging.getLogger("mailsift.smtp")
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
_XFORWARD_ATTRS = ("NAME", "ADDR", "PROTO", "HELO", "SOURCE", "PORT", "IDENT")
# <dot-atom@domain>: what nearly every MAIL FROM / RCPT TO carries. aiosmtpd parses each with the
# email package's header parser (and builds a class per call); this form needs no parser.
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_PLAIN_PATH = re.compile(rf"\s*<({_ATOM}(?:\.{_ATOM})*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*)>")


def null_sender(mail_from: str | None) -> str:
    """aiosmtpd hands over ``MAIL FROM:<>`` (bounces, delivery receipts) as the literal
    ``<>``; the envelope's null sender is ``""``. Left as ``<>`` it was refused by the relay
    (553) and checked by SPF as a domain, and Postfix then bounced the bounce."""
    return "" if mail_from is None or mail_from.strip() == "<>" else mail_from


class _Smtp(SMTP):
    """aiosmtpd's SMTP with longer lines and the XFORWARD command."""

    def __init__(self, handler: Any, *, xforward: bool,
                 xforward_hosts: tuple[IPNetwork, ...] = (), **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self._xforward = xforward
        self._xforward_hosts = xforward_hosts

    def xforward_allowed(self) -> bool:
        """Only the MTAs in front of us may say who the client was (``[smtp] xforward_hosts``):
        from anyone else XFORWARD would let a client choose the address SPF checks."""
        if not self._xforward or self.session is None:
            return False
        peer = self.session.peer
        try:
            addr = ipaddress.ip_address(peer[0] if isinstance(peer, tuple) else str(peer))
        except ValueError:
            return False
        if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
            addr = addr.ipv4_mapped
        return any(addr in net for net in self._xforward_hosts)

    def _getaddr(self, arg: str) -> tuple[str | None, str | None]:
        """aiosmtpd's address parsing, with a fast path for a plain ``<local@domain>``."""
        m = _PLAIN_PATH.match(arg)
        if m is None or "(" in arg:  # anything else, comments included: aiosmtpd's parser
            return super()._getaddr(arg)
        addr = m.group(1)
        if self.local_part_limit and len(addr.rpartition("@")[0]) > self.local_part_limit:
            return None, None
        return addr, arg[m.end():].lstrip()

    async def smtp_XFORWARD(self, arg: str) -> None:
        if not self._xforward or self.session is None:
            await self.push("502 5.5.1 XFORWARD not enabled")
            return
        if not self.xforward_allowed():
            await self.push("550 5.7.0 XFORWARD not allowed from this client")
            return
        attrs: dict[str, str] = getattr(self.session, "xforward", {})
        for item in (arg or "").split():
            key, _, value = item.partition("=")
            key = key.upper()
            if key not in _XFORWARD_ATTRS:
                await self.push(f"501 5.5.4 Bad XFORWARD attribute {key}")
                return
            if value and value != "[UNAVAILABLE]" and value != "[TEMPUNAVAIL]":
                attrs[key] = value
        self.session.xforward = attrs  # type: ignore[attr-defined]
        await self.push("250 2.0.0 Ok")

    async def smtp_DATA(self, arg: str) -> None:
        """aiosmtpd's DATA command with :func:`read_data` in place of its line-by-line loop."""
        if await self.check_helo_needed() or await self.check_auth_needed("DATA"):
            return
        assert self.envelope is not None
        if not self.envelope.rcpt_tos:
            await self.push("503 Error: need RCPT command")
            return
        if arg:
            await self.push("501 Syntax: DATA")
            return
        await self.push("354 End data with <CR><LF>.<CR><LF>")
        try:
            outcome = await read_data(self._reader, max_line=self.line_length_limit,
                                      max_bytes=self.data_size_limit)
        except (asyncio.IncompleteReadError, asyncio.CancelledError) as exc:
            log.info("connection lost during DATA")  # nothing was accepted: nothing is lost
            self._writer.close()
            if isinstance(exc, asyncio.CancelledError):
                raise
            return
        if outcome.problem is not None:
            await self.push(outcome.problem.value)
            self._set_post_data_state()  # type: ignore[no-untyped-call]
            return
        self.envelope.content = self.envelope.original_content = outcome.content
        status = await self._call_handler_hook("DATA")
        self._set_post_data_state()  # type: ignore[no-untyped-call]
        await self.push(status)


class _Handler:
    def __init__(self, gateway: Gateway, settings: SmtpSettings) -> None:
        self.gateway = gateway
        self.settings = settings

    async def handle_EHLO(self, server: SMTP, session: Session, envelope: SmtpEnvelope,
                          hostname: str, responses: list[str]) -> list[str]:
        session.host_name = hostname
        if isinstance(server, _Smtp) and server.xforward_allowed():
            responses.insert(-1, "250-XFORWARD NAME ADDR PROTO HELO SOURCE PORT IDENT")
        return responses

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: SmtpEnvelope,
                          address: str, rcpt_options: list[str]) -> str:
        if address.strip() in ("", "<>"):
            # RFC 5321 has no null recipient; accepted, it failed only at relay time
            return "553 5.1.3 The null recipient <> is not a valid address"
        if self.gateway.ratelimit is not None:
            # client, sender and user counted once per transaction, every recipient
            first = not getattr(envelope, "mailsift_counted", False)
            envelope.mailsift_counted = True  # type: ignore[attr-defined]
            deferral = await self.gateway.admit_recipient(
                self._envelope(session, envelope), address, user=_login(session), first=first)
            if deferral is not None:
                return deferral.line
        envelope.rcpt_tos.append(address)  # what aiosmtpd does without this hook
        envelope.rcpt_options.extend(rcpt_options)
        return "250 OK"

    def _envelope(self, session: Session, envelope: SmtpEnvelope) -> Envelope:
        xf: dict[str, str] = getattr(session, "xforward", {})
        peer = session.peer[0] if isinstance(session.peer, tuple) else None
        if xf.get("ADDR"):
            addr = xf["ADDR"]
            conn = Connection(client_ip=addr.removeprefix("IPV6:"), client_name=xf.get("NAME"),
                              helo=xf.get("HELO"), tls=False)
        elif self.settings.mode == "before_queue":
            conn = Connection(client_ip=peer, helo=session.host_name,
                              tls=session.ssl is not None)
        else:
            # After-queue without XFORWARD: the peer is our own MTA; the real client comes
            # from our Received header (trusted relays) during authentication.
            conn = Connection()
        return Envelope(
            mail_from=null_sender(envelope.mail_from),
            rcpt_to=tuple(envelope.rcpt_tos),
            connection=conn,
            smtputf8="SMTPUTF8" in (o.upper() for o in envelope.mail_options),
        )

    async def handle_DATA(self, server: SMTP, session: Session, envelope: SmtpEnvelope) -> str:
        raw = envelope.original_content or envelope.content
        assert isinstance(raw, bytes)
        reply = await self.gateway.process(raw, self._envelope(session, envelope))
        return reply.line


def _login(session: Session) -> str | None:
    """The SMTP AUTH user of the session, if it authenticated."""
    login = getattr(session, "login_data", None)
    if isinstance(login, bytes):
        return login.decode("utf-8", "replace") or None
    return str(login) if login else None


class SmtpListener:
    def __init__(self, gateway: Gateway, settings: SmtpSettings) -> None:
        self.gateway = gateway
        self.settings = settings
        self.server: asyncio.base_events.Server | None = None

    def _factory(self) -> _Smtp:
        # The line limit is read when the stream reader is made inside SMTP.__init__, so it
        # must be a class attribute, not set afterwards.
        cls: type[_Smtp] = type("MailsiftSMTP", (_Smtp,),
                                {"line_length_limit": self.settings.max_line_bytes})
        return cls(
            _Handler(self.gateway, self.settings),
            xforward=self.settings.xforward,
            xforward_hosts=tuple(ipaddress.ip_network(h, strict=False)
                                 for h in self.settings.xforward_hosts),
            data_size_limit=self.settings.max_message_bytes,
            enable_SMTPUTF8=True,
            decode_data=False,
            hostname=self.settings.hostname or socket.getfqdn(),
            timeout=self.settings.timeout,
        )

    async def start(self) -> int:
        loop = asyncio.get_running_loop()
        self.server = await loop.create_server(self._factory, host=self.settings.host,
                                               port=self.settings.port, reuse_address=True)
        port = int(self.server.sockets[0].getsockname()[1])
        log.info("SMTP %s listening on %s:%d", self.settings.mode, self.settings.host, port)
        return port

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()
