"""A real S3-compatible server for tests: moto's server mode (``moto_server``, from the
``moto[server]`` package) in its own process on a free port, with a fresh bucket.

    with S3Server() as s3:
        settings = StoreSettings(blob_backend="s3", s3_endpoint=s3.endpoint,
                                 s3_bucket=s3.bucket, ...)

The AWS credentials and region it needs are put in the environment (moto accepts any), so
boto3 in this process and in child processes (``mailsift serve``) finds them.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from mailsift.testing.service import Service, stop_process
from mailsift.testing.sink import free_port

__all__ = ["S3Server", "s3_unavailable"]

_ENV = {"AWS_ACCESS_KEY_ID": "mailsift-test", "AWS_SECRET_ACCESS_KEY": "mailsift-test",
        "AWS_DEFAULT_REGION": "us-east-1"}


def _moto_server() -> str | None:
    here = Path(sys.executable).with_name("moto_server")
    return str(here) if here.exists() else shutil.which("moto_server")


def s3_unavailable() -> str | None:
    """Why the S3 tests cannot run here, or None."""
    try:
        import boto3  # noqa: F401
    except ImportError:
        return "boto3 is not installed (the s3 extra)"
    if _moto_server() is None:
        return "moto_server is not installed (moto[server], in the dev extra)"
    return None


class S3Server(Service):
    def __init__(self, bucket: str = "") -> None:
        self.bucket = bucket or f"mailsift-{uuid.uuid4().hex[:12]}"
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client(self) -> Any:
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint, region_name="us-east-1")

    def start(self, timeout: float = 30.0) -> S3Server:
        server = _moto_server()
        if server is None:
            raise RuntimeError("moto_server is not installed")
        os.environ.update(_ENV)
        self.port = free_port()
        self.proc = subprocess.Popen([server, "-H", "127.0.0.1", "-p", str(self.port)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"moto_server exited with {self.proc.returncode}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError("moto_server did not start") from None
                time.sleep(0.1)
        self.client().create_bucket(Bucket=self.bucket)
        return self

    def stop(self) -> None:
        stop_process(self.proc, 10)
        self.proc = None

