"""Whose word the HTTP listener of ``mailsift serve`` takes (issue 18.10): uvicorn believed
``X-Forwarded-For`` from any local client, which gave every failed sign-in a fresh address and
so bypassed the per-address sign-in throttle. Real gateway, real uvicorn, real store."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx2
import pytest

from mailsift.config.schema import Settings
from mailsift.testing.gateway import RunningGateway
from mailsift.testing.sink import free_port

pytestmark = pytest.mark.timeout(120)


def settings_for(tmp: Path, **http: Any) -> Settings:
    return Settings.model_validate({
        "store": {"data_dir": str(tmp / "data")},
        "gateway": {"next_hop_port": free_port(), "workers": 0},
        "smtp": {"port": 0}, "milter": {"enabled": False}, "scan": {"offline": True},
        "http": {"port": 0, "login_throttle": {"address_attempts": 2, "user_attempts": 50},
                 **http},
    })


def _fail_sign_ins(base: str, count: int) -> list[int]:
    codes = []
    with httpx2.Client(base_url=base, timeout=30) as client:
        for i in range(count):
            form = client.get("/login")
            csrf = form.text.split('name="csrf" value="', 1)[1].split('"', 1)[0]
            res = client.post("/login", data={"username": f"guess{i}", "password": "wrong-pw",
                                              "csrf": csrf, "next": "/"},
                              headers={"X-Forwarded-For": f"198.51.100.{i + 1}"})
            codes.append(res.status_code)
    return codes


def test_security_forwarded_for_is_not_believed_by_default(tmp_path: Path) -> None:
    with RunningGateway(settings_for(tmp_path)) as gw:
        codes = _fail_sign_ins(f"http://127.0.0.1:{gw.ports['http']}", 4)
    assert codes[-1] == 429, codes  # one client address (127.0.0.1), locked after two


def test_forwarded_for_is_believed_from_a_trusted_proxy(tmp_path: Path) -> None:
    with RunningGateway(settings_for(tmp_path, trusted_proxies=["127.0.0.1"])) as gw:
        codes = _fail_sign_ins(f"http://127.0.0.1:{gw.ports['http']}", 4)
    assert 429 not in codes, codes  # four clients behind the proxy, one failure each
