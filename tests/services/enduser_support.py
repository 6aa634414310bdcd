"""Shared helpers of the end-user quarantine tests: quarantined mail of given categories."""

from __future__ import annotations

from typing import Any

from mailsift.config.schema import Settings
from mailsift.core.verdict import Category
from mailsift.services.store_services import StoreServices
from mailsift.store import Recordable, Store
from mailsift.testing.messages import make_message
from mailsift.testing.sink import SmtpSink
from mailsift.testing.storekit import make_result


def hold(store: Store, msg_id: str, category: Category, recipients: tuple[str, ...], *,
         subject: str = "Quarterly report", at: float | None = None,
         from_addr: str = "alice@partner.example") -> None:
    raw = make_message(message_id=f"<{msg_id}@example.org>", subject=subject)
    res = make_result(msg_id, raw, recipients=recipients, category=category, subject=subject,
                      from_addr=from_addr)
    store.trace.record_many([Recordable(res, raw, received_at=at)])


def settings_for(store: Store, sink: SmtpSink, **enduser: Any) -> Settings:
    """Settings whose release path (and so digests) goes to ``sink``, on ``store``'s data."""
    conf = store.settings.model_copy(update={"release_port": sink.port,
                                             "release_host": sink.host})
    object.__setattr__(store, "settings", conf)
    return Settings.model_validate({"store": conf.model_dump(), "enduser": enduser})


def services_for(store: Store, settings: Settings) -> StoreServices:
    return StoreServices.build(store, settings=settings)
