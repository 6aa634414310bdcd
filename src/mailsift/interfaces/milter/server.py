"""The milter listener on pymilter (Sendmail's libmilter): callbacks -> gateway -> MTA actions.

Why pymilter: it wraps libmilter, the reference implementation of the protocol that Postfix and
Sendmail are tested against, so negotiation, macros and header-edit semantics are the MTA's own.
Two consequences shape this module:

* libmilter is a process-wide singleton (one registered filter, one ``smfi_main``) and cannot
  be started again after ``smfi_stop`` in the same process, so a second ``start()`` raises
  :class:`ConfigError` instead of failing silently. ``mailsift serve`` starts it once.
* Callbacks run in libmilter's own threads (one per MTA connection). The end-of-message
  callback hands the rebuilt message to the gateway's event loop with
  ``run_coroutine_threadsafe`` and waits for the decision there; the scan itself runs in the
  gateway's worker pool, so neither the loop nor other connections are blocked.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
from dataclasses import dataclass, replace
from typing import Any

from mailsift.auth.relays import strip_forged_results
from mailsift.config.gateway import GatewaySettings, MilterSettings
from mailsift.core.envelope import Connection
from mailsift.core.errors import ConfigError
from mailsift.delivery.headers import tag_subject
from mailsift.interfaces.milter.decision import MilterDecision, MilterService
from mailsift.interfaces.milter.message import (
    Transaction,
    edits_between,
    fold_value,
    strip_brackets,
)
from mailsift.services.gateway import Gateway
from mailsift.services.release_mark import RELEASE_HEADER, SIG_HEADER

__all__ = ["MilterListener", "parse_socket_spec"]

log = logging.getLogger("mailsift.milter")
_NAME = "mailsift"


def parse_socket_spec(spec: str) -> tuple[str, str, int]:
    """libmilter socket spec -> (family, host-or-path, port): ``inet:9900@127.0.0.1``,
    ``inet6:9900@::1``, ``unix:/run/mailsift.sock`` (``local:`` is the same as ``unix:``)."""
    family, sep, rest = spec.partition(":")
    family = family.lower()
    if not sep:
        raise ConfigError(f"[milter] socket {spec!r}: expected inet:PORT@HOST or unix:PATH")
    if family in ("unix", "local"):
        return "unix", rest, 0
    if family not in ("inet", "inet6"):
        raise ConfigError(f"[milter] socket {spec!r}: unknown family {family!r}")
    port_text, _, host = rest.partition("@")
    try:
        port = int(port_text)
    except ValueError as exc:
        raise ConfigError(f"[milter] socket {spec!r}: bad port {port_text!r}") from exc
    if not 0 <= port <= 65535:
        raise ConfigError(f"[milter] socket {spec!r}: port out of range")
    return family, host or ("::1" if family == "inet6" else "127.0.0.1"), port


def _free_port(family: str, host: str) -> int:
    """libmilter cannot report the port it bound, so port 0 is resolved here first."""
    af = socket.AF_INET6 if family == "inet6" else socket.AF_INET
    with socket.socket(af, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class _Context:
    service: MilterService
    loop: asyncio.AbstractEventLoop
    timeout: float
    authserv_id: str


_context: _Context | None = None
_started = False


_RELEASE_MARKS = (RELEASE_HEADER.lower(), SIG_HEADER.lower())


def _is_forged(name: str, value: bytes, authserv_id: str, *, released: bool = False) -> bool:
    """Our own result headers never come from outside; nor do A-R headers in our name. On a
    copy we released (its signed mark verified by the gateway: ``released``) the release marks
    are ours and stay, so the recipient's copy still names its release."""
    if name.startswith("x-mailsift-"):
        return not (released and name in _RELEASE_MARKS)
    if name != "authentication-results":
        return False
    field = b"Authentication-Results: " + value + b"\r\n\r\n"
    return strip_forged_results(field, authserv_id) != field


