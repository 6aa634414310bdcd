"""``/v1/mailflow``: the running gateway's rules and testing rules on a message, with roles."""

from __future__ import annotations

from pathlib import Path

import httpx2

from mailsift.config.schema import Settings
from mailsift.store.store import Store
from mailsift.testing.gateway import RunningGateway
from mailsift.testing.messages import make_message

RULE = """
[[mailflow.rules]]
name = "big-hold"
mode = "test"
[mailflow.rules.if]
subject_words = ["invoice"]
[mailflow.rules.then]
quarantine = true
"""


def test_list_and_test_rules(tmp_path: Path) -> None:
    settings = Settings.model_validate({
        "store": {"data_dir": str(tmp_path / "data")},
        "gateway": {"workers": 0}, "smtp": {"port": 0}, "milter": {"enabled": False},
        "http": {"port": 0}, "scan": {"offline": True},
        "direction": {"accepted_domains": ["customer.test"]},
        "mailflow": {"rules": [{"name": "tag", "if": {"direction": "inbound"},
                                "then": {"prepend_subject": "[EXT] "}}]},
    })
    with Store.open(settings.store) as store:
        analyst = store.tokens.create("analyst", name="ana")[0]
        recipient = store.tokens.create("recipient", name="rcpt",
                                         subject="bob@customer.test")[0]
    with RunningGateway(settings) as gw:
        base = f"http://127.0.0.1:{gw.ports['http']}/v1/mailflow"
        auth = {"Authorization": f"Bearer {analyst}"}
        assert httpx2.get(f"{base}/rules", timeout=30).status_code == 401
        assert httpx2.get(f"{base}/rules", timeout=30, headers={
            "Authorization": f"Bearer {recipient}"}).status_code == 403
        rules = httpx2.get(f"{base}/rules", headers=auth, timeout=30).json()
        assert [r["name"] for r in rules] == ["tag"]
        message = make_message(subject="Invoice 7").decode()
        body = {"message": message, "rcpt": ["bob@customer.test"], "client_ip": "198.51.100.7"}
        got = httpx2.post(f"{base}/test", json=body, headers=auth, timeout=60).json()
        assert got["direction"] == "inbound"
        assert got["rules"] == [{"name": "tag", "mode": "enforce",
                                 "effects": ["prepend subject '[EXT] '"]}]
        assert got["subject"] == "[EXT] Invoice 7" and got["changed"]
        got = httpx2.post(f"{base}/test", json={**body, "rules": RULE}, headers=auth,
                         timeout=60).json()
        assert got["rules"][0]["name"] == "big-hold" and got["action"] == "deliver"
        assert not got["changed"]
        bad = httpx2.post(f"{base}/test", json={**body, "rules": RULE.replace("mode", "mood")},
                         headers=auth, timeout=60)
        assert bad.status_code == 422 and "rules:4: rules.mood: unknown field" in bad.text


def test_stage_and_versions(tmp_path: Path) -> None:
    settings = Settings.model_validate({
        "store": {"data_dir": str(tmp_path / "data")},
        "gateway": {"workers": 0}, "smtp": {"port": 0}, "milter": {"enabled": False},
        "http": {"port": 0}, "scan": {"offline": True},
        "mailflow": {"rules": [{"name": "tag", "then": {"prepend_subject": "[EXT] "}}]},
    })
    with Store.open(settings.store) as store:
        admin = store.tokens.create("admin", name="adm")[0]
        analyst = store.tokens.create("analyst", name="ana")[0]
    with RunningGateway(settings) as gw:
        base = f"http://127.0.0.1:{gw.ports['http']}/v1"
        adm = {"Authorization": f"Bearer {admin}"}
        denied = httpx2.post(f"{base}/mailflow/stage", json={"rules": RULE}, timeout=30,
                             headers={"Authorization": f"Bearer {analyst}"})
        assert denied.status_code == 403
        bad = httpx2.post(f"{base}/mailflow/stage", json={"rules": RULE.replace("mode", "mood")},
                          headers=adm, timeout=30)
        assert bad.status_code == 422 and "rules:4: rules.mood: unknown field" in bad.text
        staged = httpx2.post(f"{base}/mailflow/stage", json={"rules": RULE}, headers=adm,
                             timeout=30).json()
        assert staged["artifact"] == "mailflow:rules" and staged["state"] == "shadow"
        got = httpx2.get(f"{base}/mailflow/versions", headers=adm, timeout=30).json()
        assert got["enforced"] == "config"
        states = {v["version"]: v["state"] for v in got["versions"]}
        assert states[staged["version"]] == "shadow" and "active" in states.values()
        gate = httpx2.post(f"{base}/rollout/mailflow:rules/check", headers=adm, timeout=120)
        assert gate.status_code == 200 and "passed" in gate.json()
