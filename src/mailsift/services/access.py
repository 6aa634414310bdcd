"""Who may do what with the store: principals, roles and the errors services raise.

Roles: ``admin`` (everything; the only role that manages console users), ``analyst`` (read
everything, release, triage user reports), ``recipient`` (only their own quarantine: list, show,
download, ask for release; report messages addressed to their own mailbox and follow the reports
about it). Services check permissions themselves so the CLI, the REST API and the web console
enforce the same rules.

User reports (``services.reports``): ``report.create`` (every role; a recipient only for its own
mailbox's copies), ``report.read`` and ``report.triage`` (admin, analyst), ``report.read.own``
(recipient: the reports about its own mailbox). Triage actions that release or add a list entry
also need ``quarantine.release`` or ``lists.write``, so an analyst may confirm and release but
not list.
"""

from __future__ import annotations

from dataclasses import dataclass

from mailsift.core.errors import InputError, MailsiftError

__all__ = ["AccessDenied", "NotFound", "Principal", "own_mailbox", "require", "require_reason"]

_GRANTS: dict[str, frozenset[str]] = {
    "admin": frozenset({
        "trace.read", "quarantine.read", "quarantine.release", "quarantine.delete",
        "request.create", "request.decide", "lists.read", "lists.write", "audit.read",
        "hold.write", "retention.purge", "token.write", "rollout.read", "rollout.write",
        "users.read", "users.write", "report.create", "report.read", "report.triage",
    }),
    "analyst": frozenset({
        "trace.read", "quarantine.read", "quarantine.release", "request.create", "lists.read",
        "rollout.read", "report.create", "report.read", "report.triage",
    }),
    "recipient": frozenset({"quarantine.read.own", "request.create", "report.create",
                            "report.read.own"}),
}


class AccessDenied(MailsiftError):
    """The principal's role does not allow this."""


class NotFound(InputError):
    """The named message, entry, request or job does not exist (or is not visible)."""


@dataclass(frozen=True, slots=True)
class Principal:
    """The actor of a service call, as recorded in the audit log."""

    name: str
    role: str
    mailbox: str | None = None

    def can(self, permission: str) -> bool:
        return permission in _GRANTS.get(self.role, frozenset())

    @property
    def restricted(self) -> bool:
        """True when the principal sees only its own mailbox's messages."""
        return self.role == "recipient"


def require(actor: Principal, permission: str) -> None:
    if not actor.can(permission):
        raise AccessDenied(f"{actor.name} ({actor.role}) may not {permission}")


def own_mailbox(actor: Principal) -> str:
    """The mailbox a restricted principal may see; ``AccessDenied`` when it has none (it sees
    nothing, rather than a query scoped by a value that matches nothing)."""
    if not actor.mailbox:
        raise AccessDenied(f"{actor.name} ({actor.role}) has no mailbox to see")
    return actor.mailbox


CLI_ADMIN = Principal("cli", "admin")


def require_reason(reason: str | None, what: str) -> str:
    """The stripped reason of a destructive action, or ``InputError``: the console and the
    API refuse an empty one (issue 24), the audit log records it."""
    text = (reason or "").strip()
    if not text:
        raise InputError(f"{what} needs a reason (it is audited)")
    return text
