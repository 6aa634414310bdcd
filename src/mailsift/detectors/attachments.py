"""Attachments detector ("safe attachments", static): what the files of a message really are.

Checks every attachment and every member the parser took out of zip archives (recursively,
within ``[limits]``), plus the member names of tar/gzip attachments (read bounded here):
blocked file types by name and by content (an executable named ``invoice.pdf``), double
extensions and right-to-left-override names, HTML/SVG attachments with script (HTML smuggling),
credential forms or redirects, Office macros with auto-exec and suspicious calls (oletools),
encrypted Office files, PDFs with JavaScript, launch actions or embedded files (a bounded scan of
the PDF's object dictionaries, streams skipped), encrypted archives (worse when the body gives the
password), hashes on a local feed, and optionally ClamAV.

Cost: name/type checks are microseconds; HTML, PDF and Office files are read at most
``max_scan_bytes``; clamd is one socket round trip per file when enabled.
"""

from __future__ import annotations

import bz2
import io
import logging
import lzma
import re
import tarfile
import warnings
import zlib
from collections.abc import Iterator, Mapping, Sequence
from functools import lru_cache
from typing import Any

from mailsift.config.detectors import AttachmentSettings
from mailsift.config.schema import Settings
from mailsift.core.context import ScanContext
from mailsift.core.findings import Family, Finding, Stage
from mailsift.core.message import Attachment
from mailsift.detectors._common import CodeBook, Collector, installed
from mailsift.detectors.base import Services
from mailsift.detectors.clamd import ClamdClient
from mailsift.detectors.feeds import FeedSet
from mailsift.detectors.spec import CodeSpec, DetectorSpec

__all__ = ["CODES", "SPEC", "AttachmentDetector", "build"]

CODES: Mapping[str, CodeSpec] = {
    "ATT_ARCHIVE_DEPTH": CodeSpec(1.0, Family.MALWARE,
                                  "Archives are nested deeper than analysed ([limits] "
                                  "max_archive_depth): what is inside could not be checked"),
    "ATT_ARCHIVE_LIMIT": CodeSpec(0.5, Family.MALWARE,
                                  "An archive has more or larger members than analysed ([limits] "
                                  "max_archive_members, max_archive_bytes); names were still "
                                  "checked"),
    "ATT_BLOCKED_TYPE": CodeSpec(1.0, Family.MALWARE,
                                 "A file type that mail should not carry (executable, script, "
                                 "shortcut, disk image)"),
    "ATT_DISGUISED_EXECUTABLE": CodeSpec(1.0, Family.MALWARE,
                                         "A file's content is executable but its name says "
                                         "otherwise"),
    "ATT_DOUBLE_EXTENSION": CodeSpec(1.0, Family.MALWARE,
                                     "A file name hides its real type (invoice.pdf.exe, RTL "
                                     "override)"),
    "ATT_HTML_SMUGGLING": CodeSpec(1.0, Family.MALWARE,
                                   "An HTML/SVG attachment builds a file in the browser (HTML "
                                   "smuggling)"),
    "ATT_HTML_CREDENTIAL_FORM": CodeSpec(6.0, Family.PHISH,
                                         "An HTML/SVG attachment asks for a password or payment "
                                         "card"),
    "ATT_HTML_REDIRECT": CodeSpec(3.0, Family.PHISH,
                                  "An HTML/SVG attachment sends the reader to a web site"),
    "ATT_HTML_SCRIPT": CodeSpec(2.0, Family.PHISH, "An HTML/SVG attachment runs script"),
    "ATT_OFFICE_AUTOEXEC": CodeSpec(1.0, Family.MALWARE,
                                    "An Office macro runs on opening and calls suspicious "
                                    "functions"),
    "ATT_OFFICE_MACRO": CodeSpec(0.5, Family.MALWARE, "An Office document contains macros"),
    "ATT_ENCRYPTED_DOCUMENT": CodeSpec(0.5, Family.MALWARE,
                                       "An Office document is encrypted (not scannable)"),
    "ATT_PDF_LAUNCH": CodeSpec(1.0, Family.MALWARE, "A PDF launches a program or file"),
    "ATT_PDF_JAVASCRIPT": CodeSpec(0.5, Family.MALWARE, "A PDF contains JavaScript"),
    "ATT_PDF_AUTO_JAVASCRIPT": CodeSpec(1.0, Family.MALWARE, "A PDF runs JavaScript when opened"),
    "ATT_PDF_EMBEDDED_FILE": CodeSpec(0.5, Family.MALWARE, "A PDF carries an embedded file"),
    "ATT_ENCRYPTED_ARCHIVE": CodeSpec(0.5, Family.MALWARE,
                                      "An archive is encrypted (its files not scannable)"),
    "ATT_ENCRYPTED_ARCHIVE_PASSWORD": CodeSpec(1.0, Family.MALWARE,
                                               "An encrypted archive comes with its password in "
                                               "the body"),
    "ATT_HASH_BLOCKED": CodeSpec(1.0, Family.MALWARE, "A file's SHA-256 is on a local block list"),
    "ATT_AV_INFECTED": CodeSpec(1.0, Family.MALWARE, "The antivirus engine found malware"),
    "ATT_UNSCANNABLE": CodeSpec(0.0, None, "A file could not be analysed (corrupt or unsupported)"),
}

