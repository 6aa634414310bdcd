"""``mailsift serve`` logging to stderr, the systemd journal and syslog (issue 19, part 8).

The journal is detected the way systemd announces it (``JOURNAL_STREAM`` names the device and
inode of stderr), checked in a child process whose stderr is a file; syslog is checked with a
real UDP syslog listener on 127.0.0.1.
"""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from mailsift.config.gateway import LogSettings
from mailsift.interfaces.cli.logs import configure_logging

_CHILD = """
import logging, sys
from mailsift.config.gateway import LogSettings
from mailsift.interfaces.cli.logs import configure_logging
print(configure_logging(LogSettings(target=sys.argv[1])), flush=True)
log = logging.getLogger("mailsift.test")
log.info("ready")
log.warning("next hop down")
try:
    raise ValueError("boom")
except ValueError:
    log.exception("scan failed")
"""


def _child(target: str, tmp_path: Path, journal: bool) -> tuple[str, str]:
    err = tmp_path / "stderr"
    with err.open("w") as fh:
        env = {k: v for k, v in os.environ.items() if k != "JOURNAL_STREAM"}
        if journal:
            st = os.fstat(fh.fileno())
            env["JOURNAL_STREAM"] = f"{st.st_dev}:{st.st_ino}"
        out = subprocess.run([sys.executable, "-c", _CHILD, target], stderr=fh, env=env,
                             stdout=subprocess.PIPE, text=True,
                             timeout=60, check=True).stdout.strip()
    return out, err.read_text()


def test_auto_uses_the_journal_when_systemd_connected_stderr(tmp_path: Path) -> None:
    target, text = _child("auto", tmp_path, journal=True)
    assert target == "journal"
    lines = text.splitlines()
    assert lines[0] == "<6>mailsift.test: ready"  # no time stamp: journald adds its own
    assert lines[1] == "<4>mailsift.test: next hop down"
    assert lines[2] == "<3>mailsift.test: scan failed"
    # every line of the traceback keeps the error priority
    assert len(lines) > 4 and all(line.startswith("<3>") for line in lines[2:])


def test_auto_is_plain_stderr_otherwise(tmp_path: Path) -> None:
    target, text = _child("auto", tmp_path, journal=False)
    assert target == "stderr"
    first = text.splitlines()[0]
    assert first.endswith("INFO    mailsift.test: ready") and not first.startswith("<")


@pytest.fixture
def syslog_server() -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(10)
    yield sock
    sock.close()


def test_syslog_to_a_remote_server_with_the_mail_facility(syslog_server: socket.socket) -> None:
    port = syslog_server.getsockname()[1]
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    try:
        target = configure_logging(LogSettings(target="syslog",
                                               syslog_address=f"127.0.0.1:{port}"), "INFO")
        assert target == "syslog"
        logging.getLogger("mailsift.gateway").warning("quarantined ms-abc")
        data = syslog_server.recv(4096).decode()
    finally:
        for handler in root.handlers:
            handler.close()
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
    # <PRI> = facility mail (2) * 8 + warning (4) = 20
    assert data.startswith(f"<20>mailsift[{os.getpid()}]: mailsift.gateway: quarantined ms-abc")
