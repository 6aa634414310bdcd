"""Settings of the store (trace, quarantine, lists, audit) and of quarantine release.

Kept in its own module so the store's knobs live next to each other; ``Settings.store`` in
``config/schema.py`` holds one of these. Empty ``url``/``blob_dir`` derive from ``data_dir`` so a
single-node install needs no setting at all (SQLite in WAL mode under ``./data``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["StoreSettings"]


class StoreSettings(BaseModel):
    """Where the store lives, how long it keeps things and where released mail goes."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)

    data_dir: str = "./data"
    url: str = Field(
        "",
        description="SQLAlchemy URL; empty = sqlite under data_dir. "
        "PostgreSQL: postgresql+psycopg://user@host:5432/db",
    )
    db_schema: str = Field("", description="PostgreSQL schema to use (created if missing)")
    blob_dir: str = Field("", description="raw message blobs; empty = <data_dir>/blobs")
    blob_backend: Literal["auto", "local", "postgresql", "s3"] = Field(
        "auto", description="where quarantined originals live: auto = postgresql (a table of "
        "the store) when the store is PostgreSQL, else local (blob_dir); s3 = s3_bucket")
    blob_read_fallback: Literal["", "local", "postgresql", "s3"] = Field(
        "", description="while moving originals (mailsift store migrate-blobs): the previous "
        "backend, read when the current one lacks a blob")
    s3_endpoint: str = Field("", description="S3-compatible endpoint URL; empty = AWS")
    s3_bucket: str = ""
    s3_prefix: str = Field("", description="key prefix inside the bucket, e.g. 'mailsift/'")
    s3_region: str = ""
    keep_raw: Literal["quarantine", "all"] = Field(
        "quarantine", description="which raw messages go to the blob store"
    )
    retention_days: float = Field(30.0, gt=0, description="trace and quarantine retention")
    auto_migrate: bool = Field(True, description="run Alembic migrations when the store opens")
    release_host: str = Field("", description="next hop for released mail; empty = the "
                              "delivery path, [gateway] next_hop_host (127.0.0.1)")
    release_port: int = Field(0, ge=0, le=65535, description="0 = the delivery path, "
                              "[gateway] next_hop_port (10026)")
    release_key_file: str = Field("", description="key that signs released copies so mailsift "
                                  "recognises them (X-Mailsift-Release-Sig); empty = "
                                  "<data_dir>/release.key, made on first use; nodes that "
                                  "release for each other share it")
    release_timeout: float = Field(30.0, gt=0)
    release_helo: str = ""
    release_connections: int = Field(4, ge=1, le=64, description="parallel SMTP sessions")
    release_lease_seconds: float = Field(
        300.0, gt=0, description="a claim older than this, never confirmed, becomes uncertain"
    )
    api_token_prefix: str = Field("msk_", description="prefix of generated API tokens")

    def database_url(self) -> str:
        if self.url:
            return self.url
        return f"sqlite:///{Path(self.data_dir).resolve() / 'mailsift.db'}"

    def blob_backend_name(self) -> str:
        """The blob backend in force (``auto`` resolved by the store's database)."""
        if self.blob_backend != "auto":
            return self.blob_backend
        return "postgresql" if self.database_url().startswith("postgresql") else "local"

    def blob_path(self) -> Path:
        return Path(self.blob_dir) if self.blob_dir else Path(self.data_dir) / "blobs"

    def release_target(self) -> tuple[str, int]:
        """Where released mail goes; the store alone (no gateway settings) falls back to the
        gateway's defaults. ``Settings`` fills these from ``[gateway] next_hop_*``."""
        return self.release_host or "127.0.0.1", self.release_port or 10026
