"""Content-addressed blob stores for raw messages (sha256): the protocol and the local directory.

Every backend stores bytes under their sha256, returns from ``put_many`` only once the bytes are
durable in that backend, and checks the hash on every ``get`` (a corrupt or substituted blob is
an error, never returned). Identical messages share one blob; deleting is the caller's decision
once no row references the hash. The backends (docs/store.md, "Where originals live"):

- ``BlobStore`` here: a local directory (the default with SQLite). A blob lives at
  ``<root>/<aa>/<sha256>``; writes go to a temporary file in the target directory, which is
  fsynced, renamed into place, and then the directory itself is fsynced.
- ``DatabaseBlobs`` (``blobs_db.py``): a table of the store's database (the default with
  PostgreSQL); durable when the insert commits.
- ``S3Blobs`` (``blobs_s3.py``): an S3-compatible bucket; durable when the PUT is acknowledged.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import threading
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Protocol, runtime_checkable

from mailsift.core.errors import StoreError

__all__ = ["BLOB_BACKENDS", "BlobStore", "Blobs", "FallbackBlobs", "check_digest", "digest"]

BLOB_BACKENDS = ("local", "postgresql", "s3")
_HEX = frozenset("0123456789abcdef")


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def check_digest(sha256: str) -> str:
    """``sha256`` if it is a blob id (64 lower-case hex digits), else ``StoreError``."""
    if len(sha256) != 64 or not _HEX.issuperset(sha256):
        raise StoreError(f"invalid blob id {sha256!r}")
    return sha256


def verified(sha256: str, data: bytes) -> bytes:
    if digest(data) != sha256:
        raise StoreError(f"blob {sha256} is corrupt (hash mismatch)")
    return data


@runtime_checkable
class Blobs(Protocol):
    """Raw bytes by sha256. ``put_many`` returns only once every blob is durable."""

    name: str

    @staticmethod
    def digest(data: bytes) -> str:
        """The id a blob of ``data`` gets."""
        return digest(data)

    def put_many(self, items: Iterable[bytes]) -> list[str]: ...

    def get(self, sha256: str) -> bytes:
        """The bytes (hash checked); ``StoreError`` if missing, unreadable or corrupt."""
        ...

    def exists(self, sha256: str) -> bool: ...

    def delete(self, sha256: str) -> bool: ...

    def ids(self) -> Iterator[str]:
        """Every stored blob id, in ascending order (``migrate-blobs`` walks this)."""
        ...

    def close(self) -> None: ...


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class IoPool:
    """The threads a blob backend does its I/O on: started on first use, shut down (after
    what is queued) by ``close``, started again if used after that."""

    def __init__(self, threads: int, name: str) -> None:
        self.threads = threads
        self.name = name
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    def get(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix=self.name)
            return self._pool

    def close(self) -> None:
        with self._lock:
            if self._pool is not None:
                self._pool.shutdown(wait=True)
                self._pool = None


class BlobStore:
    """Raw bytes by sha256 under ``root`` (the ``local`` backend)."""

    name = "local"

    def __init__(self, root: str | os.PathLike[str], *, io_threads: int = 16) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self._io = IoPool(io_threads, "blobs")

    @staticmethod
    def digest(data: bytes) -> str:
        return digest(data)

    def path(self, sha256: str) -> Path:
        check_digest(sha256)
        # One level of 256 folders: a batch touches at most 256 directories to fsync.
        return self.root / sha256[:2] / sha256

    def put(self, data: bytes) -> str:
        """Store ``data`` durably; returns its sha256."""
        return self.put_many([data])[0]

    def _write(self, sha: str, data: bytes) -> tuple[Path, bool] | None:
        target = self.path(sha)
        if target.exists():
            return None
        created = False
        if not target.parent.is_dir():
            target.parent.mkdir(exist_ok=True)
            created = True
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return target.parent, created

    def put_many(self, items: Iterable[bytes]) -> list[str]:
        """Store several blobs durably.

        fsync is latency-bound, so files are written and synced on a small thread pool (about
        ten times the rate of one-by-one on the ext4 here), then each touched directory is
        synced once - the rename is only durable once its directory entry is.
        """
        blobs = list(items)
        digests = [self.digest(b) for b in blobs]
        unique = dict(zip(digests, blobs, strict=True))
        try:
            if len(unique) == 1:
                results = [self._write(*next(iter(unique.items())))]
            else:
                results = list(self._io.get().map(lambda kv: self._write(*kv), unique.items()))
            dirs: set[Path] = set()
            for res in results:
                if res is not None:
                    dirs.add(res[0])
                    if res[1]:
                        dirs.add(self.root)
            if len(dirs) > 1:
                list(self._io.get().map(_fsync_dir, dirs))
            else:
                for folder in dirs:
                    _fsync_dir(folder)
        except OSError as exc:
            raise StoreError(f"cannot write blob: {exc}") from exc
        return digests

    def get(self, sha256: str) -> bytes:
        try:
            data = self.path(sha256).read_bytes()
        except FileNotFoundError as exc:
            raise StoreError(f"blob {sha256} not found") from exc
        except OSError as exc:
            raise StoreError(f"cannot read blob {sha256}: {exc}") from exc
        return verified(sha256, data)

    def exists(self, sha256: str) -> bool:
        return self.path(sha256).is_file()

    def delete(self, sha256: str) -> bool:
        target = self.path(sha256)
        try:
            target.unlink()
        except FileNotFoundError:
            return False
        _fsync_dir(target.parent)
        return True

    def ids(self) -> Iterator[str]:
        for folder in sorted(p for p in self.root.iterdir() if p.is_dir() and len(p.name) == 2):
            for entry in sorted(folder.iterdir()):
                name = entry.name
                if len(name) == 64 and _HEX.issuperset(name) and entry.is_file():
                    yield name

    def close(self) -> None:
        self._io.close()


class FallbackBlobs:
    """Writes go to ``primary``; a read that ``primary`` cannot answer is tried on ``older``.

    For switching backends without a gap: set the new backend with the old one as
    ``[store] blob_read_fallback``, run ``mailsift store migrate-blobs``, then drop the fallback.
    """

    def __init__(self, primary: Blobs, older: Blobs) -> None:
        self.primary = primary
        self.older = older
        self.name = primary.name

    @staticmethod
    def digest(data: bytes) -> str:
        return digest(data)

    def put_many(self, items: Iterable[bytes]) -> list[str]:
        return self.primary.put_many(items)

    def get(self, sha256: str) -> bytes:
        try:
            return self.primary.get(sha256)
        except StoreError as first:
            try:
                return self.older.get(sha256)
            except StoreError:
                raise first from None

    def exists(self, sha256: str) -> bool:
        return self.primary.exists(sha256) or self.older.exists(sha256)

    def delete(self, sha256: str) -> bool:
        a = self.primary.delete(sha256)
        b = self.older.delete(sha256)
        return a or b

    def ids(self) -> Iterator[str]:
        return self.primary.ids()

    def close(self) -> None:
        self.primary.close()
        self.older.close()