def _milter_class() -> type[Any]:
    import Milter

    class MailsiftMilter(Milter.Base):  # type: ignore[misc]
        """One MTA connection (libmilter makes one instance per connection)."""

        def __init__(self) -> None:
            self.txn = Transaction()
            self._counted = False  # this transaction counted against the rate limits

        def connect(self, hostname: str, family: int, hostaddr: Any) -> int:
            ip = None
            if family in (socket.AF_INET, socket.AF_INET6) and hostaddr:
                ip = str(hostaddr[0])
            # Postfix says "unknown" (or "[ip]") when the client has no verified name
            name = None if not hostname or hostname == "unknown" or hostname.startswith("[") \
                else hostname
            self.txn.connection = Connection(client_ip=ip, client_name=name)
            return int(Milter.CONTINUE)

        def hello(self, heloname: str) -> int:
            tls = bool(self.getsymval("{tls_version}"))
            self.txn.connection = replace(self.txn.connection, helo=heloname, tls=tls)
            return int(Milter.CONTINUE)

        def envfrom(self, mail_from: str, *params: str) -> int:
            self.txn.start(mail_from, params)
            self._counted = False
            return int(Milter.CONTINUE)

        def envrcpt(self, rcpt: str, *params: str) -> int:
            address = strip_brackets(rcpt)
            ctx = _context
            if ctx is not None and ctx.service.gateway.ratelimit is not None:
                refused = self._rate_limited(ctx, address)
                if refused:
                    return int(Milter.TEMPFAIL)
            self.txn.rcpt_to.append(address)
            return int(Milter.CONTINUE)

        def _rate_limited(self, ctx: _Context, address: str) -> bool:
            """Rate limits at RCPT time, decided on the gateway's loop; a limiter that cannot
            answer lets the recipient through (its trouble must not stop mail)."""
            first = not self._counted
            self._counted = True
            user = self.getsymval("{auth_authen}") or None
            env = self.txn.envelope()
            future = asyncio.run_coroutine_threadsafe(
                ctx.service.gateway.admit_recipient(env, address, user=user, first=first),
                ctx.loop)
            try:
                deferral = future.result(ctx.timeout)
            except Exception as exc:
                future.cancel()
                log.warning("rate limit check failed, recipient let through: %r", exc)
                return False
            if deferral is None:
                return False
            xcode, _, text = deferral.text.partition(" ")
            self.setreply(str(deferral.code), xcode, text.replace("%", "%%"))
            return True

        @Milter.decode("bytes")  # type: ignore[untyped-decorator]
        def header(self, name: bytes | str, value: bytes) -> int:
            raw_name = name.encode("latin-1") if isinstance(name, str) else name
            self.txn.headers.append((raw_name, value))
            return int(Milter.CONTINUE)

        def body(self, chunk: bytes) -> int:
            self.txn.body.append(chunk)
            return int(Milter.CONTINUE)

        def eom(self) -> int:
            ctx = _context
            if ctx is None:
                self.setreply("451", "4.3.0", "Scanner not ready, try again later")
                return int(Milter.TEMPFAIL)
            future = asyncio.run_coroutine_threadsafe(
                ctx.service.decide(self.txn.raw(), self.txn.envelope()), ctx.loop)
            try:
                decision = future.result(ctx.timeout)
            except Exception as exc:  # timeout, loop gone: the MTA keeps the message
                future.cancel()
                log.error("milter decision failed: %r", exc)
                self.setreply("451", "4.3.0", "Temporary scanning problem, try again later")
                return int(Milter.TEMPFAIL)
            return self._apply(decision, ctx)

        def _apply(self, d: MilterDecision, ctx: _Context) -> int:
            if d.kind in ("reject", "tempfail"):
                self.setreply(d.rcode, d.xcode, d.text.replace("%", "%%"))
                return int(Milter.REJECT if d.kind == "reject" else Milter.TEMPFAIL)
            if d.kind == "discard":
                return int(Milter.DISCARD)
            # Delete the forged ones from the last occurrence back, so earlier indices hold.
            for name, index, value in reversed(self.txn.occurrences()):
                if _is_forged(name, value, ctx.authserv_id, released=bool(d.release_id)):
                    self.chgheader(name, index, "")
            if d.raw:
                if d.subject_tag:  # tagged on top of what the flow rules made of the subject
                    d = replace(d, raw=tag_subject(d.raw, d.subject_tag), subject_tag="")
                self._flow_edits(d)
            for add_name, add_value in reversed(d.add_headers):
                self.addheader(add_name, fold_value(add_value), 0)
            if d.subject_tag:
                self._tag_subject(d.subject_tag)
            if d.kind == "hold":
                self.quarantine(d.text)
            return int(Milter.ACCEPT)

        def _flow_edits(self, d: MilterDecision) -> None:
            """Flow-rule edits (and outbound stripping) as milter actions."""
            ops, body = edits_between(self.txn.raw(), d.raw, drop=d.strip_prefixes)
            for op, name, index, value in ops:
                if op == "change":
                    self.chgheader(name, index, value)
                else:
                    self.addheader(name, value, index)
            if body is not None:
                self.replacebody(body)
            if d.rcpt_to is not None:
                before = {r.lower(): r for r in self.txn.rcpt_to}
                after = {r.lower() for r in d.rcpt_to}
                for rcpt in d.rcpt_to:
                    if rcpt.lower() not in before:
                        self.addrcpt(f"<{rcpt}>")
                for low, rcpt in before.items():
                    if low not in after:
                        self.delrcpt(f"<{rcpt}>")

        def _tag_subject(self, tag: str) -> None:
            for name, index, value in self.txn.occurrences():
                if name == "subject":
                    text = value.decode("utf-8", "replace")
                    if not text.lstrip().startswith(tag.strip()):
                        self.chgheader("Subject", index, tag + text.lstrip())
                    return
            self.addheader("Subject", tag.strip(), -1)

        def abort(self) -> int:
            self.txn = Transaction(connection=self.txn.connection)
            return int(Milter.CONTINUE)

        def close(self) -> int:
            return int(Milter.CONTINUE)

    return MailsiftMilter


