"""The one exception tree of mailsift.

    MailsiftError
    ├── ConfigError            a setting is invalid; startup fails instead of disabling a check
    ├── RuleError              a rule pack is invalid (carries file and line)
    ├── ParseError             raw bytes could not be turned into a ParsedMessage at all
    │   └── LimitExceeded      a resource limit (size, depth, parts, header length) was hit
    ├── DetectorError          a detector failed; the pipeline makes it a DETECTOR_ERROR finding
    │   └── DetectorTimeout    a detector ran past its time budget
    ├── DnsError
    │   └── DnsTempError       timeout, SERVFAIL, network trouble: ``temperror``, never ``fail``
    ├── InputError             unreadable input given to a command (bad path, unknown format)
    ├── StoreError             the store could not read or write
    └── DeliveryError          the next hop refused or could not be reached
        └── DeliveryTempError  4xx or connection trouble: keep the mail, retry later

Interfaces map these to exit codes and SMTP replies; nothing below the interfaces prints.
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "DeliveryError",
    "DeliveryTempError",
    "DetectorError",
    "DetectorTimeout",
    "DnsError",
    "DnsTempError",
    "InputError",
    "LimitExceeded",
    "MailsiftError",
    "Overridable",
    "ParseError",
    "RuleError",
    "StoreError",
]


class MailsiftError(Exception):
    """Root of every error mailsift raises on purpose."""


class ConfigError(MailsiftError):
    """A setting is invalid. ``source`` names the file or layer it came from."""

    def __init__(self, message: str, *, source: str | None = None) -> None:
        self.source = source
        super().__init__(f"{source}: {message}" if source else message)


class RuleError(MailsiftError):
    """A rule or rule pack is invalid; ``path`` and ``line`` point at the culprit."""

    def __init__(self, message: str, *, path: str | None = None, line: int | None = None) -> None:
        self.path = path
        self.line = line
        where = path or "<rules>"
        if line is not None:
            where = f"{where}:{line}"
        super().__init__(f"{where}: {message}")


class ParseError(MailsiftError):
    """Raw bytes could not be parsed at all (parsing normally degrades to PARSE_* findings)."""


class LimitExceeded(ParseError):
    """A configured resource limit was exceeded."""

    def __init__(self, limit: str, value: int, maximum: int) -> None:
        self.limit = limit
        self.value = value
        self.maximum = maximum
        super().__init__(f"{limit} {value} exceeds limit {maximum}")


class DetectorError(MailsiftError):
    """A detector failed while scanning a message."""

    def __init__(self, detector: str, message: str) -> None:
        self.detector = detector
        super().__init__(f"detector {detector}: {message}")


class DetectorTimeout(DetectorError):
    """A detector exceeded its time budget."""


class DnsError(MailsiftError):
    """A DNS question could not be answered."""


class DnsTempError(DnsError):
    """Transient DNS trouble (timeout, SERVFAIL): callers must report ``temperror``."""


class InputError(MailsiftError):
    """Input handed to a command cannot be read (missing file, unknown format)."""


class Overridable(InputError):
    """A refusal that an audited force may override. ``str()`` says so in neutral words; each
    interface says how in its own (``--force`` on the command line, the force box in the
    console, ``"force": true`` over the API): ``how(...)`` builds that text."""

    def __init__(self, message: str, *, needs_reason: bool = True) -> None:
        self.message = message
        self.needs_reason = needs_reason
        super().__init__(self.how("an audited force", "a reason"))

    def how(self, force: str, reason: str) -> str:
        """The refusal plus how to override it, e.g. ``how("--force", "--reason")``."""
        with_reason = f" with {reason}" if self.needs_reason else ""
        return f"{self.message} ({force}{with_reason} overrides it; it is audited)"


class StoreError(MailsiftError):
    """The store failed to read or write."""


class DeliveryError(MailsiftError):
    """The next hop permanently refused a message (5xx)."""

    def __init__(self, message: str, *, code: int | None = None) -> None:
        self.code = code
        super().__init__(message)


class DeliveryTempError(DeliveryError):
    """The next hop is down or answered 4xx: the message must be kept and retried."""
