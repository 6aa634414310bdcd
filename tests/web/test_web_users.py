"""Console accounts: password hashing, sessions, the ``mailsift user`` command, and the console
served by ``mailsift serve`` next to the API."""

from __future__ import annotations

import contextlib
import io
import time
from pathlib import Path

import httpx2
import pytest

from mailsift.config.schema import Settings
from mailsift.core.errors import StoreError
from mailsift.interfaces.cli.main import main
from mailsift.store import Store
from mailsift.store.users import UserStore, hash_password, verify_password
from mailsift.testing.gateway import RunningGateway, send_smtp
from mailsift.testing.messages import make_message
from mailsift.testing.storekit import FakeClock
from mailsift.testing.waiting import wait_until


def test_password_hash_is_salted_scrypt_and_verifies() -> None:
    a, b = hash_password("s3cret-pass"), hash_password("s3cret-pass")
    assert a != b and a.startswith("scrypt$") and "s3cret" not in a
    assert verify_password("s3cret-pass", a)
    assert not verify_password("s3cret-pasS", a)
    assert not verify_password("s3cret-pass", "garbage")
    assert not verify_password("s3cret-pass", a.replace("scrypt$", "md5$"))


def test_users_and_sessions(tmp_path: Path) -> None:
    clock = FakeClock()
    settings = Settings.model_validate({"store": {"data_dir": str(tmp_path)}})
    with Store.open(settings.store, clock=clock) as store:
        users = UserStore(store.engine, clock)
        users.create("Ops", "long enough", "admin")
        with pytest.raises(StoreError, match="already exists"):
            users.create("ops", "long enough", "analyst")
        with pytest.raises(StoreError, match="mailbox"):
            users.create("bob", "long enough", "recipient")
        with pytest.raises(StoreError, match="at least"):
            users.create("eve", "short", "admin")
        with pytest.raises(StoreError, match="unknown role"):
            users.create("eve", "long enough", "root")
        assert users.authenticate("OPS", "long enough") is not None
        assert users.authenticate("ops", "wrong one!") is None
        assert users.authenticate("nobody", "long enough") is None
        token, session = users.start_session("ops", ttl=60)
        assert users.session(token) == session and len(session.csrf) >= 32
        assert users.session(token + "x") is None
        clock.advance(61)
        assert users.session(token) is None  # expired
        token, _ = users.start_session("ops", ttl=60)
        with pytest.raises(StoreError, match="last enabled admin"):
            users.set_disabled("ops", True)  # the only admin: nobody could administer
        users.create("root", "long enough", "admin")
        users.set_disabled("ops", True)
        assert users.session(token) is None and users.authenticate("ops", "long enough") is None
        users.set_disabled("ops", False)
        token, _ = users.start_session("ops")
        users.set_password("ops", "another long one")
        assert users.session(token) is None  # a new password ends every session
        assert users.authenticate("ops", "another long one") is not None


def test_cli_creates_an_admin_who_signs_in_to_the_served_console(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "mailsift.toml"
    config.write_text(f'[store]\ndata_dir = "{tmp_path / "data"}"\n')
    monkeypatch.setattr("sys.stdin", io.StringIO("a good password\n"))
    assert main(["user", "create", "root@example.net", "--role", "admin", "--password-stdin",
                 "--config", str(config)]) == 0
    assert "created admin root@example.net" in capsys.readouterr().out
    monkeypatch.setattr("sys.stdin", io.StringIO("x\n"))
    assert main(["user", "create", "ann", "--role", "recipient", "--mailbox",
                 "ann@example.net", "--password-stdin", "--config", str(config)]) == 2
    assert main(["user", "list", "--config", str(config)]) == 0
    assert "root@example.net\tadmin" in capsys.readouterr().out

    settings = Settings.model_validate({
        "store": {"data_dir": str(tmp_path / "data")},
        "gateway": {"workers": 0}, "smtp": {"port": 0}, "http": {"port": 0},
        "milter": {"enabled": False}, "scan": {"offline": True},
    })
    with RunningGateway(settings) as gw, httpx2.Client(
            base_url=f"http://127.0.0.1:{gw.ports['http']}") as client:
        assert client.get("/healthz").status_code == 200  # the API is still there
        form = client.get("/login")
        assert form.status_code == 200 and "Sign in to mailsift" in form.text
        token = form.text.split('name="csrf" value="', 1)[1].split('"', 1)[0]
        r = client.post("/login", data={"username": "root@example.net", "csrf": token,
                                        "password": "a good password", "next": "/"})
        assert r.status_code == 303
        started = time.monotonic()
        page = client.get("/")
        assert page.status_code == 200 and "Mail flow by category" in page.text
        assert time.monotonic() - started < 5
        with Store.open(settings.store) as store:
            assert any(e.action == "user.create" for e in store.audit.entries())
            assert any(e.action == "web.login" and e.actor == "root@example.net"
                       for e in store.audit.entries())


def _children_of(parent: int) -> list[int]:
    """Live child processes of ``parent`` (from /proc: multiprocessing's own list misses
    processes started before a test in the same worker forgot them)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == parent and fields[0] not in ("Z", "X"):
            cmdline = (stat.parent / "cmdline").read_bytes()
            if b"multiprocessing" in cmdline:  # spawned scan workers, nothing else
                found.append(int(stat.parent.name))
    return found


def test_console_keeps_answering_while_detection_hangs(tmp_path: Path) -> None:
    """Every scan worker frozen (as by a catastrophic rule): mail is deferred, the console still
    signs in, searches and shows messages — it never waits on the scan pool."""
    import os
    import signal

    settings = Settings.model_validate({
        "store": {"data_dir": str(tmp_path / "data")},
        "gateway": {"workers": 1, "scan_timeout": 1.0}, "smtp": {"port": 0},
        "http": {"port": 0}, "milter": {"enabled": False}, "scan": {"offline": True},
    })
    with Store.open(settings.store) as store:
        UserStore(store.engine, store.clock).create("ops", "long enough", "admin")
    with RunningGateway(settings) as gw:
        workers = _children_of(os.getpid())
        assert workers, "the scan pool has no worker process"
        for pid in workers:
            os.kill(pid, signal.SIGSTOP)
        try:
            code, _ = send_smtp(gw.ports["smtp"], make_message(), ["tom@example.net"])
            assert 400 <= code < 500  # detection is down: mail is deferred, never lost
            with httpx2.Client(base_url=f"http://127.0.0.1:{gw.ports['http']}",
                              timeout=5) as client:
                form = client.get("/login")
                token = form.text.split('name="csrf" value="', 1)[1].split('"', 1)[0]
                r = client.post("/login", data={"username": "ops", "password": "long enough",
                                                "csrf": token, "next": "/quarantine"})
                assert r.status_code == 303
                started = time.monotonic()
                for url in ("/quarantine", "/trace", "/", "/rollouts", "/incidents"):
                    assert client.get(url).status_code == 200, url
                assert time.monotonic() - started < 5
            # the frozen scan worker ran past the scan timeout: it is killed and replaced
            # (the other frozen child is multiprocessing's resource tracker)
            def replaced() -> bool:
                alive = set(_children_of(os.getpid()))
                return bool(set(workers) - alive and alive - set(workers))

            wait_until(replaced, timeout=30,
                       what=f"the frozen scan worker (of {workers}) to be replaced")
        finally:
            for pid in workers:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGCONT)
