"""Settings of the running gateway: listeners (SMTP, milter, HTTP), next hop, scan workers.

Defaults follow Postfix's after-queue content-filter convention: mailsift listens on
127.0.0.1:10025 and re-injects into Postfix on 127.0.0.1:10026.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from mailsift.config.fields import Networks

__all__ = [
    "GatewaySettings",
    "HttpSettings",
    "LogSettings",
    "LoginThrottleSettings",
    "MilterSettings",
    "SmtpSettings",
]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)


class SmtpSettings(_Section):
    """The SMTP listener (content filter or before-queue proxy)."""

    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = Field(10025, ge=0, le=65535)
    mode: Literal["after_queue", "before_queue"] = Field(
        "after_queue",
        description="after_queue: Postfix content_filter (the client is Postfix; the real client "
        "comes from XFORWARD or our Received header); before_queue: smtpd_proxy_filter or "
        "direct, rejecting during the SMTP dialogue",
    )
    hostname: str = Field("", description="name in the greeting; empty = the machine's name")
    max_message_bytes: int = Field(50 * 1024 * 1024, ge=1024)
    max_line_bytes: int = Field(
        64 * 1024, ge=1001, description="longest accepted line (RFC 5321 says 1000; mail breaks it)"
    )
    timeout: float = Field(300.0, gt=0)
    xforward: bool = Field(True, description="offer XFORWARD so Postfix passes the real client")
    xforward_hosts: Networks = Field(
        ("127.0.0.0/8", "::1"), description="clients (addresses or networks) allowed to send "
        "XFORWARD: the MTAs in front of mailsift; anyone else could claim any client address")


class LogSettings(_Section):
    """Where ``mailsift serve`` logs (``--log-level`` overrides ``level``)."""

    target: Literal["auto", "stderr", "journal", "syslog"] = Field(
        "auto",
        description="auto: the journal when systemd connected stderr to it (JOURNAL_STREAM), "
        "else stderr; journal: stderr lines with syslog priority prefixes and no time stamps "
        "(journald adds its own); syslog: to syslog_address",
    )
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    syslog_address: str = Field(
        "/dev/log", description="a unix socket path, or host:port (UDP) for a remote syslog")
    syslog_facility: Literal["mail", "daemon", "user", "local0", "local1", "local2", "local3",
                             "local4", "local5", "local6", "local7"] = Field(
        "mail", description="mail: next to Postfix's own lines (/var/log/mail.log)")


class MilterSettings(_Section):
    """The milter listener (needs the ``milter`` extra: pymilter on Debian's libmilter-dev)."""

    enabled: bool = False
    socket: str = Field("inet:9900@127.0.0.1", description="libmilter socket spec")
    quarantine: Literal["hold", "store"] = Field(
        "store",
        description="hold: Postfix keeps the message in its hold queue; store: mailsift keeps "
        "it in its quarantine and Postfix discards its copy",
    )
    timeout: float = Field(60.0, gt=0)


class LoginThrottleSettings(_Section):
    """Failed console sign-ins, counted in the store (so every node counts together) per
    username and per client address; a locked key is refused even with the right password."""

    enabled: bool = True
    user_attempts: int = Field(
        5, ge=1, description="failed sign-ins of one username within window_seconds that lock it "
        "(whether or not the user exists)")
    address_attempts: int = Field(
        20, ge=1, description="failed sign-ins from one client address (an IPv6 /ipv6_prefix "
        "network) within window_seconds that lock the address, whatever the usernames")
    window_seconds: float = Field(900.0, gt=0, description="counting window, from its first "
                                  "failure")
    lockout_seconds: float = Field(300.0, gt=0, description="first lockout; each further one "
                                   "doubles it")
    max_lockout_seconds: float = Field(3600.0, gt=0, description="longest lockout")
    forget_seconds: float = Field(
        86400.0, gt=0, description="after this long without an attempt the back-off starts "
        "again from lockout_seconds (a successful sign-in resets a username at once)")
    ipv6_prefix: int = Field(64, ge=1, le=128, description="IPv6 clients are counted per "
                             "network of this length (one host usually holds a whole /64)")

    @model_validator(mode="after")
    def _lockouts_grow(self) -> LoginThrottleSettings:
        if self.max_lockout_seconds < self.lockout_seconds:
            raise ValueError("max_lockout_seconds must be at least lockout_seconds")
        return self


class HttpSettings(_Section):
    """The HTTP listener: REST API (tokens), scan endpoints and the web console."""

    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = Field(8025, ge=0, le=65535)
    max_message_bytes: int = Field(50 * 1024 * 1024, ge=1024)
    scan_requires_token: bool = Field(
        False, description="require an API token on /v1/scan and /checkv2 (MTAs speaking "
        "Rspamd's protocol usually cannot send one; keep the listener on loopback then)")
    login_throttle: LoginThrottleSettings = Field(default_factory=LoginThrottleSettings)
    trusted_proxies: Networks = Field(
        (), description="reverse proxies (addresses or networks) whose X-Forwarded-For and "
        "X-Forwarded-Proto are believed; empty: the connection's address is the client's")
    api_docs: bool = Field(False, description="serve /docs and /redoc (their pages load "
                           "scripts from a public CDN); /openapi.json is always served")


class GatewaySettings(_Section):
    """How accepted mail is relayed and how scanning is scheduled."""

    next_hop_host: str = "127.0.0.1"
    next_hop_port: int = Field(10026, ge=1, le=65535)
    next_hop_timeout: float = Field(60.0, gt=0)
    relay_connections: int = Field(8, ge=1, le=256)
    workers: int = Field(2, ge=0, le=64, description="scan processes; 0 = scan in-process")
    scan_timeout: float = Field(30.0, gt=0, description="a scan that takes longer -> tempfail "
                                "(counted from when a worker has the message)")
    queue_timeout: float = Field(
        120.0, gt=0, description="how long a message may wait for a free scan worker -> "
        "tempfail; not part of scan_timeout, and no worker is killed for it")
    authserv_id: str = Field("", description="empty = [auth] authserv_id")
    junk_subject_tag: str = Field("", description='e.g. "[SPAM] "; empty = subject unchanged')
    add_headers: bool = True
    reject_text: str = "5.7.1 Message rejected as {category} (ref {ref})"
    tempfail_text: str = "4.7.1 Message deferred, try again later (ref {ref})"
    spool_dir: str = Field("", description="retry spool; empty = <store.data_dir>/spool")
    spool_retry_seconds: float = Field(30.0, gt=0, description="first retry of a spooled "
                                       "copy; doubled per attempt, at most 32 times this")
    spool_max_age_seconds: float = Field(
        5 * 86400.0, gt=0, description="a copy still deferred this long after it was accepted "
        "fails for good: DSN to the sender, trace status bounced (Postfix: "
        "maximal_queue_lifetime)")
    dsn: bool = Field(True, description="send a delivery status notification (RFC 3464) to "
                      "the sender of a copy that fails for good after the 250; false: the "
                      "trace says failed and nobody is told")
    lists_refresh_seconds: float = Field(10.0, gt=0)
    uvloop: bool = Field(True, description="run on uvloop's event loop when it is installed "
                         "(less CPU per SMTP session); false = asyncio's own")
