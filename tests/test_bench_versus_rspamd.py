"""``bench/versus_rspamd.py`` (issue 26): it skips with a reason where Rspamd is missing, and
the private Rspamd config it writes keeps Rspamd on loopback and off the network."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import ModuleType

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"


@pytest.fixture(scope="module")
def versus() -> ModuleType:
    sys.path.insert(0, str(BENCH))
    try:
        return importlib.import_module("versus_rspamd")
    finally:
        sys.path.remove(str(BENCH))


def test_skips_with_the_reason_without_rspamd(versus: ModuleType, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no rspamd, rspamc or redis-server here
    monkeypatch.setattr(sys, "argv", ["versus_rspamd.py"])
    assert versus.main() == 0
    out = capsys.readouterr().out
    assert out.startswith("skipped: rspamd, rspamc, redis-server not installed")
    assert "apt-get install" in out


def test_private_config_is_loopback_and_offline(versus: ModuleType, tmp_path: Path) -> None:
    versus.write_rspamd_config(tmp_path, normal=1101, controller=1102, redis=1103, dns=1104,
                               workers=2)
    text = {p.relative_to(tmp_path).as_posix(): p.read_text()
            for p in tmp_path.rglob("*") if p.is_file()}
    assert 'bind_socket = "127.0.0.1:1101"' in text["override.d/worker-normal.inc"]
    assert "count = 2;" in text["override.d/worker-normal.inc"]
    assert 'bind_socket = "127.0.0.1:1102"' in text["override.d/worker-controller.inc"]
    assert "enabled = false" in text["override.d/worker-proxy.inc"]
    assert 'nameserver = ["127.0.0.1:1104"]' in text["local.d/options.inc"]
    assert 'servers = "127.0.0.1:1103"' in text["local.d/classifier-bayes.conf"]
    for module in ("rbl", "spf", "dkim", "dmarc", "fuzzy_check", "phishing", "rspamd_update"):
        assert text[f"local.d/{module}.conf"] == "enabled = false;\n"
    # every address the config names is on loopback
    for body in text.values():
        for word in body.replace('"', " ").replace("[", " ").split():
            if word[:1].isdigit() and word.count(".") == 3:
                assert word.startswith("127.0.0.1"), word


def test_mailsift_config_is_valid_toml_for_the_node(versus: ModuleType, tmp_path: Path) -> None:
    from mailsift.config import load_settings

    path = versus.mailsift_config(tmp_path, smtp=2525, http=8099, sink=2526, workers=2)
    settings = load_settings(str(path), environ={}, use_default_paths=False).settings
    assert (settings.smtp.port, settings.http.port) == (2525, 8099)
    assert settings.gateway.next_hop_port == 2526 and settings.gateway.workers == 2
    assert settings.scan.offline and not settings.milter.enabled
