"""``mailsift user``: the CLI on ``UserService`` (same rules and audit as the console/API)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from mailsift.config import load_settings
from mailsift.config.store import StoreSettings
from mailsift.interfaces.cli.main import main
from mailsift.store import Store
from mailsift.store.users import UserStore

pytestmark = pytest.mark.usefixtures("fast_passwords")


def test_user_commands(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                       capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "mailsift.toml"
    config.write_text(f'[store]\ndata_dir = "{tmp_path / "data"}"\n')

    def run(*argv: str, stdin: str = "") -> int:
        monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
        return main([*argv, "--config", str(config)])

    assert run("user", "create", "Root", "--role", "admin", "--password-stdin",
               stdin="a good password\n") == 0
    assert run("user", "create", "ann", "--role", "recipient", "--mailbox", "ann@x.example",
               "--password-stdin", stdin="a good password\n") == 0
    capsys.readouterr()
    assert run("user", "disable", "root") == 2  # the only admin
    assert "root is the last enabled admin" in capsys.readouterr().err
    assert run("user", "role", "root", "--role", "analyst") == 2
    assert run("user", "role", "ann", "--role", "analyst", "--mailbox", "ann@x.example") == 2
    assert "only recipient users have a mailbox" in capsys.readouterr().err
    with Store.open(_store(config)) as store:
        UserStore(store.engine, store.clock).start_session("ann")
    assert run("user", "end-sessions", "ANN") == 0
    assert capsys.readouterr().out == "ann: 1 sessions ended\n"
    assert run("user", "role", "ann", "--role", "recipient", "--mailbox", "ann2@x.example") == 0
    assert "ann is now recipient (mailbox ann2@x.example)" in capsys.readouterr().out
    assert run("user", "password", "ann", "--password-stdin", stdin="short\n") == 2
    assert "at least 8 characters" in capsys.readouterr().err
    assert run("user", "list") == 0
    assert capsys.readouterr().out == "ann\trecipient\tann2@x.example\nroot\tadmin\t-\n"
    with Store.open(_store(config)) as store:
        audit = [(e.actor, e.action, e.target) for e in reversed(store.audit.entries())]
    assert audit == [("cli", "user.create", "root"), ("cli", "user.create", "ann"),
                     ("cli", "user.sessions_end", "ann"), ("cli", "user.role", "ann")]


def _store(config: Path) -> StoreSettings:
    return load_settings(config).settings.store
