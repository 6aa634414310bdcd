"""Wide allow/block entries (free-mail and public-suffix domains, wide networks, public-suffix
hosts) are refused unless forced with a reason; a forced one is audited and alerts."""

from __future__ import annotations

import pytest

from mailsift.core.errors import InputError, Overridable
from mailsift.services.access import Principal
from mailsift.services.list_scope import wide_reason
from mailsift.services.store_services import StoreServices
from mailsift.store import Store

ADMIN = Principal("alice", "admin")


@pytest.mark.parametrize(("kind", "value"), [
    ("domain", "gmail.com"), ("domain", "co.uk"), ("domain", "web.app"),
    ("ip", "10.0.0.0/16"), ("ip", "2001:db8::/32"), ("url", "web.app"),
    ("url", "https://co.uk/"), ("url", "com"),
])
def test_wide_entries_are_refused_without_force(store: Store, kind: str, value: str) -> None:
    svc = StoreServices.build(store)
    with pytest.raises(InputError, match=r"is wide: it would act on .*force with a reason"):
        svc.lists.add(ADMIN, kind, value, "allow")
    with pytest.raises(InputError, match="is wide"):  # force alone is not enough
        svc.lists.add(ADMIN, kind, value, "block", force=True, reason="  ")
    assert svc.lists.entries(ADMIN) == []
    assert svc.audit.entries(ADMIN) == []


def test_freemail_message_names_the_provider(store: Store) -> None:
    svc = StoreServices.build(store)
    with pytest.raises(InputError) as err:
        svc.lists.add(ADMIN, "domain", "GMail.com", "allow")
    assert "it would act on mail of every sender at gmail.com" in str(err.value)
    assert "an audited force with a reason overrides it" in str(err.value)
    # each interface says how in its own words (issue 24: no "--force" in the console)
    assert isinstance(err.value, Overridable)
    assert "--force with --reason" in err.value.how("--force", "--reason")


@pytest.mark.parametrize(("kind", "value"), [
    ("domain", "partner.example"), ("domain", "mail.gmail.com.evil.example"),
    ("sender", "friend@gmail.com"), ("ip", "192.0.2.0/24"), ("ip", "2001:db8::/48"),
    ("ip", "198.51.100.7"), ("url", "web.app/some/page"), ("url", "mysite.web.app"),
    ("hash", "a" * 64),
])
def test_narrow_entries_need_no_force(store: Store, kind: str, value: str) -> None:
    svc = StoreServices.build(store)
    svc.lists.add(ADMIN, kind, value, "block")
    assert [a.action for a in svc.audit.entries(ADMIN)] == ["lists.add"]
    assert store.rollout.alerts() == []


def test_per_user_entries_are_never_wide() -> None:
    assert wide_reason("domain", "gmail.com", "user:bob@corp.example") is None
    assert wide_reason("domain", "gmail.com", "incident") is not None


def test_forced_wide_entry_is_audited_and_alerts(store: Store) -> None:
    svc = StoreServices.build(store)
    entry = svc.lists.add(ADMIN, "domain", "gmail.com", "block", force=True,
                          reason="INC-42 campaign from gmail, 2h")
    assert entry.value == "gmail.com" and svc.lists.snapshot().entries == (entry,)
    (audit,) = svc.audit.entries(ADMIN)
    assert audit.action == "lists.force" and audit.target == entry.entry_id
    assert audit.detail["reason"] == "INC-42 campaign from gmail, 2h"
    assert "every sender at gmail.com" in str(audit.detail["wide"])
    (alert,) = store.rollout.alerts()
    assert alert.kind == "forced_list_entry" and "gmail.com" in alert.message
    assert "INC-42" in alert.message