class MilterListener:
    """Start/stop the libmilter listener for a gateway (once per process)."""

    def __init__(self, gateway: Gateway, settings: MilterSettings,
                 gateway_settings: GatewaySettings) -> None:
        self.gateway = gateway
        self.settings = settings
        self.service = MilterService(gateway, gateway_settings, settings)
        self._thread: threading.Thread | None = None
        self.spec = ""

    async def start(self) -> int:
        """Bind and serve; returns the TCP port (0 for a unix socket)."""
        global _context, _started
        try:
            import Milter
            import milter
        except ImportError as exc:
            raise ConfigError("[milter] enabled = true needs pymilter: pip install "
                              "'mailsift[milter]' (and Debian's libmilter-dev), or set "
                              "[milter] enabled = false") from exc
        if _started:
            raise ConfigError("libmilter runs one milter listener per process and cannot be "
                              "restarted in it; start mailsift again instead")
        family, host, port = parse_socket_spec(self.settings.socket)
        if family == "unix":
            self.spec = f"unix:{host}"
        else:
            port = port or _free_port(family, host)
            self.spec = f"{family}:{port}@{host}"
        _context = _Context(self.service, asyncio.get_running_loop(), self.settings.timeout,
                            self.gateway.authserv_id)
        cls = _milter_class()
        Milter.factory = cls
        milter.set_flags(Milter.ADDHDRS | Milter.CHGHDRS | Milter.QUARANTINE | Milter.CHGBODY
                         | Milter.ADDRCPT | Milter.DELRCPT)
        # A Python exception in a callback must keep the mail at the MTA, never accept it.
        milter.set_exception_policy(Milter.TEMPFAIL)
        _register(Milter, milter, self.spec, self.settings.timeout)
        _started = True
        self._thread = threading.Thread(target=_serve, args=(milter,), name="mailsift-milter",
                                        daemon=True)
        self._thread.start()
        log.info("milter listening on %s", self.spec)
        return port

    async def stop(self) -> None:
        global _context
        if self._thread is None:
            return
        import milter

        milter.stop()
        await asyncio.get_running_loop().run_in_executor(None, self._thread.join, 10.0)
        self._thread = None
        _context = None


def _register(Milter: Any, milter: Any, spec: str, timeout: float) -> None:
    """``Milter.runmilter`` up to (and including) binding the socket, so errors such as an
    address in use surface in ``start()`` rather than in the background thread."""
    milter.set_connect_callback(Milter.connect_callback)
    milter.set_helo_callback(lambda ctx, host: ctx.getpriv().hello(host))
    milter.set_envfrom_callback(lambda ctx, *b: ctx.getpriv().envfrom_bytes(*b))
    milter.set_envrcpt_callback(lambda ctx, *b: ctx.getpriv().envrcpt_bytes(*b))
    milter.set_header_callback(lambda ctx, f, v: ctx.getpriv().header_bytes(f, v))
    milter.set_eoh_callback(lambda ctx: ctx.getpriv().eoh())
    milter.set_body_callback(lambda ctx, chunk: ctx.getpriv().body(chunk))
    milter.set_eom_callback(lambda ctx: ctx.getpriv().eom())
    milter.set_abort_callback(lambda ctx: ctx.getpriv().abort())
    milter.set_close_callback(Milter.close_callback)
    milter.setconn(spec)
    milter.settimeout(max(1, int(timeout)))
    milter.register(_NAME, data=lambda ctx: ctx.getpriv().data(),
                    unknown=lambda ctx, cmd: ctx.getpriv().unknown(cmd),
                    negotiate=Milter.negotiate_callback)
    try:
        milter.opensocket(True)
    except milter.error as exc:
        raise ConfigError(f"[milter] socket {spec}: cannot listen ({exc})") from exc


def _serve(milter: Any) -> None:
    try:
        milter.main()
    except Exception:
        log.exception("the milter listener stopped with an error")