_EXECUTABLE_TYPES = frozenset({
    "application/x-msdownload", "application/x-ms-shortcut", "application/x-iso9660-image",
    "application/x-apple-diskimage", "application/x-dosexec",
    "application/vnd.microsoft.portable-executable",
})
#: Unix binaries travel on developer lists (a kernel module .ko); disguised only as documents.
_UNIX_BINARIES = frozenset({"application/x-elf", "application/x-executable",
                            "application/x-mach-binary"})
_DECOY_EXTENSIONS = frozenset({
    "pdf", "doc", "docx", "xls", "xlsx", "ppt", "pptx", "jpg", "jpeg", "png", "gif", "txt",
    "rtf", "zip", "csv", "mp3", "mp4", "wav", "odt", "eml", "msg",
})
_RTLO = ("\u202e", "\u202d", "\u200f")
_HTML_TYPES = ("text/html", "image/svg+xml", "application/xhtml+xml")
_OLE_OR_ZIP = ("application/x-ole-storage", "application/zip", "application/rtf",
               "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
               "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
               "application/vnd.openxmlformats-officedocument.presentationml.presentation")

_SCRIPT = re.compile(rb"<script\b|\bon(?:load|error|click|mouseover)\s*=|javascript:", re.I)
_SMUGGLE = re.compile(rb"\batob\s*\(|new\s+blob\s*\(|mssaveoropenblob|createobjecturl|"
                      rb"\bdownload\s*=|data:application/", re.I)
_PASSWORD_FIELD = re.compile(rb"type\s*=\s*[\"']?password|name\s*=\s*[\"']?pass(?:wd|word)?\b",
                             re.I)
#: A field for a payment card's number or security code (card-data phishing pages ask for these
#: instead of a password; no legitimate mail attaches a form that collects them).
_CARD_FIELD = re.compile(
    rb"(?:name|id|placeholder)\s*=\s*[\"']?(?:cvv2?|cvc|csc|cryptogramme|card[\s_-]?(?:number|num"
    rb"|no)|kartennummer|pr\xc3\xbcfnummer|num(?:\xc3\xa9|e)ro\s+de\s+carte|n(?:\xc3\xba|u)mero\s+de\s+"
    rb"(?:tarjeta|cart(?:\xc3\xa3|a)o)|numero\s+(?:di\s+)?carta)\b", re.I)
_FORM = re.compile(rb"<form\b|\bfetch\s*\(|xmlhttprequest|\$\.(?:ajax|post)\s*\(", re.I)
_REDIRECT = re.compile(rb"http-equiv\s*=\s*[\"']?refresh|(?:window|document|top|self)\."
                       rb"location(?:\.href)?\s*=|location\.(?:replace|assign)\s*\(", re.I)
