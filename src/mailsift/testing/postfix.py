"""A private Postfix instance for tests: own config, queue and data directories, loopback only.

Debian's Postfix (3.7) runs as root with ``postfix -c DIR start`` when nothing is chrooted and
``maillog_file`` is set (no syslog needed). Two layouts mailsift is used with:

* :func:`content_filter_postfix` - after-queue content filter (Postfix FILTER_README): the
  public smtpd hands every message to mailsift through ``content_filter``; mailsift relays it
  back to a second smtpd (re-injection, ``content_filter`` empty), which sends it on to the
  ``relayhost`` (a test sink).
* :func:`milter_postfix` - one smtpd with ``smtpd_milters`` pointing at mailsift.

Nothing here touches the machine's own Postfix (``/etc/postfix``, ``/var/spool/postfix``).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from mailsift.testing.service import Service
from mailsift.testing.sink import free_port

__all__ = [
    "PostfixInstance",
    "content_filter_postfix",
    "milter_postfix",
    "postfix_missing",
    "swaks_missing",
]

_POSTFIX = "/usr/sbin/postfix"

# The services every instance needs; all unchrooted ("n" in the chroot column).
_BASE_SERVICES = """\
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""


def postfix_missing() -> str | None:
    """Why a private Postfix cannot run here (``None`` when it can)."""
    if not Path(_POSTFIX).exists() or shutil.which("postconf") is None:
        return "postfix is not installed (apt-get install postfix)"
    return None


def swaks_missing() -> str | None:
    if shutil.which("swaks") is None:
        return "swaks is not installed (apt-get install swaks)"
    return None


class PostfixInstance(Service):
    """One private Postfix: ``with PostfixInstance(root, main, services) as pf: ...``."""

    def __init__(self, root: Path | None, main: Mapping[str, str], services: str,
                 smtp_port: int) -> None:
        # Postfix daemons run as mail_owner and must traverse every parent directory; pytest's
        # tmp_path is private to root (0700), so by default the instance lives in its own
        # world-traversable directory under /tmp, removed again by stop().
        self._own_root = root is None
        self.root = Path(tempfile.mkdtemp(prefix="mailsift-postfix-")) if root is None \
            else Path(root)
        if self._own_root:
            self.root.chmod(0o755)
        self.config_dir = self.root / "etc"
        self.queue_dir = self.root / "queue"
        self.data_dir = self.root / "data"
        self.maillog = self.root / "maillog"
        self.smtp_port = smtp_port
        self.saved_log = ""
        #: every smtpd port of this instance by role ("smtp", "reinject")
        self.ports: dict[str, int] = {"smtp": smtp_port}
        for d in (self.config_dir, self.queue_dir, self.data_dir):
            d.mkdir(parents=True, exist_ok=True)
        # postfix-script checks that the data directory belongs to mail_owner.
        shutil.chown(self.data_dir, user="postfix")
        settings = {
            "compatibility_level": "3.6",
            "queue_directory": str(self.queue_dir),
            "data_directory": str(self.data_dir),
            "maillog_file": str(self.maillog),
            # Postfix refuses a log file outside these prefixes (default: /var, /dev/stdout).
            "maillog_file_prefixes": str(self.root),
            "mail_owner": "postfix",
            "myhostname": "mx.mailsift.test",
            "mydomain": "mailsift.test",
            "mydestination": "",
            "inet_interfaces": "127.0.0.1",
            "inet_protocols": "ipv4",
            "mynetworks": "127.0.0.0/8",
            "smtpd_relay_restrictions": "permit_mynetworks, reject_unauth_destination",
            "alias_maps": "",
            "alias_database": "",
            "local_recipient_maps": "",
            "biff": "no",
            "smtp_dns_support_level": "disabled",
            "smtp_host_lookup": "native",
            "message_size_limit": str(30 * 1024 * 1024),
            # Tests wait for retries after a 4xx: retry within seconds, not minutes.
            "queue_run_delay": "1s",
            "minimal_backoff_time": "1s",
            "maximal_backoff_time": "2s",
            "delay_warning_time": "0",
            "smtpd_banner": "$myhostname ESMTP",
            **main,
        }
        (self.config_dir / "main.cf").write_text(
            "".join(f"{k} = {v}\n" for k, v in settings.items()))
        (self.config_dir / "master.cf").write_text(services + _BASE_SERVICES)

    def _postfix(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run([_POSTFIX, "-c", str(self.config_dir), *args], check=check,
                              capture_output=True, text=True, timeout=60)

    def start(self) -> PostfixInstance:
        proc = self._postfix("start", check=False)
        if proc.returncode != 0:
            raise RuntimeError(f"postfix start failed: {proc.stderr}{proc.stdout}\n{self.log()}")
        self._wait_listening(self.smtp_port, 20)
        return self

    def _wait_listening(self, port: int, timeout: float) -> None:
        import socket

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                    s.recv(100)  # the greeting; closes cleanly afterwards
                    return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"postfix did not listen on {port}: {self.log()}")

    def stop(self) -> None:
        self._postfix("stop", check=False)
        if self._own_root:
            self.saved_log = self.log()
            shutil.rmtree(self.root, ignore_errors=True)


    def log(self) -> str:
        if self.maillog.exists():
            return self.maillog.read_text(errors="replace")
        return self.saved_log

    def flush(self) -> None:
        """Ask Postfix to retry deferred mail now."""
        self._postfix("flush", check=False)

    def queue(self) -> list[dict[str, Any]]:
        """The queue as ``postqueue -j`` reports it (``queue_name``: active, deferred, hold...)."""
        proc = subprocess.run(["postqueue", "-c", str(self.config_dir), "-j"],
                              capture_output=True, text=True, timeout=30)
        return [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]

    def wait(self, predicate: Any, timeout: float = 20.0, interval: float = 0.2) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return True
            time.sleep(interval)
        return bool(predicate())


