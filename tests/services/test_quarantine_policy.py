"""Quarantine policies per category: what a recipient may do with its own quarantined copy.

Defaults after Defender's AdminOnlyAccessPolicy / DefaultFullAccessPolicy: malware and
phish_high are admin-only (see and ask at most), spam and bulk full access. Enforced in the
service every interface uses; the console, API and CLI tests check their own doors."""

from __future__ import annotations

import pytest
from enduser_support import hold, services_for, settings_for
from pydantic import ValidationError

from mailsift.config.enduser import EndUserSettings, QuarantineAccessSettings
from mailsift.config.schema import Settings
from mailsift.core.verdict import Category
from mailsift.services.access import AccessDenied, NotFound, Principal
from mailsift.services.quarantine_policy import QuarantinePolicies, RecipientRefused
from mailsift.services.store_services import StoreServices
from mailsift.store import Store
from mailsift.testing.sink import SmtpSink

BOB = Principal("bob", "recipient", "bob@corp.example")
ADMIN = Principal("alice", "admin")


def test_defaults_follow_admin_only_and_full_access() -> None:
    p = QuarantinePolicies()
    for cat in ("malware", "phish_high"):
        assert p.actions(cat) == ("see", "request_release", "report")
        assert not p.allows(cat, "download") and not p.allows(cat, "release")
        assert not p.allows(cat, "notify")
    for cat in ("spam", "bulk"):
        assert p.actions(cat) == ("see", "preview", "download", "release", "request_release",
                                  "report")
        assert p.allows(cat, "notify")
    assert p.actions("phish") == ("see", "preview", "download", "request_release", "report")


def test_bad_policy_settings_fail_startup() -> None:
    with pytest.raises(ValidationError, match="unknown category"):
        QuarantineAccessSettings(categories={"phsh": "full_access"})
    with pytest.raises(ValidationError, match="no such policy"):
        QuarantineAccessSettings(categories={"spam": "everything"})
    with pytest.raises(ValidationError, match="cannot grant"):
        Settings.model_validate({"enduser": {"access": {"policies": {
            "odd": {"see": False, "release": True}}}}})
    own = EndUserSettings.model_validate({"access": {
        "policies": {"look_only": {"preview": True}},
        "categories": {"spam": "look_only"}}})
    assert QuarantinePolicies(own.access).actions("spam") == ("see", "preview", "report")


def test_security_recipient_cannot_download_malware_or_phish_high(store: Store,
                                                                  sink: SmtpSink) -> None:
    svc = services_for(store, settings_for(store, sink))
    hold(store, "mal", Category.MALWARE, ("bob@corp.example",))
    hold(store, "ph", Category.PHISH_HIGH, ("bob@corp.example",))
    hold(store, "sp", Category.SPAM, ("bob@corp.example",))
    for mid in ("mal", "ph"):
        with pytest.raises(RecipientRefused, match="does not let a recipient download"):
            svc.quarantine.download(BOB, mid)
        view = svc.quarantine.show(BOB, mid)  # listed, but no preview of the content
        assert view.text == "" and view.preview_html == "" and view.headers == ()
        assert svc.quarantine.download(ADMIN, mid)  # staff: their role decides
    assert b"Subject" in svc.quarantine.download(BOB, "sp")
    assert svc.quarantine.show(BOB, "sp").text
    refused = [e for e in store.audit.entries() if e.action == "quarantine.download.refused"]
    assert {e.target for e in refused} == {"mal", "ph"}


def test_request_release_follows_the_policy(store: Store, sink: SmtpSink) -> None:
    settings = settings_for(store, sink, access={
        "categories": {"bulk": "no_access", "spam": "ask_nothing"},
        "policies": {"ask_nothing": {"preview": True}}})
    svc = StoreServices.build(store, settings=settings)
    hold(store, "mal", Category.MALWARE, ("bob@corp.example",))
    hold(store, "sp", Category.SPAM, ("bob@corp.example",))
    hold(store, "bk", Category.BULK, ("bob@corp.example",))
    assert svc.quarantine.request_release(BOB, "mal").state == "pending"  # admin-only: ask
    with pytest.raises(AccessDenied, match="ask for the release"):
        svc.quarantine.request_release(BOB, "sp")
    with pytest.raises(NotFound):  # no_access: not even listed
        svc.quarantine.record(BOB, "bk")
    listed = {i.message for i in svc.quarantine.search(BOB).items}
    assert listed == {"mal", "sp"}
    assert svc.quarantine.record(ADMIN, "bk").id == "bk"
