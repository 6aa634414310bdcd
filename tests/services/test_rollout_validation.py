"""Issue 17 #11: every rollout write is validated in the service, so the CLI, the API and the
console refuse the same bad input (and nothing is written)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailsift.config.schema import Settings
from mailsift.core.errors import InputError
from mailsift.core.rollout import CanaryScope
from mailsift.services.access import NotFound, Principal
from mailsift.services.rollout import RolloutService
from mailsift.store.store import Store

ADMIN = Principal("ops@example.net", "admin")


def test_issue17_11_canary_percent_must_be_a_share() -> None:
    for bad in (500.0, 100.5, -1.0, float("nan")):
        with pytest.raises(InputError, match="percent"):
            CanaryScope(percent=bad)
    assert CanaryScope(percent=100.0).members() == ("%100",)


def test_issue17_11_incident_allow_validates_kind_value_and_incident(tmp_path: Path) -> None:
    settings = Settings.model_validate({"store": {"data_dir": str(tmp_path)}})
    with Store.open(settings.store) as store:
        service = RolloutService(store, settings)
        incident = store.rollout.open_incident("rule:X", reason="test", action_taken="none",
                                               messages=[])
        for kind, value in (("", "vendor.example"), ("bogus", "x"), ("domain", ""),
                            ("hash", "abc")):
            with pytest.raises(InputError):
                service.incident_allow(ADMIN, incident, kind, value, hours=1)
        with pytest.raises(NotFound):
            service.incident_allow(ADMIN, "INC-404", "domain", "vendor.example", hours=1)
        assert store.lists.entries() == []
        entry = service.incident_allow(ADMIN, incident, "domain", " Vendor.Example ", hours=1)
        assert (entry.kind, entry.value) == ("domain", "vendor.example")
