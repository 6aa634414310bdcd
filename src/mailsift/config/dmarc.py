"""Settings of DMARC aggregate reporting (``[dmarc_reports]``): sending reports about the mail
we receive (receiver side) and reading the reports others send about our domains (domain-owner
side). See docs/dmarc-reports.md.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = ["DmarcReportSettings"]


class DmarcReportSettings(BaseModel):
    """Aggregate reports: recording, the sending schedule, the report mailbox and its limits."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)

    # --- sending (receiver side) ------------------------------------------------------------
    record: bool = Field(True, description="record every DMARC evaluation in the store "
                         "(needed for sending; costs one batched insert per ~50 ms of mail)")
    send: bool = Field(False, description="send aggregate reports from `mailsift serve` on "
                       "the schedule (reports can always be sent with `mailsift dmarc reports "
                       "send --now`)")
    interval_hours: int = Field(24, ge=1, le=24, description="reporting period; periods are "
                                "aligned to UTC midnight, so 24 means one report per UTC day")
    org_name: str = Field("", description="<org_name> of our reports; empty: [smtp] hostname")
    email: str = Field("", description="sender (From) and <email> contact of our reports, e.g. "
                       "dmarc-reports@example.net: use a domain of ours that passes DMARC")
    extra_contact_info: str = ""
    report_format: Literal["rfc9990", "rfc7489"] = Field(
        "rfc9990", description="rfc9990: the DMARCbis namespace urn:ietf:params:xml:ns:"
        "dmarc-2.0; rfc7489: appendix C without a namespace, as most receivers still send")
    max_report_bytes: int = Field(10 * 1024 * 1024, ge=1024, description="never send a gzip'd "
                                  "report bigger than this, whatever the rua size limit says")
    max_attempts: int = Field(5, ge=1, le=50, description="sends of one report before it is "
                              "recorded as failed")
    retry_seconds: float = Field(900.0, gt=0, description="first retry delay; doubles each try")
    lease_seconds: float = Field(600.0, gt=0, description="a node's claim on a report expires "
                                 "after this (another node then takes the report over)")
    check_seconds: float = Field(300.0, gt=0, description="how often `serve` looks for due "
                                 "reports")
    keep_days: float = Field(14.0, gt=0, description="recorded evaluations and sent-report "
                             "bookkeeping are purged after this")
    relay_host: str = Field("", description="where reports go out; empty: [gateway] "
                            "next_hop_host")
    relay_port: int = Field(0, ge=0, le=65535, description="0: [gateway] next_hop_port")
    relay_timeout: float = Field(60.0, gt=0)

    # --- ingesting (domain-owner side) ------------------------------------------------------
    ingest_addresses: tuple[str, ...] = Field(
        (), description="rua mailboxes whose mail the gateway also reads as aggregate reports "
        "(the message still takes its normal path, so the address must exist at the next hop)")
    our_domains: tuple[str, ...] = Field(
        (), description="domains the console calls ours (empty: every domain reported on)")
    max_attachment_bytes: int = Field(10 * 1024 * 1024, ge=1024, description="largest report "
                                      "file (compressed) read")
    max_xml_bytes: int = Field(50 * 1024 * 1024, ge=1024, description="largest report after "
                               "decompression")
    max_archive_depth: int = Field(2, ge=1, le=5, description="zip/gzip nesting read")
    max_archive_members: int = Field(20, ge=1, le=1000)
    max_records: int = Field(200_000, ge=1, description="records per report")

    @field_validator("ingest_addresses", "our_domains")
    @classmethod
    def _lower(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(v.strip().lower().rstrip(".") for v in value if v.strip())

    @field_validator("interval_hours")
    @classmethod
    def _divides_day(cls, value: int) -> int:
        if 24 % value:
            raise ValueError("interval_hours must divide 24 (1, 2, 3, 4, 6, 8, 12 or 24): "
                             "periods are aligned to UTC midnight")
        return value

    @model_validator(mode="after")
    def _sender_named(self) -> DmarcReportSettings:
        if self.send and not self.email:
            raise ValueError("[dmarc_reports] send = true needs email (the From address of "
                             "our reports, in a domain of ours that passes DMARC)")
        return self
