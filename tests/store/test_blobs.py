"""Content-addressed blobs: dedup, integrity, durable write path."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailsift.core.errors import StoreError
from mailsift.store import BlobStore


def test_put_get_dedup(tmp_path: Path) -> None:
    blobs = BlobStore(tmp_path / "b")
    a = blobs.put(b"hello")
    assert a == BlobStore.digest(b"hello")
    assert blobs.put(b"hello") == a
    assert blobs.get(a) == b"hello"
    assert blobs.path(a).relative_to(tmp_path / "b").parts == (a[:2], a)
    assert not list((tmp_path / "b").rglob(".tmp-*"))


def test_put_many_and_delete(tmp_path: Path) -> None:
    blobs = BlobStore(tmp_path)
    digests = blobs.put_many([b"x" * n for n in range(1, 50)])
    assert len(set(digests)) == 49
    assert all(blobs.exists(d) for d in digests)
    assert blobs.delete(digests[0])
    assert not blobs.delete(digests[0])
    with pytest.raises(StoreError):
        blobs.get(digests[0])


def test_corruption_is_detected(tmp_path: Path) -> None:
    blobs = BlobStore(tmp_path)
    d = blobs.put(b"original")
    blobs.path(d).write_bytes(b"tampered")
    with pytest.raises(StoreError, match="corrupt"):
        blobs.get(d)


def test_invalid_id_rejected(tmp_path: Path) -> None:
    with pytest.raises(StoreError):
        BlobStore(tmp_path).path("../../etc/passwd")


def test_put_fsyncs_file_and_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    synced: list[int] = []
    real = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real(fd))[1])
    BlobStore(tmp_path).put(b"durable")
    # the file, its directory, and the parents whose entries changed
    assert len(synced) >= 2