_PDF_STREAM = re.compile(rb"stream\r?\n.*?endstream", re.S)
_PDF_NAME_HEX = re.compile(rb"#([0-9a-fA-F]{2})")
_PDF_KEYS = re.compile(rb"/(JavaScript|JS|Launch|OpenAction|AA|EmbeddedFiles?)(?=[\s/<(\[>])")
_PASSWORD_WORDS = re.compile(
    r"(?i)\b(?:password|passwort|pass\s*code|pwd|kennwort|contrase(?:ñ|n)a|mot de passe|"
    r"senha|parola|wachtwoord|hasło|пароль|密码|パスワード)\b")
_TAR_EXTENSIONS = ("tar", "tgz", "gz", "tbz2", "bz2", "xz", "txz")


def _extensions(name: str) -> list[str]:
    base = name.replace("\\", "/").rsplit("/", 1)[-1].lower().strip().rstrip(". ")
    parts = base.split(".")
    return [p.strip() for p in parts[1:] if p.strip()]


class AttachmentDetector:
    name = "attachments"
    stage = Stage.CONTENT
    codes = frozenset(CODES)

    def __init__(self, book: CodeBook, *, blocked: frozenset[str], html: frozenset[str],
                 macro: frozenset[str], feeds: FeedSet, max_scan_bytes: int,
                 clamd: ClamdClient | None = None, oletools: bool = True) -> None:
        self.book = book
        #: oletools installed (the [attachments] extra); without it Office files are marked
        #: ATT_UNSCANNABLE naming the extra, and startup said macro scanning is off
        self.oletools = oletools
        self.blocked = blocked
        self.html = html
        self.macro = macro
        self.feeds = feeds
        self.max_scan = max_scan_bytes
        self.clamd = clamd

    def versions(self) -> Mapping[str, str]:
        return self.feeds.versions()

    def run(self, ctx: ScanContext) -> Sequence[Finding]:
        out = Collector(self.book)
        msg = ctx.message
        for att in msg.attachments:
            self._file(att, out)
            exts = _extensions(att.filename)
            if exts and exts[-1] in _TAR_EXTENSIONS and att.content:
                for member in _tar_members(att.content, self.max_scan):
                    self._name(member, f"{member} (in {att.filename})", out)
        # Limits are suspicious, not neutral: what could not be opened is not "clean".
        for code, evidence in msg.defects:
            if code == "PARSE_ARCHIVE_DEPTH":
                out.add("ATT_ARCHIVE_DEPTH", evidence)
            elif code == "PARSE_ARCHIVE_LIMIT":
                out.add("ATT_ARCHIVE_LIMIT", evidence)
        if any(a.encrypted for a in msg.attachments):
            names = ", ".join(sorted({a.container or a.filename
                                      for a in msg.attachments if a.encrypted})[:3])
            if _PASSWORD_WORDS.search(msg.body_text[:20000]) or _PASSWORD_WORDS.search(
                    msg.subject):
                out.add("ATT_ENCRYPTED_ARCHIVE_PASSWORD", names)
            else:
                out.add("ATT_ENCRYPTED_ARCHIVE", names)
        return out.findings()

    def _name(self, name: str, label: str, out: Collector) -> list[str]:
        exts = _extensions(name)
        if any(mark in name for mark in _RTLO):
            out.add("ATT_DOUBLE_EXTENSION", f"{label!r}: right-to-left override in the name")
        if not exts:
            return exts
        if exts[-1] in self.blocked:
            if len(exts) >= 2 and exts[-2] in _DECOY_EXTENSIONS:
                out.add("ATT_DOUBLE_EXTENSION", label)
            out.add("ATT_BLOCKED_TYPE", label)
        elif exts[-1] in self.html and len(exts) >= 2 and exts[-2] in _DECOY_EXTENSIONS:
            out.add("ATT_DOUBLE_EXTENSION", label)
        return exts

    def _file(self, att: Attachment, out: Collector) -> None:
        label = f"{att.filename} (in {att.container})" if att.container else att.filename
        label = label or f"unnamed {att.declared_type or att.detected_type}"
        exts = self._name(att.filename, label, out)
        ext = exts[-1] if exts else ""
        detected = att.detected_type
        if (detected in _EXECUTABLE_TYPES and ext not in self.blocked) or (
                detected in _UNIX_BINARIES and ext in _DECOY_EXTENSIONS):
            out.add("ATT_DISGUISED_EXECUTABLE", f"{label}: content is {detected}")
        if att.sha256:
            hit = self.feeds.match_hash(att.sha256)
            if hit:
                out.add("ATT_HASH_BLOCKED", f"{label} sha256={att.sha256} [{hit.feed}]",
                        (f"feed:{hit.feed}", hit.version))
        data = att.content[: self.max_scan]
        if not data:
            return
        # Unnamed HTML parts are message bodies (AMP, odd multipart trees), not files to open.
        if att.filename and (detected in _HTML_TYPES or ext in self.html):
            self._html(data, label, ext == "svg" or detected == "image/svg+xml", out)
        elif detected == "application/pdf":
            self._pdf(data, label, out)
        # Only real container formats: oletools would read a text file named .doc as VBA source,
        # but Word opens such a file as text and runs nothing.
        if detected in _OLE_OR_ZIP and (ext in self.macro or ext in _OFFICE_ZIP_EXTS):
            self._office(att.content, att.filename or "document", label, out)
        if self.clamd is not None:
            result = self.clamd.scan(att.content)
            if result.infected:
                out.add("ATT_AV_INFECTED", f"{label}: {result.signature}")

    def _html(self, data: bytes, label: str, svg: bool, out: Collector) -> None:
        if _SCRIPT.search(data):
            if _SMUGGLE.search(data):
                out.add("ATT_HTML_SMUGGLING", label)
            out.add("ATT_HTML_SCRIPT", f"{label}{' (SVG)' if svg else ''}")
        if (_PASSWORD_FIELD.search(data) or _CARD_FIELD.search(data)) and _FORM.search(data):
            out.add("ATT_HTML_CREDENTIAL_FORM", label)
        if _REDIRECT.search(data):
            out.add("ATT_HTML_REDIRECT", label)

    def _pdf(self, data: bytes, label: str, out: Collector) -> None:
        # Stream bodies are compressed binary: skipping them keeps random bytes from spelling
        # "/JS". Names may be hex-escaped (/J#61vaScript), so unescape before matching.
        body = _PDF_STREAM.sub(b" ", data)
        body = _PDF_NAME_HEX.sub(lambda m: bytes([int(m.group(1), 16)]), body)
        keys = {m.group(1).decode() for m in _PDF_KEYS.finditer(body)}
        if "Launch" in keys:
            out.add("ATT_PDF_LAUNCH", label)
        if keys & {"JavaScript", "JS"}:
            if keys & {"OpenAction", "AA"}:
                out.add("ATT_PDF_AUTO_JAVASCRIPT", label)
            else:
                out.add("ATT_PDF_JAVASCRIPT", label)
        if keys & {"EmbeddedFile", "EmbeddedFiles"}:
            out.add("ATT_PDF_EMBEDDED_FILE", label)

    def _office(self, data: bytes, name: str, label: str, out: Collector) -> None:
        if len(data) > self.max_scan:
            out.add("ATT_UNSCANNABLE", f"{label}: larger than max_scan_bytes")
            return
        if not self.oletools:
            out.add("ATT_UNSCANNABLE", f"{label}: macros not checked, oletools is not installed "
                    "(mailsift[attachments])")
            return
        try:
            auto, suspicious, macros, encrypted = _vba(name, data)
        except Exception as exc:  # oletools raises many kinds on hostile files
            out.add("ATT_UNSCANNABLE", f"{label}: {type(exc).__name__}")
            return
        if encrypted:
            out.add("ATT_ENCRYPTED_DOCUMENT", label)
        if macros:
            if auto and suspicious:
                calls = ", ".join(sorted(suspicious)[:4])
                out.add("ATT_OFFICE_AUTOEXEC", f"{label}: {', '.join(sorted(auto)[:3])}; {calls}")
            else:
                out.add("ATT_OFFICE_MACRO", label)


