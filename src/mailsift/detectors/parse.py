"""Parse detector: reports what parsing found wrong with a message as ``PARSE_*`` findings.

Limit findings (size, depth, parts, header length/count) carry no weight; policy's guardrail step
(step 0) turns them into reject/tempfail. An archive that would expand like a bomb is malware
family. Sloppy-but-harmless defects (unknown charset, broken encoding) are small spam signals:
legitimate mailers rarely produce them, spam tools often do.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from mailsift.config.schema import Settings
from mailsift.core.context import ScanContext
from mailsift.core.findings import Family, Finding, Stage
from mailsift.detectors.base import Services
from mailsift.detectors.spec import CodeSpec, DetectorSpec

__all__ = ["CODES", "SPEC", "ParseDetector", "build"]

_UNKNOWN = CodeSpec(0.0, None, "Parse problem")

CODES: Mapping[str, CodeSpec] = {
    "PARSE_SIZE_LIMIT": CodeSpec(0.0, None, "The message is larger than the configured size limit"),
    "PARSE_DEPTH_LIMIT": CodeSpec(0.0, None,
                                  "MIME parts are nested deeper than the configured limit"),
    "PARSE_PARTS_LIMIT": CodeSpec(0.0, None,
                                  "The message has more MIME parts than the configured limit"),
    "PARSE_HEADER_TOO_LONG": CodeSpec(0.0, None, "A header is longer than the configured limit"),
    "PARSE_HEADER_LIMIT": CodeSpec(0.0, None,
                                   "The message has more headers than the configured limit"),
    "PARSE_DECODED_LIMIT": CodeSpec(0.0, None,
                                    "Decoded content exceeded the limit; the rest was skipped"),
    "PARSE_TEXT_TRUNCATED": CodeSpec(0.0, None,
                                     "Only the first part of a very long body was analysed"),
    "PARSE_ARCHIVE_BOMB": CodeSpec(1.0, Family.MALWARE,
                                   "An archive member would expand far beyond its compressed size "
                                   "(decompression bomb)"),
    "PARSE_ARCHIVE_LIMIT": CodeSpec(0.0, None,
                                    "An archive has more or larger members than analysed"),
    "PARSE_ARCHIVE_DEPTH": CodeSpec(0.0, None, "Archives are nested deeper than analysed"),
    "PARSE_ARCHIVE_CORRUPT": CodeSpec(0.0, None, "An archive attachment could not be read"),
    "PARSE_NUL_BYTES": CodeSpec(1.0, Family.SPAM,
                                "The message contains NUL bytes, which mail must not carry"),
    "PARSE_UNKNOWN_CHARSET": CodeSpec(0.5, Family.SPAM,
                                      "A part declares a character set that does not exist"),
    "PARSE_BAD_CHARSET_DATA": CodeSpec(0.5, Family.SPAM,
                                       "Text could not be decoded in its declared charset"),
    "PARSE_BAD_ENCODING": CodeSpec(0.5, Family.SPAM, "A part's transfer encoding is broken"),
    "PARSE_BAD_ENCODED_WORD": CodeSpec(0.0, None, "A header has a malformed RFC 2047 encoded word"),
    "PARSE_MIME_DEFECT": CodeSpec(0.0, None, "The MIME structure is malformed"),
    "PARSE_HEADER_NESTING": CodeSpec(2.0, Family.SPAM,
                                     "An address header hides behind deeply nested comments"),
    "PARSE_BAD_ADDRESS": CodeSpec(1.0, Family.SPAM, "An address header cannot be parsed"),
    "PARSE_MALFORMED": CodeSpec(1.0, Family.SPAM, "The message could not be parsed as MIME"),
    "PARSE_HTML_DEPTH": CodeSpec(1.0, Family.SPAM,
                                 "HTML elements are nested absurdly deep (a parser attack); the "
                                 "excess tags were dropped, their text was kept"),
    "PARSE_BAD_PART": CodeSpec(0.5, Family.SPAM, "A MIME part could not be read; the others were"),
    "PARSE_FAILED": CodeSpec(0.0, None,
                             "The message could not be parsed at all; it was scanned as raw bytes "
                             "and is not treated as clean"),
}


class ParseDetector:
    name = "parse"
    stage = Stage.PARSE
    codes = frozenset(CODES)

    def run(self, ctx: ScanContext) -> Sequence[Finding]:
        grouped: dict[str, list[str]] = {}
        for code, evidence in ctx.message.defects:
            grouped.setdefault(code, []).append(evidence)
        out = []
        for code, items in grouped.items():
            spec = CODES.get(code, _UNKNOWN)
            family, weight, description = spec.family, spec.weight, spec.description
            out.append(Finding(code=code, weight=weight, evidence=tuple(items[:5]),
                               detector=self.name, category=family, description=description))
        if "PARSE_FAILED" in grouped:
            # An unparseable message is a scan that could not be done: precedence step 8
            # (an error is never "clean"; on_error decides tempfail or deliver_tagged).
            out.append(Finding(code="DETECTOR_ERROR", weight=0.0,
                               evidence=(self.name, grouped["PARSE_FAILED"][0]),
                               detector=self.name,
                               description="The parser failed; the message is not treated "
                                           "as clean"))
        return out

    def versions(self) -> Mapping[str, str]:
        return {}


def build(settings: Settings, services: Services) -> ParseDetector:
    return ParseDetector()


SPEC = DetectorSpec(
    name="parse", stage=Stage.PARSE, order=10, prefix="PARSE_", codes=CODES, factory=build,
    summary="What parsing found wrong with a message: limits, malformed MIME, bad encodings",
)
