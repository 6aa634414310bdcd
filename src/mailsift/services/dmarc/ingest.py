"""Reading the aggregate reports other receivers send about our domains (the ``rua`` mailbox
and ``mailsift dmarc ingest``).

Input is untrusted: a message, or a file that is XML, gzip or zip (reports arrive zipped as
often as gzip'd, whatever the RFC says), possibly nested up to ``max_archive_depth``. Every
layer is bounded before it is inflated (compressed size, inflated size read at most limit + 1
bytes, zip member count) and the XML is parsed by defusedxml with DTDs forbidden outright, so
neither external entities (XXE) nor entity expansion (billion laughs) can run. What providers
actually send is accepted: a namespace or none, surrounding whitespace, upper-case values,
a missing ``<envelope_from>``, several or no ``<spf>`` results.

A report is stored once: the same (org_name, report_id, policy domain) again is a duplicate.
Rows are filed under the UTC day of the report's ``begin``.
"""

from __future__ import annotations

import datetime as dt
import email
import gzip
import io
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import Message
from pathlib import Path
from typing import Any

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

from mailsift.config.dmarc import DmarcReportSettings
from mailsift.core.errors import InputError
from mailsift.store.dmarc import DmarcStore, IngestedReport, IngestedRow

__all__ = ["IngestResult", "Ingestor", "ReportError", "parse_feedback", "report_files"]

_MAX_XML_DEPTH = 16
_REPORT_TYPES = ("application/gzip", "application/x-gzip", "application/zip",
                 "application/x-zip-compressed", "application/x-zip", "text/xml",
                 "application/xml", "application/octet-stream")


class ReportError(InputError):
    """An input that is not a readable aggregate report (or breaks a limit)."""


@dataclass
class IngestResult:
    stored: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def add(self, other: IngestResult) -> None:
        self.stored += other.stored
        self.duplicates += other.duplicates
        self.errors += other.errors

    def to_dict(self) -> dict[str, list[str]]:
        return {"stored": self.stored, "duplicates": self.duplicates, "errors": self.errors}


# --- unpacking -------------------------------------------------------------------------------


def report_files(data: bytes, name: str, limits: DmarcReportSettings,
                 depth: int = 0) -> Iterator[tuple[str, bytes]]:
    """XML documents inside ``data`` (XML itself, gzip or zip, nested within the limits)."""
    if len(data) > limits.max_xml_bytes:
        raise ReportError(f"{name}: {len(data)} bytes is over the {limits.max_xml_bytes} limit")
    if data[:2] == b"\x1f\x8b":
        if depth >= limits.max_archive_depth:
            raise ReportError(f"{name}: archives nested deeper than {limits.max_archive_depth}")
        try:
            with gzip.GzipFile(fileobj=io.BytesIO(data)) as fh:
                inner = fh.read(limits.max_xml_bytes + 1)
        except (OSError, EOFError) as exc:
            raise ReportError(f"{name}: broken gzip: {exc}") from exc
        if len(inner) > limits.max_xml_bytes:
            raise ReportError(f"{name}: inflates beyond {limits.max_xml_bytes} bytes")
        yield from report_files(inner, name.removesuffix(".gz"), limits, depth + 1)
    elif data[:4] == b"PK\x03\x04":
        if depth >= limits.max_archive_depth:
            raise ReportError(f"{name}: archives nested deeper than {limits.max_archive_depth}")
        yield from _zip_members(data, name, limits, depth)
    else:
        yield name, data


def _zip_members(data: bytes, name: str, limits: DmarcReportSettings,
                 depth: int) -> Iterator[tuple[str, bytes]]:
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as exc:
        raise ReportError(f"{name}: broken zip: {exc}") from exc
    with zf:
        members = [i for i in zf.infolist() if not i.is_dir()]
        if len(members) > limits.max_archive_members:
            raise ReportError(f"{name}: {len(members)} zip members (limit "
                              f"{limits.max_archive_members})")
        for info in members:
            if info.file_size > limits.max_xml_bytes:
                raise ReportError(f"{name}/{info.filename}: declares {info.file_size} bytes")
            try:
                with zf.open(info) as fh:  # a lying size header cannot make us read more
                    inner = fh.read(limits.max_xml_bytes + 1)
            except (zipfile.BadZipFile, OSError, RuntimeError, NotImplementedError) as exc:
                raise ReportError(f"{name}/{info.filename}: {exc}") from exc
            if len(inner) > limits.max_xml_bytes:
                raise ReportError(f"{name}/{info.filename}: inflates beyond the limit")
            yield from report_files(inner, f"{name}/{info.filename}", limits, depth + 1)


