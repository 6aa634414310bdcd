"""What a recipient does from a digest link: release, ask for release, "not junk", opt out.

The link (``services.links``) proves who the recipient is and which message and action it is
for; this module checks the link again at confirmation, takes it from the single-use ledger,
asks the quarantine policy (``services.quarantine_policy``) whether that recipient may still do
that with that message, and acts through the same services as the console: a recipient cannot
do more from a mail than it could signed in. Every outcome, refusals included, is audited under
``link:<recipient>``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mailsift.core.errors import MailsiftError
from mailsift.services.access import NotFound, Principal
from mailsift.services.links import ActionLink, LinkError, LinkProblem, LinkSigner
from mailsift.services.quarantine import QuarantineService
from mailsift.services.quarantine_policy import QuarantinePolicies
from mailsift.services.release import ReleaseService
from mailsift.services.reports import ReportService
from mailsift.store import MessageRecord, Store
from mailsift.store.enduser import EndUserStore

__all__ = ["LinkOutcome", "LinkPreview", "LinkRetry", "SelfService"]

_ACTION_WORDS = {
    "release": "Release this message to your inbox",
    "request": "Ask an administrator to release this message",
    "notjunk": "Report this message as not junk",
    "optout": "Stop sending me quarantine digests",
}


class LinkRetry(MailsiftError):
    """The action was tried and nothing happened (the next hop refused): the link stays usable."""


@dataclass(frozen=True, slots=True)
class LinkPreview:
    """What the confirmation page shows before anything happens."""

    link: ActionLink
    question: str
    sender: str = ""
    subject: str = ""
    category: str = ""


@dataclass(slots=True)
class LinkOutcome:
    link: ActionLink
    done: str
    details: list[str] = field(default_factory=list)


class SelfService:
    def __init__(self, store: Store, signer: LinkSigner, *, quarantine: QuarantineService,
                 release: ReleaseService, reports: ReportService,
                 policies: QuarantinePolicies) -> None:
        self.store = store
        self.signer = signer
        self.quarantine = quarantine
        self.release = release
        self.reports = reports
        self.policies = policies
        self.enduser = EndUserStore(store.engine, store.clock)

    @staticmethod
    def principal(recipient: str) -> Principal:
        return Principal(f"link:{recipient}", "recipient", recipient)

    def _check(self, token: str, purpose: str, message: str) -> tuple[ActionLink,
                                                                       MessageRecord | None]:
        link = self.signer.read(token, now=self.store.clock.now(), purpose=purpose,
                                message=message if purpose != "optout" else None)
        if self.enduser.link_used(link.id):
            raise LinkError(LinkProblem.USED)
        if purpose == "optout":
            return link, None
        actor = self.principal(link.recipient)
        try:
            rec = self.quarantine.record(actor, link.message)
        except NotFound as exc:
            raise LinkError(LinkProblem.NOT_ALLOWED,
                            "This message is no longer in quarantine.") from exc
        needs = {"release": "release", "request": "request_release", "notjunk": "report"}
        if not self.policies.permits(actor, rec, needs[purpose]):
            raise LinkError(LinkProblem.NOT_ALLOWED)
        return link, rec

    def preview(self, token: str, purpose: str, message: str) -> LinkPreview:
        """Checks the link without using it (a scanner's pre-fetch changes nothing)."""
        link, rec = self._check(token, purpose, message)
        if rec is None:
            return LinkPreview(link, _ACTION_WORDS[purpose])
        return LinkPreview(link, _ACTION_WORDS[purpose], sender=rec.from_header or
                           (rec.mail_from or ""), subject=rec.subject,
                           category=self.policies.category_of(rec, link.recipient))

    async def confirm(self, token: str, purpose: str, message: str, *,
                      client: str = "") -> LinkOutcome:
        """Use the link once and act. Raises ``LinkError`` for a link that is refused."""
        try:
            link, rec = self._check(token, purpose, message)
        except LinkError as exc:
            self.store.audit.append("link:-", "link.refused", message[:64],
                                    {"purpose": purpose, "problem": exc.problem.value,
                                     "client": client})
            raise
        actor = self.principal(link.recipient)
        if not self.enduser.use_link(link.id, purpose, link.message, link.recipient, client):
            self.store.audit.append(actor.name, "link.refused", link.message,
                                    {"purpose": purpose, "problem": "used", "client": client})
            raise LinkError(LinkProblem.USED)
        try:
            outcome = await self._act(actor, link, rec)
        except MailsiftError:
            self.enduser.unuse_link(link.id)  # nothing happened: the link may be tried again
            raise
        self.store.audit.append(actor.name, f"link.{purpose}", link.message,
                                {"link": link.id, "client": client, "done": outcome.done})
        return outcome

    async def _act(self, actor: Principal, link: ActionLink,
                   rec: MessageRecord | None) -> LinkOutcome:
        if link.purpose == "optout":
            self.enduser.set_pref(link.recipient, opted_out=True)
            return LinkOutcome(link, "You will not get quarantine digests any more.")
        assert rec is not None
        if link.purpose == "request":
            info = self.quarantine.request_release(actor, link.message, reason="from digest")
            return LinkOutcome(link, "Your request was sent to the administrators.",
                               [f"request {info.id}"])
        out = LinkOutcome(link, "")
        if link.purpose == "notjunk":
            report, _ = self.reports.create(actor, link.message, "ham",
                                            comment="not junk (digest link)")
            out.details.append(f"report {report.id}")
            if not self.policies.permits(actor, rec, "release"):
                if self.policies.permits(actor, rec, "request_release"):
                    self.quarantine.request_release(actor, link.message,
                                                    reason="reported not junk from digest")
                    out.done = ("Thank you: your report was recorded and an administrator was "
                                "asked to release the message.")
                else:
                    out.done = "Thank you: your report was recorded."
                return out
        # The policy granted this recipient release of its own copy: the release runs under
        # the link's name with staff rights for exactly that one recipient.
        staff = Principal(actor.name, "analyst", link.recipient)
        sent = await self.release.release(staff, link.message, [link.recipient],
                                          reason=f"{link.purpose} link from digest")
        if sent.sent:
            out.done = "The message was released to your inbox."
        elif sent.already:
            out.done = "The message had already been released."
        elif sent.uncertain:
            out.done = ("The message was handed to the mail server, which did not confirm it. "
                        "An administrator can see what happened.")
        else:
            problems = {**sent.failed, **sent.kept}
            # nothing was delivered: the link may be tried again later
            raise LinkRetry("The message could not be released just now: "
                            + ("; ".join(problems.values()) or "nothing was sent"))
        if link.purpose == "notjunk":
            out.done = "Thank you for the report. " + out.done
        return out