_OFFICE_ZIP_EXTS = frozenset({"docm", "dotm", "xlsm", "xltm", "xlam", "pptm", "ppsm", "potm",
                              "xlsb", "doc", "xls", "ppt", "docx", "xlsx", "pptx"})


@lru_cache(maxsize=1)
def _vba_parser_class() -> Any:
    """oletools' VBA_Parser, imported on the first Office file (the import costs ~0.25 s, which
    every scan worker would otherwise pay at start-up, while most never see a macro format)."""
    with warnings.catch_warnings():
        # oletools 0.60 calls pyparsing's deprecated enablePackrat at import; not our concern.
        warnings.simplefilter("ignore", DeprecationWarning)
        from oletools.olevba import VBA_Parser

    # oletools logs parse noise at WARNING for hostile files; it is evidence, not an incident.
    logging.getLogger("olevba").setLevel(logging.ERROR)
    return VBA_Parser


def _vba(name: str, data: bytes) -> tuple[set[str], set[str], bool, bool]:
    """(auto-exec keywords, suspicious keywords, has macros, encrypted) via oletools."""
    parser = _vba_parser_class()(name, data=data)
    try:
        encrypted = bool(parser.detect_is_encrypted())
        has = bool(parser.detect_vba_macros())
        auto: set[str] = set()
        suspicious: set[str] = set()
        if has:
            for kind, keyword, _desc in parser.analyze_macros():
                if kind == "AutoExec":
                    auto.add(str(keyword))
                elif kind == "Suspicious":
                    suspicious.add(str(keyword))
        return auto, suspicious, has, encrypted
    finally:
        parser.close()