def message_attachments(raw: bytes, limits: DmarcReportSettings) -> Iterator[tuple[str, bytes]]:
    """Report-like parts of a message (by media type or file name), size-checked."""
    msg = email.message_from_bytes(raw)
    for n, part in enumerate(_walk(msg)):
        ctype = part.get_content_type().lower()
        filename = part.get_filename() or ""
        lowered = filename.lower()
        if ctype.startswith("multipart/"):
            continue
        named = lowered.endswith((".xml", ".gz", ".zip", ".xml.gz"))
        if ctype not in _REPORT_TYPES and not named:
            continue
        if ctype == "application/octet-stream" and not named:
            continue
        payload = part.get_payload(decode=True)
        if not isinstance(payload, bytes) or not payload:
            continue
        if len(payload) > limits.max_attachment_bytes:
            raise ReportError(f"{filename or f'part {n}'}: {len(payload)} bytes is over the "
                              f"attachment limit {limits.max_attachment_bytes}")
        yield filename or f"part-{n}", payload


def _walk(msg: Message, limit: int = 200) -> Iterator[Message]:
    """Parts of ``msg`` without recursion, at most ``limit``."""
    stack = [msg]
    seen = 0
    while stack and seen < limit:
        part = stack.pop(0)
        seen += 1
        if part.is_multipart():
            payload = part.get_payload()
            if isinstance(payload, list):
                stack.extend(p for p in payload if isinstance(p, Message))
        else:
            yield part


# --- parsing ---------------------------------------------------------------------------------


def _local(tag: Any) -> str:
    return str(tag).rpartition("}")[2] if isinstance(tag, str) else ""


def _child(el: Any, name: str) -> Any:
    for c in el:
        if _local(c.tag) == name:
            return c
    return None


def _children(el: Any, name: str) -> list[Any]:
    return [c for c in el if _local(c.tag) == name] if el is not None else []


def _text(el: Any, name: str, default: str = "") -> str:
    c = _child(el, name) if el is not None else None
    return (c.text or "").strip() if c is not None and c.text else default


def _depth(root: Any) -> int:
    deepest = 0
    stack = [(root, 1)]
    while stack:
        el, d = stack.pop()
        deepest = max(deepest, d)
        stack.extend((c, d + 1) for c in el)
    return deepest


def _int(text: str, what: str) -> int:
    try:
        return int(float(text.strip()))
    except ValueError as exc:
        raise ReportError(f"{what}: not a number: {text!r}") from exc


