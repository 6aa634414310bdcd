"""``mailsift digest``: --dry-run prints the digests and sends nothing; send --now sends each
once; optout stops a recipient's digests."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from mailsift.config import load_settings
from mailsift.core.verdict import Category
from mailsift.interfaces.cli.main import main
from mailsift.store import Recordable, Store
from mailsift.testing.messages import make_message
from mailsift.testing.sink import SmtpSink
from mailsift.testing.storekit import make_result


def test_digest_commands(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with SmtpSink() as sink:
        config = tmp_path / "mailsift.toml"
        config.write_text(f'[store]\ndata_dir = "{tmp_path / "data"}"\nrelease_port = '
                          f'{sink.port}\n[enduser.digest]\nlanguage = "de"\n')
        with Store.open(load_settings(str(config)).settings.store) as store:
            raw = make_message(message_id="<cli-digest@example.org>", subject="Rabatt")
            res = make_result("cd1", raw, recipients=("ann@corp.example", "ben@corp.example"),
                              category=Category.SPAM, subject="Rabatt")
            store.trace.record_many([Recordable(res, raw, received_at=time.time() - 60)])
        assert main(["digest", "send", "--dry-run", "--config", str(config)]) == 0
        out = capsys.readouterr().out
        assert "=== To: ann@corp.example" in out and "Rabatt" in out and "Spam" in out
        assert "2 digest(s) would be sent" in out and len(sink) == 0
        assert main(["digest", "optout", "BEN@corp.example", "--config", str(config)]) == 0
        assert main(["digest", "send", "--now", "--recipient", "ann@corp.example",
                     "--config", str(config)]) == 0
        assert sink.wait_for(1)
        assert main(["digest", "send", "--now", "--config", str(config)]) == 0
        assert "0 digest(s) sent" in capsys.readouterr().out.splitlines()[-1]
        assert [m.rcpt_to for m in sink.messages] == [("ann@corp.example",)]
