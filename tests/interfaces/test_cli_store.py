"""The store commands end to end: trace, quarantine (bulk release twice), lists, tokens, db."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mailsift.config import load_settings
from mailsift.config.store import StoreSettings
from mailsift.core.findings import Finding
from mailsift.interfaces.cli.main import main
from mailsift.store import Recordable, Store
from mailsift.testing.messages import make_message
from mailsift.testing.sink import SmtpSink
from mailsift.testing.storekit import (
    PG_URL,
    make_result,
    pg_unavailable,
    temp_store_settings,
)


@pytest.fixture(params=["sqlite", "postgresql"])
def setup(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Path, SmtpSink]]:
    if request.param == "postgresql" and (why := pg_unavailable()):
        pytest.skip(why)
    sink = SmtpSink().start()
    with temp_store_settings(request.param, tmp_path / "data") as settings:
        conf = tmp_path / "mailsift.toml"
        lines = ["[store]", f'data_dir = "{settings.data_dir}"',
                 'release_host = "127.0.0.1"', f"release_port = {sink.port}"]
        if settings.url:
            lines += [f'url = "{PG_URL}"', f'db_schema = "{settings.db_schema}"']
        conf.write_text("\n".join(lines) + "\n")
        _seed(settings)
        yield conf, sink
    sink.stop()


def _seed(settings: StoreSettings) -> None:
    store = Store.open(settings)
    items = []
    for i in range(40):
        version = "7" if i < 30 else "6"
        rule = Finding("RULE_FP", 7.0, ("x",), "rules", "phish", artifact="rules/default",
                       version=version)
        raw = make_message(message_id=f"<c{i}@example.org>", subject=f"Invoice {i}")
        items.append(Recordable(make_result(f"c{i:03d}", raw, findings=[rule],
                                            recipients=("bob@corp.example",),
                                            subject=f"Invoice {i}",
                                            versions={"rules/default": version}),
                                raw, received_at=1_700_000_000.0 + i))
    store.trace.record_many(items)
    store.close()


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    return code, capsys.readouterr().out


def test_find_release_twice_nobody_gets_two(setup: tuple[Path, SmtpSink],
                                            capsys: pytest.CaptureFixture[str]) -> None:
    conf, sink = setup
    c = str(conf)
    code, out = _run(capsys, "trace", "--config", c, "--finding", "RULE_FP", "--version", "7",
                     "--count", "--json")
    assert code == 0 and json.loads(out) == {"recipients": 30, "messages": 30}
    code, out = _run(capsys, "quarantine", "release", "--config", c, "--rule", "RULE_FP",
                     "--version", "7", "--since", "2023-11-14T22:13:20Z", "--dry-run",
                     "--json")
    assert code == 0 and json.loads(out)["recipients"] == 30
    code, out = _run(capsys, "quarantine", "release", "--config", c, "--rule", "RULE_FP",
                     "--version", "7")
    assert code == 1 and "--yes" in out  # a bulk release must be confirmed
    assert sink.messages == []
    assert main(["quarantine", "release", "--config", c, "--rule", "RULE_FP", "--version", "7",
                 "--yes"]) == 2
    assert "needs a reason" in capsys.readouterr().err  # issue 24: and a reason
    assert sink.messages == []
    for _ in range(2):
        code, out = _run(capsys, "quarantine", "release", "--config", c, "--rule", "RULE_FP",
                         "--version", "7", "--yes", "--reason", "RULE_FP 7 misfired",
                         "--json")
        assert code == 0
    assert json.loads(out)["total"] == 0 and json.loads(out)["sent"] == 0
    assert len(sink.messages) == 30
    assert all(n == 1 for n in sink.copies().values())
    code, out = _run(capsys, "quarantine", "list", "--config", c, "--json")
    assert {i["message"] for i in json.loads(out)["items"]} == {f"c{i:03d}" for i in
                                                                 range(30, 40)}
    code, out = _run(capsys, "audit", "--config", c, "--json")
    assert [e["action"] for e in json.loads(out)][:2] == [
        "quarantine.bulk_release.done", "quarantine.bulk_release.start"]


def test_show_download_delete(setup: tuple[Path, SmtpSink], tmp_path: Path,
                              capsys: pytest.CaptureFixture[str]) -> None:
    conf, _ = setup
    c = str(conf)
    code, out = _run(capsys, "quarantine", "show", "c005", "--config", c)
    assert code == 0 and "RULE_FP" in out and "rules/default=7" in out
    eml = tmp_path / "c5.eml"
    assert main(["quarantine", "download", "c005", "-o", str(eml), "--config", c]) == 0
    assert b"<c5@example.org>" in eml.read_bytes()
    assert main(["quarantine", "delete", "c005", "--config", c, "--reason", " "]) == 2
    assert "needs a reason" in capsys.readouterr().err  # issue 24
    code, out = _run(capsys, "quarantine", "delete", "c005", "--config", c, "--reason",
                     "known campaign")
    assert code == 0
    assert main(["quarantine", "download", "c005", "--config", c]) == 2
    code, out = _run(capsys, "trace", "c005", "--config", c, "--json")
    assert json.loads(out)["recipients"][0]["status"] == "deleted"


def test_lists_tokens_db(setup: tuple[Path, SmtpSink],
                         capsys: pytest.CaptureFixture[str]) -> None:
    conf, _ = setup
    c = str(conf)
    code, out = _run(capsys, "lists", "add", "domain", "Partner.EXAMPLE", "allow", "--scope",
                     "incident", "--expires", "2d", "--note", "FP storm", "--config", c,
                     "--json")
    assert code == 0 and json.loads(out)["value"] == "partner.example"
    assert main(["lists", "add", "domain", "x.example", "allow", "--scope", "incident",
                 "--config", c]) == 2  # incident entries must expire
    assert main(["lists", "add", "ip", "203.0.0.0/16", "block", "--config", c]) == 2
    assert "is wide" in capsys.readouterr().err
    assert main(["lists", "add", "ip", "203.0.0.0/16", "block", "--force", "--config",
                 c]) == 2  # a forced entry needs a reason
    assert main(["lists", "add", "ip", "203.0.0.0/16", "block", "--force", "--reason",
                 "botnet range", "--config", c]) == 0
    capsys.readouterr()
    code, out = _run(capsys, "audit", "--config", c, "--json")
    assert json.loads(out)[0]["action"] == "lists.force"
    code, out = _run(capsys, "lists", "snapshot", "--config", c, "--json")
    snap = json.loads(out)
    assert len(snap["entries"]) == 2 and snap["version"] != "empty"
    code, out = _run(capsys, "token", "create", "--role", "analyst", "--config", c, "--json")
    assert json.loads(out)["token"].startswith("msk_")
    code, out = _run(capsys, "db", "upgrade", "--config", c, "--json")
    assert code == 0 and json.loads(out)["revision"] == json.loads(out)["head"]


def test_resume_a_job_by_id(setup: tuple[Path, SmtpSink],
                            capsys: pytest.CaptureFixture[str]) -> None:
    from mailsift.config import load_settings
    from mailsift.services.access import Principal
    from mailsift.services.store_services import StoreServices
    from mailsift.store import TraceQuery

    conf, sink = setup
    svc = StoreServices.open(load_settings(conf).settings)
    job = svc.bulk.start(Principal("ops", "admin"), TraceQuery(finding="RULE_FP", version="6"))
    svc.close()
    code, out = _run(capsys, "quarantine", "jobs", "--config", str(conf))
    assert job.id in out and "pending" in out
    code, out = _run(capsys, "quarantine", "release", "--resume", job.id, "--config",
                     str(conf), "--json")
    assert code == 0 and json.loads(out)["sent"] == 10 and json.loads(out)["state"] == "done"
    assert len(sink.messages) == 10


def test_list_prints_whole_references_and_show_release_take_them_or_a_prefix(
        setup: tuple[Path, SmtpSink], capsys: pytest.CaptureFixture[str]) -> None:
    """Issue 19: `quarantine list` and `trace` cut references to 14 characters, which `show`
    and `release` then refused; and the README's `--since -1d` failed with "expected one
    argument"."""
    conf, sink = setup
    c = str(conf)
    store = Store.open(load_settings(conf).settings.store)
    refs = ["ms-q7zk2vbnp4xw6dmr3tfa5yceho", "ms-q7zk2vbnp4xw6dmr3tfa5ycehp",
            "ms-b3mfl2kq5r7tnwx4yzacdegij2"]
    now = time.time()
    store.trace.record_many([
        Recordable(make_result(ref, raw, recipients=("carol@corp.example",),
                               subject=f"Lure {i}"), raw, received_at=now - 600 - i)
        for i, ref in enumerate(refs)
        for raw in [make_message(message_id=f"<lure{i}@example.org>", subject=f"Lure {i}")]])
    store.close()
    for command in (("quarantine", "list"), ("trace",)):
        code, out = _run(capsys, *command, "--since", "-1d", "--config", c)
        assert code == 0, out
        assert all(ref in out for ref in refs), out  # whole, and only today's three
        assert "c000" not in out  # recorded in 2023: before -1d
    code, out = _run(capsys, "quarantine", "show", refs[2], "--config", c)
    assert code == 0 and "Lure 2" in out
    code, out = _run(capsys, "quarantine", "show", refs[2][:12], "--config", c)
    assert code == 0 and refs[2] in out
    code, out = _run(capsys, "trace", refs[2][:10], "--config", c, "--json")
    assert code == 0 and json.loads(out)["id"] == refs[2]
    # a prefix that two references share is refused, naming both; so is a very short one
    assert main(["quarantine", "show", refs[0][:14], "--config", c]) == 2
    assert refs[0] in capsys.readouterr().err
    assert main(["quarantine", "show", refs[2][:5], "--config", c]) == 2
    code, out = _run(capsys, "quarantine", "release", refs[1], "--config", c)
    assert code == 0 and "sent 1" in out
    assert [m.rcpt_to for m in sink.messages] == [("carol@corp.example",)]