def parse_feedback(xml: bytes, name: str = "report",
                   max_records: int = 200_000) -> IngestedReport:
    """One ``<feedback>`` document; ``ReportError`` for anything hostile or unreadable."""
    try:
        root = fromstring(xml, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as exc:
        raise ReportError(f"{name}: refused: {type(exc).__name__} (DTDs and entities are "
                          "not allowed in reports)") from exc
    except Exception as exc:  # expat's ParseError and friends
        raise ReportError(f"{name}: not well-formed XML: {exc}") from exc
    if _local(root.tag) != "feedback":
        raise ReportError(f"{name}: root element is <{_local(root.tag)}>, not <feedback>")
    if _depth(root) > _MAX_XML_DEPTH:
        raise ReportError(f"{name}: XML nested deeper than {_MAX_XML_DEPTH} levels")
    md = _child(root, "report_metadata")
    pp = _child(root, "policy_published")
    if md is None or pp is None:
        raise ReportError(f"{name}: no report_metadata or policy_published")
    domain = _text(pp, "domain").lower().rstrip(".")
    report_id = _text(md, "report_id")
    org = _text(md, "org_name")
    if not domain or not report_id or not org:
        raise ReportError(f"{name}: org_name, report_id and policy domain are required")
    dr = _child(md, "date_range")
    begin = _int(_text(dr, "begin", "0"), f"{name}: begin")
    end = _int(_text(dr, "end", "0"), f"{name}: end")
    policy = {n: _text(pp, n).lower() for n in ("p", "sp", "np", "pct", "adkim", "aspf", "fo",
                                                "testing", "discovery_method")
              if _text(pp, n)}
    records = _children(root, "record")
    if len(records) > max_records:
        raise ReportError(f"{name}: {len(records)} records (limit {max_records})")
    rows = tuple(_row(rec, name) for rec in records)
    errors = tuple(e.text.strip() for e in _children(md, "error") if e.text)
    return IngestedReport(org, _text(md, "email"), report_id, domain, float(begin),
                          float(end), policy, errors, rows)


def _row(rec: Any, name: str) -> IngestedRow:
    row = _child(rec, "row")
    ids = _child(rec, "identifiers")
    if row is None or ids is None:
        raise ReportError(f"{name}: a record without row or identifiers")
    pe = _child(row, "policy_evaluated")
    ar = _child(rec, "auth_results")
    dkim = []
    for d in _children(ar, "dkim"):
        dkim.append(f"{_text(d, 'domain').lower()}:{_text(d, 'selector')}:"
                    f"{_text(d, 'result').lower()}")
    spf = [f"{_text(s, 'domain').lower()}:{_text(s, 'result').lower()}"
           for s in _children(ar, "spf")]
    reasons = [_text(r, "type").lower() for r in _children(pe, "reason")]
    source_ip = _text(row, "source_ip")
    header_from = _text(ids, "header_from").lower().rstrip(".")
    if not source_ip or not header_from:
        raise ReportError(f"{name}: a record without source_ip or header_from")
    return IngestedRow(
        header_from=header_from[:255],
        envelope_from=_text(ids, "envelope_from").lower()[:255],
        source_ip=source_ip[:64],
        count=_int(_text(row, "count", "0"), f"{name}: count"),
        disposition=_text(pe, "disposition", "none").lower()[:16],
        dkim_aligned=_text(pe, "dkim").lower() == "pass",
        spf_aligned=_text(pe, "spf").lower() == "pass",
        dkim=",".join(dkim), spf=",".join(spf), reasons=",".join(r for r in reasons if r),
    )


# --- storing ---------------------------------------------------------------------------------


def _day(t: float) -> str:
    return dt.datetime.fromtimestamp(t, dt.UTC).date().isoformat()


class Ingestor:
    """Reads reports from files, directories and messages into the store."""

    def __init__(self, store: DmarcStore, settings: DmarcReportSettings) -> None:
        self.store = store
        self.settings = settings

    def ingest_bytes(self, data: bytes, name: str) -> IngestResult:
        out = IngestResult()
        if len(data) > self.settings.max_attachment_bytes:
            out.errors.append(f"{name}: {len(data)} bytes is over the attachment limit")
            return out
        if _looks_like_message(data):
            return self.ingest_message(data, name)
        try:
            for inner_name, xml in report_files(data, name, self.settings):
                self._store(xml, inner_name, out)
        except ReportError as exc:
            out.errors.append(str(exc))
        return out

    def ingest_message(self, raw: bytes, source: str) -> IngestResult:
        out = IngestResult()
        try:
            found = False
            for name, payload in message_attachments(raw, self.settings):
                found = True
                for inner_name, xml in report_files(payload, f"{source}: {name}",
                                                    self.settings):
                    self._store(xml, inner_name, out)
            if not found:
                out.errors.append(f"{source}: no report attachment (XML, gzip or zip)")
        except ReportError as exc:
            out.errors.append(str(exc))
        return out

    def ingest_path(self, path: Path) -> IngestResult:
        out = IngestResult()
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for f in files:
            try:
                size = f.stat().st_size
                if size > self.settings.max_attachment_bytes:
                    out.errors.append(f"{f}: {size} bytes is over the attachment limit")
                    continue
                out.add(self.ingest_bytes(f.read_bytes(), str(f)))
            except OSError as exc:
                out.errors.append(f"{f}: {exc}")
        return out

    def _store(self, xml: bytes, name: str, out: IngestResult) -> None:
        try:
            report = parse_feedback(xml, name, self.settings.max_records)
        except ReportError as exc:
            out.errors.append(str(exc))
            return
        _, created = self.store.add_report(report, source=name, day=_day(report.date_begin))
        label = f"{report.org_name} {report.report_id} ({report.policy_domain})"
        (out.stored if created else out.duplicates).append(label)


def _looks_like_message(data: bytes) -> bool:
    head = data[:2048].lstrip()
    if head.startswith((b"<", b"\x1f\x8b", b"PK")):
        return False
    first = head.split(b"\n", 1)[0]
    name, colon, _ = first.partition(b":")
    return bool(colon) and name.strip().replace(b"-", b"").isalnum()
