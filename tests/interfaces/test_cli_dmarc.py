"""``mailsift dmarc``: send --dry-run and --now (once), reports list, ingest a directory with a
bad file in it, senders as CSV."""

from __future__ import annotations

import datetime as dt
import gzip
import json
from pathlib import Path
from typing import Any

import pytest

from mailsift.config.store import StoreSettings
from mailsift.core.auth import AuthResults, AuthStatus, DmarcResult, SpfResult
from mailsift.core.verdict import Action
from mailsift.interfaces.cli.main import main
from mailsift.services.dmarc.evaluations import evaluation_row
from mailsift.store import Store
from mailsift.store.dmarc import DmarcStore
from mailsift.testing.dns import DnsServer
from mailsift.testing.sink import SmtpSink
from mailsift.testing.storekit import make_result

SAMPLES = Path(__file__).resolve().parents[1] / "services" / "dmarc" / "data" / "ingest"


def _yesterday() -> int:
    day = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)
    return int(dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp())


def _seed(settings: StoreSettings, begin: int) -> None:
    rows: list[dict[str, Any]] = []
    for i, passed in enumerate((True, True, False)):
        res = make_result(f"m{i}", b"x", recipients={"u@rcpt.example": Action.DELIVER},
                          from_addr="a@example.com", mail_from="a@example.com")
        from dataclasses import replace

        dmarc = DmarcResult(AuthStatus.PASS if passed else AuthStatus.FAIL, "example.com",
                            policy="none", policy_domain="example.com",
                            spf_aligned=passed, record="v=DMARC1; p=none; "
                            "rua=mailto:dmarc@example.com")
        spf = SpfResult(AuthStatus.PASS if passed else AuthStatus.FAIL, "mailfrom",
                        "example.com", client_ip="192.0.2.10")
        row = evaluation_row(replace(res, auth=AuthResults(spf=spf, dmarc=dmarc)),
                             begin + 3600 + i)
        assert row is not None
        rows.append(row)
    with Store.open(settings) as store:
        DmarcStore(store.engine, store.clock).record_many(rows)


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    return code, capsys.readouterr().out


def test_send_dry_run_then_now_once(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    begin = _yesterday()
    with SmtpSink() as sink, DnsServer({}) as dns:
        settings = StoreSettings(data_dir=str(tmp_path / "data"))
        conf = tmp_path / "mailsift.toml"
        conf.write_text(f'[store]\ndata_dir = "{settings.data_dir}"\n'
                        f'[dmarc_reports]\nemail = "dmarc-reports@receiver.example"\n'
                        f'org_name = "receiver.example"\nrelay_port = {sink.port}\n')
        _seed(settings, begin)
        c = str(conf)
        out_dir = tmp_path / "xml"
        code, out = _run(capsys, "dmarc", "reports", "send", "--dry-run", "--out",
                         str(out_dir), "--config", c, "--dns", dns.address, "--json")
        assert code == 0, out
        [written] = json.loads(out)
        assert written["messages"] == 3 and written["destinations"] == ["dmarc@example.com"]
        assert Path(written["file"]).name == (
            f"receiver.example!example.com!{begin}!{begin + 86399}!dryrun.xml")
        assert b"<count>2</count>" in Path(written["file"]).read_bytes()
        assert len(sink.messages) == 0  # a dry run sends nothing

        code, out = _run(capsys, "dmarc", "reports", "send", "--now", "--config", c,
                         "--dns", dns.address)
        assert code == 0, out
        assert "example.com: sent dmarc@example.com" in out
        assert sink.wait_for(1) and len(sink.messages) == 1
        code, out = _run(capsys, "dmarc", "reports", "send", "--now", "--config", c,
                         "--dns", dns.address)
        assert code == 0 and "0 new job(s)" in out and len(sink.messages) == 1
        code, out = _run(capsys, "dmarc", "reports", "list", "--config", c, "--json")
        [job] = json.loads(out)
        assert job["state"] == "sent" and job["sent_to"] == ["dmarc@example.com"]


def test_send_needs_a_mode(tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as exc:  # neither --now nor --dry-run: usage error
        main(["dmarc", "reports", "send", "--config", str(tmp_path / "none.toml")])
    assert exc.value.code == 2


def test_ingest_and_senders(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    conf = tmp_path / "mailsift.toml"
    conf.write_text(f'[store]\ndata_dir = "{tmp_path / "data"}"\n')
    reports = tmp_path / "in"
    reports.mkdir()
    begin = _yesterday()
    for name in ("google-style.xml", "microsoft-style.xml"):
        text = (SAMPLES / name).read_text().replace("1799971200", str(begin))
        (reports / f"{name}.gz").write_bytes(gzip.compress(text.encode()))
    (reports / "junk.xml").write_text("<feedback>")
    code, out = _run(capsys, "dmarc", "ingest", str(reports), "--config", str(conf))
    assert code == 1  # one file could not be read; the others are stored
    assert "2 report(s) stored, 0 duplicate(s), 1 error(s)" in out
    code, out = _run(capsys, "dmarc", "ingest", str(reports), "--config", str(conf))
    assert "0 report(s) stored, 2 duplicate(s)" in out
    code, out = _run(capsys, "dmarc", "senders", "--csv", "--config", str(conf))
    assert code == 0
    assert out.splitlines()[0].startswith("header_from,source_ip")
    assert "203.0.113.66" in out
    code, out = _run(capsys, "dmarc", "senders", "--config", str(conf), "--domain",
                     "ours.example")
    assert "never passes" in out and "192.0.2.25" in out