def _decompress(data: bytes, max_bytes: int) -> bytes:
    """gzip/bzip2/xz inflated to at most ``max_bytes`` (a bomb stops there), else ``data``."""
    try:
        if data[:2] == b"\x1f\x8b":
            return zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(data, max_bytes)
        if data[:3] == b"BZh":
            return bz2.BZ2Decompressor().decompress(data, max_length=max_bytes)
        if data[:6] == b"\xfd7zXZ\x00":
            return lzma.LZMADecompressor().decompress(data, max_length=max_bytes)
    except (zlib.error, OSError, EOFError, lzma.LZMAError, ValueError):
        return b""
    return data


def _tar_members(data: bytes, max_bytes: int) -> Iterator[str]:
    """Member names of a tar (optionally gzip/bzip2/xz) archive, or the original name stored in
    a plain .gz; headers only, never extracted, inflating at most ``max_bytes``."""
    inner = _decompress(data, max_bytes)
    names: list[str] = []
    try:
        with tarfile.open(fileobj=io.BytesIO(inner), mode="r:") as tar:
            for info in tar:
                if info.isfile():
                    names.append(info.name)
                if len(names) >= 1000:
                    break
    except (tarfile.TarError, EOFError, OSError, ValueError):
        pass  # not a tar, or cut at the inflation bound: keep the names read so far
    yield from names
    if not names and data[:2] == b"\x1f\x8b" and len(data) > 10 and data[3] & 0x08:
        end = data.find(b"\0", 10, 10 + 1024)  # gzip FNAME: the original file name
        if end > 10:
            yield data[10:end].decode("latin-1")


def build(settings: Settings, services: Services) -> AttachmentDetector:
    att = settings.attachments
    clamd = None
    if att.clamav:
        if not settings.clamav.configured:
            from mailsift.core.errors import ConfigError

            raise ConfigError("[attachments] clamav = true needs [clamav] socket or host",
                              source="attachments")
        clamd = ClamdClient(settings.clamav)
    return AttachmentDetector(
        CodeBook("attachments", CODES, att.weights),
        blocked=frozenset(att.blocked_extensions),
        html=frozenset(att.html_extensions),
        macro=frozenset(att.macro_extensions),
        feeds=services.feeds or FeedSet.of(()),
        max_scan_bytes=att.max_scan_bytes,
        clamd=clamd,
        oletools=installed("oletools"),
    )


SPEC = DetectorSpec(
    name="attachments", stage=Stage.CONTENT, order=30, prefix="ATT_", codes=CODES,
    settings=AttachmentSettings, factory=build,
    summary="Safe attachments, static: what each file really is (plus optional ClamAV)",
)
