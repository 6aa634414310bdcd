"""``mailsift rollout`` for issue 17: withdraw and retire, a single rule's gate (refused, then
forced), bad input refused with exit 2 and nothing written."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailsift.config import load_settings
from mailsift.interfaces.cli.main import main
from mailsift.store.store import Store

ROOT = Path(__file__).resolve().parents[2]
PACK = '''
[pack]
name = "site-lures"
description = "born in shadow"
default_state = "shadow"

[[rule]]
id = "SITE_INVOICE_LURE"
description = "Mentions an invoice"
category = "phish"
weight = 7.0
body = '/\\binvoice\\b/i'
'''


@pytest.mark.slow
def test_issue17_rollout_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "mailsift.toml"
    config.write_text(f'''
[store]
data_dir = "{tmp_path / 'data'}"
[scan]
offline = true
[rollout]
known_good = ["{ROOT / 'tests' / 'corpus' / 'known-good'}"]
min_known_good = 1
recent_messages = 0
min_shadow_hours = 0
''')
    pack = tmp_path / "site.toml"
    pack.write_text(PACK)
    c = str(config)
    assert main(["rollout", "stage", str(pack), "--config", c]) == 0
    assert main(["rollout", "check", "site-lures", "--config", c]) == 0
    assert "stay in shadow" in capsys.readouterr().out
    assert main(["rollout", "promote", "site-lures", "--to", "canary", "--percent", "500",
                 "--config", c]) == 2
    assert main(["rollout", "promote", "site-lures", "--to", "active", "--config", c]) == 0
    assert "1 rule(s) stay in shadow: SITE_INVOICE_LURE" in capsys.readouterr().out
    assert main(["rollout", "check", "rule:SITE_INVOICE_LURE", "--config", c]) == 1
    assert main(["rollout", "rule", "SITE_INVOICE_LURE", "--state", "active",
                 "--config", c]) == 2
    assert "refused" in capsys.readouterr().err
    assert main(["rollout", "rule", "SITE_INVOICE_LURE", "--state", "active", "--force",
                 "--reason", "test", "--config", c]) == 0
    settings = load_settings(c).settings
    with Store.open(settings.store) as store:
        assert store.rollout.rule_states()["SITE_INVOICE_LURE"]["state"] == "active"
        assert any(e.action == "rollout.force" for e in store.audit.entries())
    # stage a second version, send it to canary, withdraw it, retire it
    pack.write_text(PACK.replace("Mentions an invoice", "Mentions an invoice (v2)"))
    assert main(["rollout", "stage", str(pack), "--config", c]) == 0
    assert main(["rollout", "promote", "site-lures", "--to", "canary", "--domain",
                 "pilot.example", "--force", "--reason", "pilot", "--config", c]) == 0
    assert main(["rollout", "withdraw", "site-lures", "--config", c,
                 "--reason", "pilot complained"]) == 0
    assert "is now shadow" in capsys.readouterr().out
    assert main(["rollout", "retire", "site-lures", "--config", c, "--reason", " "]) == 2
    assert "needs a reason" in capsys.readouterr().err  # issue 24
    assert main(["rollout", "retire", "site-lures", "--config", c, "--reason", "unused"]) == 0
    assert "is now retired" in capsys.readouterr().out
    assert main(["rollout", "retire", "site-lures", "--config", c,
                 "--reason", "x"]) == 2  # the active one
