"""A release in milter mode, end to end with a real Postfix (issue 18.11).

In milter mode the delivery path is Postfix itself: a release sent to its port 25 passes the
milter again. It used to be scanned into quarantine again; now mailsift recognises its own
released copy by the signed ``X-Mailsift-Release-Id`` and lets it through, once."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from integration_support import (
    find_by_message_id,
    milter_setup,
    phish,
    require_postfix_and_swaks,
    swaks,
    write_eml,
)

from mailsift.config import load_settings
from mailsift.services.access import Principal
from mailsift.services.store_services import StoreServices

pytestmark = [pytest.mark.slow, pytest.mark.postfix, pytest.mark.timeout(120)]


def test_a_release_through_the_milter_is_delivered_not_quarantined_again(
        tmp_path: Path, eml_dir: Path) -> None:
    require_postfix_and_swaks()
    with milter_setup(tmp_path) as (sink, mailsift, postfix):
        mid = "<m-release@example.org>"
        code, _ = swaks(postfix.smtp_port, write_eml(eml_dir, "m-rel.eml", phish(mid)))
        assert code == 250
        with mailsift.store() as store:
            (record,) = find_by_message_id(store, mid)
            assert record.action == "quarantine"
        # the operator points releases at Postfix's public port, which runs the milter
        settings = load_settings(str(mailsift.config)).settings
        settings = settings.model_copy(update={"store": settings.store.model_copy(
            update={"release_port": postfix.smtp_port})})
        services = StoreServices.open(settings)
        try:
            report = asyncio.run(services.release.release(Principal("admin", "admin"),
                                                          record.id))
        finally:
            services.close()
        assert report.sent == ["bob@example.net"], report
        assert postfix.wait(lambda: any(m.message_id == mid for m in sink.messages), 20), (
            postfix.log()[-3000:], mailsift.log()[-3000:])
        (got,) = [m for m in sink.messages if m.message_id == mid]
        assert got.header("X-Mailsift-Action") == ["deliver"]
        # the verified release marks stay on the copy (other X-Mailsift-* still go)
        assert got.header("X-Mailsift-Release-Id") == report.release_ids, got.data[:2000]
        assert len(got.header("X-Mailsift-Release-Sig")) == 1
        with mailsift.store() as store:
            records = find_by_message_id(store, mid)
            statuses = sorted(r.recipients[0].status for r in records)
            assert statuses == ["accepted", "released"] or statuses == [
                "delivered", "released"], statuses
