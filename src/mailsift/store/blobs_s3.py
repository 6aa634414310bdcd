"""Blobs in an S3-compatible bucket (AWS S3, MinIO, Ceph RGW, ...), for large sites.

Objects are named ``<prefix><aa>/<sha256>`` (content addressed, as on disk). Guarantees:
``put_many`` returns once every PUT was acknowledged (S3 and its compatibles acknowledge only
durably stored objects), each PUT carries the object's SHA-256 so the server refuses bytes
damaged on the way, and every read checks the hash again. There is no fsync to call: durability
is the service's (on a single MinIO disk, as durable as that disk). Credentials come from the
usual AWS chain (environment, ``~/.aws``, instance role); the endpoint, bucket, prefix and region
are ``[store] s3_*``. Needs the ``s3`` extra (boto3).
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable, Iterator
from typing import Any

from mailsift.core.errors import StoreError
from mailsift.store.blobs import IoPool, check_digest, digest, verified

__all__ = ["S3Blobs"]


class S3Blobs:
    """Raw bytes by sha256 in a bucket (the ``s3`` backend)."""

    name = "s3"

    def __init__(self, bucket: str, *, endpoint: str = "", region: str = "", prefix: str = "",
                 io_threads: int = 16, client: Any = None) -> None:
        if not bucket:
            raise StoreError("the s3 blob backend needs [store] s3_bucket")
        self.bucket = bucket
        self.prefix = prefix
        if client is None:
            try:
                import boto3
                from botocore.config import Config
            except ImportError as exc:
                raise StoreError("the s3 blob backend needs boto3: pip install "
                                 "'mailsift[s3]'") from exc
            client = boto3.client("s3", endpoint_url=endpoint or None,
                                  region_name=region or None,
                                  config=Config(retries={"max_attempts": 5, "mode": "standard"},
                                                max_pool_connections=io_threads))
        self.client = client
        self._io = IoPool(io_threads, "s3blobs")

    @staticmethod
    def digest(data: bytes) -> str:
        return digest(data)

    def key(self, sha256: str) -> str:
        check_digest(sha256)
        return f"{self.prefix}{sha256[:2]}/{sha256}"

    def _put(self, sha: str, data: bytes) -> None:
        checksum = base64.b64encode(hashlib.sha256(data).digest()).decode()
        self.client.put_object(Bucket=self.bucket, Key=self.key(sha), Body=data,
                               ChecksumSHA256=checksum)

    def put_many(self, items: Iterable[bytes]) -> list[str]:
        blobs = list(items)
        digests = [digest(b) for b in blobs]
        unique = dict(zip(digests, blobs, strict=True))
        try:
            if len(unique) == 1:
                self._put(*next(iter(unique.items())))
            elif unique:
                list(self._io.get().map(lambda kv: self._put(*kv), unique.items()))
        except Exception as exc:  # botocore's ClientError, connection errors
            raise StoreError(f"cannot write blob to s3://{self.bucket}: {exc}") from exc
        return digests

    def _missing(self, exc: Exception) -> bool:
        code = getattr(exc, "response", {}).get("Error", {}).get("Code", "")
        return str(code) in ("404", "NoSuchKey", "NotFound")

    def get(self, sha256: str) -> bytes:
        try:
            reply = self.client.get_object(Bucket=self.bucket, Key=self.key(sha256))
            data = reply["Body"].read()
        except StoreError:
            raise
        except Exception as exc:
            if self._missing(exc):
                raise StoreError(f"blob {sha256} not found") from exc
            raise StoreError(f"cannot read blob {sha256}: {exc}") from exc
        return verified(sha256, data)

    def exists(self, sha256: str) -> bool:
        try:
            self.client.head_object(Bucket=self.bucket, Key=self.key(sha256))
        except StoreError:
            raise
        except Exception as exc:
            if self._missing(exc):
                return False
            raise StoreError(f"cannot reach s3://{self.bucket}: {exc}") from exc
        return True

    def delete(self, sha256: str) -> bool:
        if not self.exists(sha256):
            return False
        try:
            self.client.delete_object(Bucket=self.bucket, Key=self.key(sha256))
        except Exception as exc:
            raise StoreError(f"cannot delete blob {sha256}: {exc}") from exc
        return True

    def ids(self) -> Iterator[str]:
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket,
                                                                       Prefix=self.prefix)
        for page in pages:
            for obj in page.get("Contents", []):
                name = obj["Key"][len(self.prefix):].rpartition("/")[2]
                if len(name) == 64:
                    yield name

    def close(self) -> None:
        self._io.close()
