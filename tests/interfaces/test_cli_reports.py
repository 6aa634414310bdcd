"""``mailsift reports``: list, show, triage, and export to an mbox that parses back (with our
reader, the one the gate uses, and with the standard library), skipping and counting the
messages whose original is gone."""

from __future__ import annotations

import json
import mailbox
from pathlib import Path

import pytest

from mailsift.config.store import StoreSettings
from mailsift.core.verdict import Action
from mailsift.interfaces.cli.main import main
from mailsift.parsing.sources import iter_messages
from mailsift.services.access import Principal
from mailsift.services.store_services import StoreServices
from mailsift.store import Store
from mailsift.testing.messages import make_message
from mailsift.testing.sink import SmtpSink
from mailsift.testing.storekit import make_result

ANN = Principal("ann", "recipient", "ann@corp.example")


def _seed(settings: StoreSettings) -> dict[str, int]:
    """Three quarantined invoices reported as not junk (one with a ``From `` line in its body,
    one whose original is then deleted) and a delivered phish reported (no original kept)."""
    ids: dict[str, int] = {}
    with Store.open(settings) as store:
        svc = StoreServices.build(store)
        for i in range(3):
            text = "Hello,\n\nFrom the accounts team: invoice attached.\n>From quoted\n"
            raw = make_message(subject=f"Invoice {i}", message_id=f"<inv{i}@acme.example>",
                               text=text if i == 0 else "Invoice attached.\n")
            store.trace.record(make_result(f"ms-inv{i}", raw, recipients={
                "ann@corp.example": Action.QUARANTINE}, subject=f"Invoice {i}",
                from_addr="billing@acme.example", mail_from="bounces@acme.example"), raw,
                received_at=1_800_000_000.0 + i)
            ids[f"inv{i}"] = svc.reports.create(ANN, f"ms-inv{i}", "ham")[0].id
        raw = make_message(subject="Verify now", message_id="<ph@x.example>")
        store.trace.record(make_result("ms-ph", raw, recipients={
            "ann@corp.example": Action.DELIVER}), raw)
        ids["ph"] = svc.reports.create(ANN, "ms-ph", "phish", comment="fake bank")[0].id
        store.retention.delete_raw("ms-inv2")
    return ids


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    return code, capsys.readouterr().out


def test_list_show_triage_export(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with SmtpSink() as sink:
        settings = StoreSettings(data_dir=str(tmp_path / "data"), release_port=sink.port)
        conf = tmp_path / "mailsift.toml"
        conf.write_text(f'[store]\ndata_dir = "{settings.data_dir}"\n'
                        f"release_port = {sink.port}\n")
        ids = _seed(settings)
        c = str(conf)

        code, out = _run(capsys, "reports", "list", "--config", c, "--label", "ham", "--json")
        assert code == 0
        assert [r["id"] for r in json.loads(out)["items"]] == [ids["inv2"], ids["inv1"],
                                                               ids["inv0"]]
        code, out = _run(capsys, "reports", "show", str(ids["ph"]), "--config", c)
        assert code == 0 and "fake bank" in out and "clean/deliver" in out

        for name in ("inv0", "inv1", "inv2", "ph"):
            code, out = _run(capsys, "reports", "triage", str(ids[name]), "--confirm",
                             "--note", "checked", "--config", c, "--as", "sam")
            assert code == 0 and "new -> confirmed" in out
        code, out = _run(capsys, "reports", "triage", str(ids["inv1"]), "--confirm",
                         "--release", "--config", c)
        assert code == 0 and "released to ann@corp.example" in out
        assert sink.wait_for(1) and len(sink) == 1
        # --expires without --list-entry is a usage error; nothing changes
        assert main(["reports", "triage", str(ids["ph"]), "--reject", "--expires", "7d",
                     "--config", c]) == 2
        capsys.readouterr()

        out_file = tmp_path / "known-good-reports.mbox"
        code, out = _run(capsys, "reports", "export", "--label", "ham", "--out",
                         str(out_file), "--config", c, "--json")
        assert code == 0
        summary = json.loads(out)
        assert (summary["written"], summary["missing"], summary["missing_ids"]) == (
            2, 1, ["ms-inv2"])
        assert not out_file.with_name(out_file.name + ".part").exists()
        with Store.open(settings) as store:
            originals = {store.trace.raw(m) for m in ("ms-inv0", "ms-inv1")}
        # byte for byte through the reader the gate uses for [rollout] known_good...
        assert {raw for _, raw in iter_messages([str(out_file)])} == originals
        # ...and a standard mbox reader sees the same messages
        box = mailbox.mbox(str(out_file))
        assert sorted(m["Message-ID"] for m in box) == ["<inv0@acme.example>",
                                                         "<inv1@acme.example>"]
        assert ">From quoted" in next(m for m in box if m["Subject"] == "Invoice 0"
                                      ).get_payload()
        box.close()

        code, out = _run(capsys, "reports", "export", "--label", "phish", "--out",
                         str(tmp_path / "phish.mbox"), "--config", c)
        assert code == 0 and "wrote 0 message(s)" in out and "1 skipped" in out
        code, out = _run(capsys, "reports", "export", "--label", "ham", "--state", "new",
                         "--out", str(tmp_path / "new.mbox"), "--config", c, "--json")
        assert json.loads(out)["written"] == 0
        code, out = _run(capsys, "audit", "--config", c, "--json")
        actions = [e["action"] for e in json.loads(out)]
        assert actions.count("report.export") == 3 and actions.count("report.triage") == 5