def test_trace_lookups_sort_and_export(setup: tuple[Path, SmtpSink],
                                       capsys: pytest.CaptureFixture[str]) -> None:
    conf, _ = setup
    c = str(conf)
    code, out = _run(capsys, "trace", "--config", c, "--message-id", "<C007@EXAMPLE.ORG>",
                     "--json")
    assert code == 0 and [i["message"] for i in json.loads(out)["items"]] == ["c007"]
    code, out = _run(capsys, "trace", "--config", c, "--recipient", "bob@", "--sort",
                     "subject", "--asc", "--limit", "3", "--json")
    page = json.loads(out)
    assert [i["subject"] for i in page["items"]] == ["Invoice 0", "Invoice 1", "Invoice 10"]
    code, out = _run(capsys, "trace", "--config", c, "--subject", "invoice 3", "--export",
                     "csv")
    lines = out.splitlines()
    assert code == 0 and lines[0].startswith("received,reference,recipient")
    assert sorted(line.split(",")[1] for line in lines[1:]) == [
        "c003", "c030", "c031", "c032", "c033", "c034", "c035", "c036", "c037", "c038",
        "c039"]
    code, out = _run(capsys, "audit", "--config", c, "--json")
    export = json.loads(out)[0]
    assert export["action"] == "trace.export" and export["detail"]["rows"] == 11
