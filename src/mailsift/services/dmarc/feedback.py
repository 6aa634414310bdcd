"""The aggregate report document: ``<feedback>`` XML from one period's grouped evaluations.

Two shapes: ``rfc9990`` (DMARCbis, namespace ``urn:ietf:params:xml:ns:dmarc-2.0``, with
``discovery_method``, ``np``, ``testing`` and ``generator``) and ``rfc7489`` (appendix C as
receivers deploy it: no namespace, ``pct`` and ``fo`` in ``policy_published``, ``envelope_from``
and one ``spf`` result always present). Element order follows each specification's tables, so
the output validates against the schemas under ``tests/services/dmarc/data``. Override reasons
are ours (``evaluations.REASON_TYPES``) and are mapped onto each format's vocabulary here.

Rendering is deterministic (sorted rows, fixed attributes): the same evaluations always give
the same bytes, which is what the golden-file tests hold on to.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass

from mailsift import __version__
from mailsift.auth.dmarc_record import DmarcSyntaxError, parse_record
from mailsift.services.dmarc.rua import record_tags
from mailsift.store.dmarc import AggregateRow

__all__ = ["NAMESPACE", "Policy", "ReportMeta", "policy_from_record", "render_feedback",
           "report_filename", "report_subject"]

NAMESPACE = "urn:ietf:params:xml:ns:dmarc-2.0"

_REASONS = {
    "rfc9990": {"local_policy": "local_policy", "forwarded": "trusted_forwarder",
                "trusted_arc": "trusted_forwarder", "sampled_out": "other",
                "policy_test_mode": "policy_test_mode"},
    "rfc7489": {"local_policy": "local_policy", "forwarded": "forwarded",
                "trusted_arc": "trusted_forwarder", "sampled_out": "sampled_out",
                "policy_test_mode": "other"},
}


@dataclass(frozen=True, slots=True)
class ReportMeta:
    org_name: str
    email: str
    report_id: str
    begin: int
    end: int
    extra_contact_info: str = ""
    errors: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Policy:
    """The DMARC record the report is about (the last one seen in the period)."""

    domain: str
    p: str = "none"
    sp: str | None = None
    np: str | None = None
    adkim: str = "r"
    aspf: str = "r"
    pct: int = 100
    fo: str = "0"
    testing: bool = False
    discovery: str = "treewalk"
    rua: str = ""


def policy_from_record(domain: str, record: str, discovery: str) -> tuple[Policy, list[str]]:
    """The published policy of ``record``; a record we could not read gives p=none and an
    ``<error>`` line (it was valid when evaluated, so this is rare)."""
    tags = record_tags(record)
    try:
        rec = parse_record(record)
    except DmarcSyntaxError as exc:
        return Policy(domain, discovery=discovery, rua=tags.get("rua", "")), [str(exc)]
    return Policy(domain, rec.p, rec.sp, rec.np, rec.adkim, rec.aspf, rec.pct,
                  tags.get("fo", "0") or "0", rec.t, discovery, tags.get("rua", "")), \
        list(rec.notes)


def report_filename(receiver: str, domain: str, begin: int, end: int, unique: str,
                    ext: str = "xml.gz") -> str:
    """RFC 9990 2.5.1: ``receiver!policy-domain!begin!end!unique-id.ext``."""
    return f"{receiver}!{domain}!{begin}!{end}!{unique}.{ext}"


def report_subject(domain: str, receiver: str, report_id: str) -> str:
    return f"Report Domain: {domain} Submitter: {receiver} Report-ID: <{report_id}>"


def _sub(parent: ET.Element, tag: str, text: str | int | None = None) -> ET.Element:
    el = ET.SubElement(parent, tag)
    if text is not None:
        el.text = str(text)
    return el


def render_feedback(meta: ReportMeta, policy: Policy, rows: Sequence[AggregateRow],
                    fmt: str = "rfc9990") -> bytes:
    """The report as UTF-8 XML bytes."""
    legacy = fmt == "rfc7489"
    root = ET.Element("feedback") if legacy else ET.Element("feedback", xmlns=NAMESPACE)
    _sub(root, "version", "1.0")
    md = _sub(root, "report_metadata")
    _sub(md, "org_name", meta.org_name)
    _sub(md, "email", meta.email)
    if meta.extra_contact_info:
        _sub(md, "extra_contact_info", meta.extra_contact_info)
    _sub(md, "report_id", meta.report_id)
    dr = _sub(md, "date_range")
    _sub(dr, "begin", meta.begin)
    _sub(dr, "end", meta.end)
    for err in meta.errors:
        _sub(md, "error", err)
    if not legacy:
        _sub(md, "generator", f"mailsift {__version__}")
    pp = _sub(root, "policy_published")
    _sub(pp, "domain", policy.domain)
    if legacy:
        _sub(pp, "adkim", policy.adkim)
        _sub(pp, "aspf", policy.aspf)
        _sub(pp, "p", policy.p)
        _sub(pp, "sp", policy.sp or policy.p)
        _sub(pp, "pct", policy.pct)
        _sub(pp, "fo", policy.fo)
    else:
        _sub(pp, "discovery_method", policy.discovery)
        _sub(pp, "p", policy.p)
        if policy.sp:
            _sub(pp, "sp", policy.sp)
        if policy.np:
            _sub(pp, "np", policy.np)
        _sub(pp, "fo", policy.fo)
        _sub(pp, "adkim", policy.adkim)
        _sub(pp, "aspf", policy.aspf)
        _sub(pp, "testing", "y" if policy.testing else "n")
    names = _REASONS["rfc7489" if legacy else "rfc9990"]
    for row in rows:
        _record(root, row, names, legacy, policy)
    ET.indent(root, space="  ")
    body: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=False)
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + body + b"\n"


def _record(root: ET.Element, row: AggregateRow, names: dict[str, str], legacy: bool,
            policy: Policy) -> None:
    rec = _sub(root, "record")
    r = _sub(rec, "row")
    _sub(r, "source_ip", row.source_ip)
    _sub(r, "count", row.count)
    pe = _sub(r, "policy_evaluated")
    passed = row.dkim_aligned or row.spf_aligned
    disposition = row.disposition
    if passed and not legacy and policy.p != "none":
        disposition = "pass"  # RFC 9990: passing DMARC under an enforcing policy
    _sub(pe, "disposition", disposition)
    _sub(pe, "dkim", "pass" if row.dkim_aligned else "fail")
    _sub(pe, "spf", "pass" if row.spf_aligned else "fail")
    for kind, comment in json.loads(row.reasons or "[]"):
        reason = _sub(pe, "reason")
        _sub(reason, "type", names.get(kind, "other"))
        if comment:
            _sub(reason, "comment", comment)
    ids = _sub(rec, "identifiers")
    if legacy:
        if row.envelope_to:
            _sub(ids, "envelope_to", row.envelope_to)
        _sub(ids, "envelope_from", row.envelope_from)
        _sub(ids, "header_from", row.header_from)
    else:
        _sub(ids, "header_from", row.header_from)
        _sub(ids, "envelope_from", row.envelope_from)
        if row.envelope_to:
            _sub(ids, "envelope_to", row.envelope_to)
    auth = json.loads(row.auth or "{}")
    ar = _sub(rec, "auth_results")
    for domain, selector, result in auth.get("dkim") or ():
        d = _sub(ar, "dkim")
        _sub(d, "domain", domain)
        _sub(d, "selector", selector)
        _sub(d, "result", result)
    spf = auth.get("spf")
    if spf or legacy:  # RFC 7489 requires one spf element; say "none" when SPF did not run
        domain, scope, result = spf or (row.envelope_from, "mfrom", "none")
        s = _sub(ar, "spf")
        _sub(s, "domain", domain)
        _sub(s, "scope", scope if scope in ("mfrom", "helo") else "mfrom")
        _sub(s, "result", result)
