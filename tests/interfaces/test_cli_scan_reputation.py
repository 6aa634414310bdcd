"""`mailsift scan --dns HOST:PORT` sends the DNS-list questions to that server; `--offline`
skips them and says so."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from mailsift.testing.dns import DnsServer
from mailsift.testing.messages import make_message

CONFIG = """
[reputation]
budget = 1.0
[[reputation.ip_lists]]
name = "ZEN"
zone = "zen.test"
codes = { "127.0.0.2" = 6.0, "127.0.0.4" = 4.0 }
[[reputation.domain_lists]]
name = "DBL"
zone = "dbl.test"
codes = { "127.0.1.2" = 7.0 }
"""


def _scan(tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    (tmp / "mailsift.toml").write_text(CONFIG)
    eml = tmp / "m.eml"
    eml.write_bytes(make_message(text="Sign in at https://portal.evil-link.example/login\n"))
    return subprocess.run([sys.executable, "-m", "mailsift", "scan", str(eml), "--format",
                           "json", "--config", str(tmp / "mailsift.toml"), "--client-ip",
                           "192.0.2.2", *args], capture_output=True, text=True, timeout=120)


def test_scan_dns_asks_that_server(tmp_path: Path) -> None:
    zones = {"2.2.0.192.zen.test": {"A": ["127.0.0.2"]},
             "evil-link.example.dbl.test": {"A": ["127.0.1.2"]}}
    with DnsServer(zones) as dns:
        proc = _scan(tmp_path, "--dns", dns.address)
        assert dns.count("2.2.0.192.zen.test", "A") == 1
        assert dns.count("evil-link.example.dbl.test", "A") == 1
    assert proc.returncode in (0, 1), proc.stderr
    found = {f["code"]: f for f in json.loads(proc.stdout)["findings"]}
    assert found["RBL_ZEN"]["evidence"] == ["192.0.2.2 (client) listed: 127.0.0.2"]
    assert found["URIBL_DBL"]["evidence"] == ["evil-link.example (url) listed: 127.0.1.2"]
    assert found["URIBL_DBL"]["weight"] == 7.0


def test_scan_offline_skips_lists_and_says_so(tmp_path: Path) -> None:
    proc = _scan(tmp_path, "--offline")
    assert "DNS lists ([reputation]) are not queried" in proc.stderr
    codes = {f["code"] for f in json.loads(proc.stdout)["findings"]}
    assert "REPUTATION_OFFLINE" in codes and "RBL_ZEN" not in codes
