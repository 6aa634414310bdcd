"""Where ``mailsift serve`` logs: stderr, the systemd journal, or syslog (``[log]``).

Under systemd, stderr *is* the journal: systemd sets ``JOURNAL_STREAM`` to the device and inode
of the stream it connected, so ``target = "auto"`` can tell. Lines for the journal carry the
sd-daemon(3) priority prefix (``<3>`` error, ``<4>`` warning, ``<6>`` info, ``<7>`` debug), which
journald turns into the entry's priority (``journalctl -p warning`` works), and no time stamp
(journald records its own). Syslog goes through the standard library's ``SysLogHandler`` to
``/dev/log`` or a remote ``host:port``, by default with the ``mail`` facility, next to Postfix.
"""

from __future__ import annotations

import logging
import logging.handlers
import os
import sys
from typing import Literal

from mailsift.config.gateway import LogSettings

__all__ = ["configure_logging", "journal_connected", "log_target"]

#: loggers that chatter per request or per command
_NOISY = ("mail.log", "alembic", "uvicorn.error")
_PRIORITY = {logging.DEBUG: 7, logging.INFO: 6, logging.WARNING: 4, logging.ERROR: 3,
             logging.CRITICAL: 2}


class _JournalFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        prefix = f"<{_PRIORITY.get(record.levelno, 6)}>"
        # every line of a traceback gets the prefix, or journald files them as info
        return "\n".join(prefix + line for line in super().format(record).splitlines())


def journal_connected(environ: dict[str, str] | None = None) -> bool:
    """Whether stderr is the stream systemd connected to the journal."""
    value = (os.environ if environ is None else environ).get("JOURNAL_STREAM", "")
    dev, _, ino = value.partition(":")
    try:
        st = os.fstat(sys.stderr.fileno())
        return bool(dev and ino) and (st.st_dev, st.st_ino) == (int(dev), int(ino))
    except (OSError, ValueError, AttributeError):
        return False


def log_target(settings: LogSettings) -> Literal["stderr", "journal", "syslog"]:
    if settings.target == "auto":
        return "journal" if journal_connected() else "stderr"
    return settings.target


def _syslog_handler(settings: LogSettings) -> logging.Handler:
    address: str | tuple[str, int] = settings.syslog_address
    if not settings.syslog_address.startswith("/"):
        host, _, port = settings.syslog_address.rpartition(":")
        address = (host or settings.syslog_address, int(port) if port.isdigit() else 514)
    facility = logging.handlers.SysLogHandler.facility_names[settings.syslog_facility]
    handler = logging.handlers.SysLogHandler(address=address, facility=facility)
    handler.ident = f"mailsift[{os.getpid()}]: "
    return handler


def configure_logging(settings: LogSettings, level: str | None = None) -> str:
    """Set up the root logger for ``serve``; returns the target chosen."""
    target = log_target(settings)
    handler: logging.Handler
    if target == "syslog":
        handler = _syslog_handler(settings)
        handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
    elif target == "journal":
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(_JournalFormatter("%(name)s: %(message)s"))
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter(
            "%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level or settings.level)
    for noisy in _NOISY:
        logging.getLogger(noisy).setLevel(logging.WARNING)
    return target
