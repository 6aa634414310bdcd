"""The three blob backends behind one protocol (local directory, PostgreSQL table, S3 bucket
on a real moto server): content addressing, hash checks on read, delete, listing; and moving
originals between them with ``migrate_blobs`` / ``mailsift store migrate-blobs``, resumed
after an interruption."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import update

from mailsift.core.errors import StoreError
from mailsift.interfaces.cli.main import main as cli
from mailsift.store import Blobs, Store
from mailsift.store.blob_migrate import migrate_blobs
from mailsift.store.blobs import FallbackBlobs
from mailsift.store.models import BlobRow
from mailsift.store.store import open_blobs
from mailsift.testing.s3 import S3Server, s3_unavailable
from mailsift.testing.storekit import make_result, pg_unavailable, temp_store_settings

# a moto S3 server and every backend pair: out of `make test-fast`
pytestmark = pytest.mark.slow

BACKENDS = ["local", "postgresql", "s3"]


@pytest.fixture(scope="module")
def s3() -> Iterator[S3Server]:
    if why := s3_unavailable():
        pytest.skip(why)
    with S3Server() as server:
        yield server


@pytest.fixture
def pg_store(tmp_path: Path, s3: S3Server) -> Iterator[Store]:
    """A PostgreSQL store whose settings also name the test bucket (one prefix per test)."""
    if why := pg_unavailable():
        pytest.skip(why)
    with temp_store_settings("postgresql", tmp_path, s3_endpoint=s3.endpoint,
                             s3_bucket=s3.bucket, s3_prefix=f"{tmp_path.name}/") as settings, \
            Store.open(settings) as store:
        yield store


def _tamper(store: Store, blobs: Blobs, sha: str, s3: S3Server) -> None:
    if blobs.name == "local":
        (store.settings.blob_path() / sha[:2] / sha).write_bytes(b"tampered")
    elif blobs.name == "postgresql":
        with store.engine.begin() as conn:
            conn.execute(update(BlobRow).where(BlobRow.sha256 == sha).values(data=b"tampered"))
    else:
        s3.client().put_object(Bucket=s3.bucket, Key=f"{store.settings.s3_prefix}{sha[:2]}/{sha}",
                               Body=b"tampered")


@pytest.mark.parametrize("name", BACKENDS)
def test_backend_contract(name: str, pg_store: Store, s3: S3Server) -> None:
    blobs = open_blobs(pg_store.settings, pg_store.engine, name)
    assert blobs.name == name
    digests = blobs.put_many([b"alpha", b"beta", b"alpha"])
    assert digests[0] == digests[2] == blobs.digest(b"alpha")
    assert blobs.get(digests[1]) == b"beta"
    assert blobs.exists(digests[0]) and sorted(blobs.ids()) == sorted(set(digests))
    assert blobs.put_many([b"alpha"]) == [digests[0]]  # idempotent
    _tamper(pg_store, blobs, digests[1], s3)
    with pytest.raises(StoreError, match="corrupt"):
        blobs.get(digests[1])
    assert blobs.delete(digests[0]) and not blobs.delete(digests[0])
    assert not blobs.exists(digests[0])
    with pytest.raises(StoreError, match="not found"):
        blobs.get(digests[0])
    with pytest.raises(StoreError, match="invalid blob id"):
        blobs.get("../../etc/passwd")
    blobs.close()


def test_postgresql_is_the_default_with_a_postgresql_store(pg_store: Store,
                                                           tmp_path: Path) -> None:
    assert pg_store.blobs.name == "postgresql" and not isinstance(pg_store.blobs, FallbackBlobs)
    pg_store.trace.record(make_result("m1", b"Subject: x\r\n\r\nbody\r\n"),
                          b"Subject: x\r\n\r\nbody\r\n")
    assert pg_store.trace.raw("m1") == b"Subject: x\r\n\r\nbody\r\n"
    assert not (tmp_path / "blobs").exists()  # nothing on the node's disk


def _fill(store: Store, n: int) -> dict[str, bytes]:
    raws = {f"m{i}": f"Subject: {i}\r\n\r\nbody {i}\r\n".encode() for i in range(n)}
    for mid, raw in raws.items():
        store.trace.record(make_result(mid, raw), raw)
    return raws


@pytest.mark.parametrize(("source", "target"), [("local", "postgresql"), ("postgresql", "s3"),
                                                ("s3", "local")])
def test_migrate_is_lossless_and_resumable(source: str, target: str, pg_store: Store) -> None:
    src = open_blobs(pg_store.settings, pg_store.engine, source)
    dst = open_blobs(pg_store.settings, pg_store.engine, target)
    raws = {f"x{i}": f"Subject: {i}\r\n\r\nbody {i}\r\n".encode() for i in range(150)}
    digests = src.put_many(list(raws.values()))

    class Interrupted(Exception):
        pass

    def stop_after_first_batch(report: object) -> None:
        raise Interrupted  # what Ctrl-C or a lost connection does between two batches

    with pytest.raises(Interrupted):
        migrate_blobs(pg_store.engine, src, dst, batch=64, progress=stop_after_first_batch)
    first = sum(1 for _ in dst.ids())
    assert 0 < first < len(raws)
    report = migrate_blobs(pg_store.engine, src, dst, delete_source=True)
    assert report.present == first and report.copied == len(raws) - first
    assert not report.failed and not report.missing
    assert report.deleted == len(raws) and not list(src.ids())
    assert [dst.get(d) for d in digests] == list(raws.values())


def test_fallback_reads_the_old_backend_while_moving(pg_store: Store) -> None:
    old = open_blobs(pg_store.settings, pg_store.engine, "local")
    new = open_blobs(pg_store.settings, pg_store.engine, "postgresql")
    sha = old.put_many([b"written before the switch"])[0]
    both = FallbackBlobs(new, old)
    assert both.get(sha) == b"written before the switch"
    fresh = both.put_many([b"after"])[0]
    assert new.exists(fresh) and not old.exists(fresh)
    with pytest.raises(StoreError, match="not found"):
        both.get("0" * 64)


def test_cli_migrate_blobs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with temp_store_settings("sqlite", tmp_path) as settings, Store.open(settings) as store:
        raws = _fill(store, 5)
        assert store.blobs.name == "local"
    config = tmp_path / "mailsift.toml"
    config.write_text(f'[store]\ndata_dir = "{tmp_path}"\n')
    assert cli(["store", "migrate-blobs", "--to", "postgresql", "--config", str(config),
                "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["copied"] == 5 and out["missing"] == [] and out["failed"] == {}
    # run again: nothing to copy, still nothing missing
    assert cli(["store", "migrate-blobs", "--to", "postgresql", "--config", str(config),
                "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["copied"] == 0 and out["present"] == 5
    config.write_text(f'[store]\ndata_dir = "{tmp_path}"\nblob_backend = "postgresql"\n')
    from mailsift.config import load_settings

    with Store.open(load_settings(str(config)).settings.store) as store:
        assert store.blobs.name == "postgresql"
        assert {m: store.trace.raw(m) for m in raws} == raws


def test_an_older_postgresql_site_still_reads_its_blob_dir(pg_store: Store) -> None:
    """Upgraded from before the postgresql backend: originals in blob_dir stay readable (the
    directory is the read fallback by itself) until migrate-blobs has moved them."""
    old = open_blobs(pg_store.settings, pg_store.engine, "local")
    sha = old.put_many([b"quarantined last year"])[0]
    with Store.open(pg_store.settings) as upgraded:
        assert isinstance(upgraded.blobs, FallbackBlobs)
        assert upgraded.blobs.get(sha) == b"quarantined last year"
        report = migrate_blobs(upgraded.engine, old, open_blobs(
            upgraded.settings, upgraded.engine, "postgresql"), delete_source=True)
        assert report.copied == 1 and upgraded.blobs.primary.get(sha) == b"quarantined last year"
