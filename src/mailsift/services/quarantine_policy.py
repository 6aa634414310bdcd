"""Quarantine policies: what a recipient may do with one of its quarantined copies.

One table decides, for every interface: ``[quarantine_access]`` maps each detection category to
a policy (``admin_only``, ``limited``, ``full_access``, ``no_access`` or one of your own) that
grants the recipient ``see``, ``preview``, ``download``, ``release``, ``request_release`` and
``report``, and says whether digests list the message (``notify``). Staff (admin, analyst) are
not limited by it: their role decides. The console, the REST API, the CLI and the digest links
all go through ``QuarantineService`` / ``ReleaseService`` / the digest actions, which ask
``permits`` here, so a policy cannot be enforced in one place and forgotten in another.

A copy's category is the recipient's own verdict (per-recipient policies can differ); the
strictest of the message's categories is used when the copy has none.
"""

from __future__ import annotations

from mailsift.config.enduser import RECIPIENT_ACTIONS, AccessPolicy, QuarantineAccessSettings
from mailsift.services.access import AccessDenied, Principal
from mailsift.store import MessageRecord

__all__ = ["QuarantinePolicies", "RecipientRefused"]


class RecipientRefused(AccessDenied):
    """The quarantine policy of this message's category does not let its recipient do that."""


_WORDS = {
    "see": "see", "preview": "preview", "download": "download", "release": "release",
    "request_release": "ask for the release of", "report": "report",
}


class QuarantinePolicies:
    def __init__(self, settings: QuarantineAccessSettings | None = None) -> None:
        self.settings = settings or QuarantineAccessSettings()

    def policy(self, category: str) -> AccessPolicy:
        return self.settings.policy(category)

    def allows(self, category: str, action: str) -> bool:
        if action not in (*RECIPIENT_ACTIONS, "notify"):
            raise ValueError(f"unknown recipient action {action!r}")
        return bool(getattr(self.policy(category), action))

    def category_of(self, rec: MessageRecord, recipient: str | None) -> str:
        mine = [r.category for r in rec.recipients
                if recipient and r.recipient == recipient.lower()]
        return mine[0] if mine else rec.category

    def permits(self, actor: Principal, rec: MessageRecord, action: str) -> bool:
        """Staff: always (their role was checked); a recipient: what its policy grants."""
        if not actor.restricted:
            return True
        return self.allows(self.category_of(rec, actor.mailbox), action)

    def check(self, actor: Principal, rec: MessageRecord, action: str) -> None:
        if not self.permits(actor, rec, action):
            category = self.category_of(rec, actor.mailbox)
            raise RecipientRefused(
                f"the quarantine policy for {category} ({self.settings.policy_name(category)}) "
                f"does not let a recipient {_WORDS.get(action, action)} this message; ask an "
                "administrator")

    def actions(self, category: str) -> tuple[str, ...]:
        """The recipient's actions for a category, in display order."""
        pol = self.policy(category)
        return tuple(a for a in RECIPIENT_ACTIONS if getattr(pol, a))