def _smtpd(port: int, options: Sequence[str] = ()) -> str:
    lines = [f"127.0.0.1:{port} inet n - n - - smtpd"]
    lines += [f"  -o {opt}" for opt in options]
    return "\n".join(lines) + "\n"


def content_filter_postfix(root: Path | None = None, *, filter_port: int, sink_port: int,
                           smtp_port: int = 0, reinject_port: int = 0) -> PostfixInstance:
    """Public smtpd -> ``content_filter`` mailsift -> re-injection smtpd -> relayhost sink."""
    smtp_port = smtp_port or free_port()
    reinject_port = reinject_port or free_port()
    services = (
        _smtpd(smtp_port, [f"content_filter=scan:[127.0.0.1]:{filter_port}"])
        + _smtpd(reinject_port, [
            "content_filter=",
            "receive_override_options=no_unknown_recipient_checks,no_header_body_checks,"
            "no_milters",
            "smtpd_authorized_xforward_hosts=127.0.0.0/8",
            "smtpd_client_restrictions=",
            "smtpd_recipient_restrictions=permit_mynetworks,reject",
            "mynetworks=127.0.0.0/8",
        ])
        # The transport to mailsift: XFORWARD passes the real client, no MIME rewriting.
        + "scan unix - - n - 4 smtp\n"
        "  -o smtp_send_xforward_command=yes\n"
        "  -o disable_mime_output_conversion=yes\n"
        "  -o smtp_generic_maps=\n"
    )
    main = {"relayhost": f"[127.0.0.1]:{sink_port}"}
    pf = PostfixInstance(root, main, services, smtp_port)
    pf.ports["reinject"] = reinject_port
    return pf


def milter_postfix(root: Path | None = None, *, milter_port: int, sink_port: int,
                   smtp_port: int = 0) -> PostfixInstance:
    """One smtpd that asks mailsift (``smtpd_milters``) about every message."""
    smtp_port = smtp_port or free_port()
    main = {
        "relayhost": f"[127.0.0.1]:{sink_port}",
        "smtpd_milters": f"inet:127.0.0.1:{milter_port}",
        "milter_default_action": "tempfail",
        "milter_protocol": "6",
        "milter_content_timeout": "60s",
    }
    return PostfixInstance(root, main, _smtpd(smtp_port), smtp_port)
