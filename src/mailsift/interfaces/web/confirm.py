"""Confirmation of bulk and destructive actions (issue 24): before the console deletes,
removes, rolls back, withdraws, retires or releases in bulk, it shows what the action will touch
(a count and a sample) and asks for a reason and a confirmation that names the count.

Without JavaScript (the console's CSP forbids scripts) this is two POSTs to the same URL: the
first (from the button on the page) answers with the preview; the second carries ``reason`` and
``confirm`` = the count the preview showed. The server recounts and acts only when the count
still matches and the reason is not empty, so a stale preview or a hand-made request that skips
it is refused, not executed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from fastapi import Request
from fastapi.responses import Response

from mailsift.interfaces.web.context import Viewer, WebContext

__all__ = ["Preview", "confirmed"]


@dataclass(frozen=True, slots=True)
class Preview:
    """What a destructive action will touch, as the confirmation page shows it."""

    title: str  # "Delete the original of ms-..."
    verb: str  # "delete", shown in the confirmation: "Yes, delete 2 quarantined copies"
    count: int
    noun: str  # plural noun of what is counted ("quarantined copies", "versions")
    sample: Sequence[tuple[str, str]] = ()  # (text, link or "") of some of what is touched
    fields: Mapping[str, str] = field(default_factory=dict)  # hidden fields to post again
    note: str = ""  # what happens, in one sentence
    back: str = "/"  # where "Cancel" goes

    @property
    def label(self) -> str:
        return f"{self.verb} {self.count} {self.noun}"


def confirmed(ctx: WebContext, request: Request, who: Viewer, form: Mapping[str, Any],
              preview: Preview) -> str | Response:
    """The reason when the form confirms ``preview`` (its count, a non-empty reason), else
    the confirmation page to answer with (400 with the problem when a confirmation was sent
    but does not hold)."""
    reason = str(form.get("reason", "")).strip()
    sent = form.get("confirm")
    if sent is not None and preview.count:
        if str(sent) != str(preview.count):
            problem = (f"the count changed since the preview (it said {sent}, it is now "
                       f"{preview.count}): check again and confirm")
        elif not reason:
            problem = "a reason is required (it is audited)"
        else:
            return reason
    else:
        problem = ""
    return ctx.render(request, "confirm.html", who, http_status=400 if problem else 200,
                      preview=preview, problem=problem, reason=reason,
                      action=request.url.path)
