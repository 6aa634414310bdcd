"""What the bytes of an attachment really are (magic numbers), independent of its name.

``filetype`` covers binary formats; text formats that matter for mail threats (HTML, SVG,
scripts) and a few binary ones it does not know (LNK shortcuts, ISO images, OLE compound files,
RTF) are sniffed here.
"""

from __future__ import annotations

import filetype

__all__ = ["detect_type"]

_BINARY_SIGS: tuple[tuple[int, bytes, str], ...] = (
    (0, b"MZ", "application/x-msdownload"),
    (0, b"\x7fELF", "application/x-elf"),
    (0, b"L\x00\x00\x00\x01\x14\x02\x00", "application/x-ms-shortcut"),
    (0, b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "application/x-ole-storage"),
    (0, b"{\\rtf", "application/rtf"),
    (0, b"%PDF-", "application/pdf"),
    (0, b"MSCF", "application/vnd.ms-cab-compressed"),
    (0x8001, b"CD001", "application/x-iso9660-image"),
    (0, b"koly", "application/x-apple-diskimage"),
)

_TEXT_SIGS: tuple[tuple[bytes, str], ...] = (
    (b"<svg", "image/svg+xml"),
    (b"<!doctype html", "text/html"),
    (b"<html", "text/html"),
    (b"<head", "text/html"),
    (b"<body", "text/html"),
    (b"<script", "text/html"),
    (b"<iframe", "text/html"),
    (b"<form", "text/html"),
    (b"<meta", "text/html"),
    (b"<?xml", "application/xml"),
)


def detect_type(data: bytes) -> str:
    """A MIME type for ``data`` from its content; ``application/octet-stream`` when unknown."""
    if not data:
        return "application/x-empty"
    for offset, sig, mime in _BINARY_SIGS:
        if data[offset : offset + len(sig)] == sig:
            return mime
    kind = filetype.guess(data[:8192])
    if kind is not None:
        return str(kind.mime)
    head = data[:1024].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if head.startswith(b"#!"):
        return "text/x-script"
    for sig, mime in _TEXT_SIGS:
        if sig in head[:512]:
            if mime == "application/xml" and b"<svg" in data[:4096].lower():
                return "image/svg+xml"
            return mime
    sample = data[:2048]
    if b"\x00" not in sample:
        try:
            sample.decode("utf-8")
            return "text/plain"
        except UnicodeDecodeError:
            if sum(b < 9 or 13 < b < 32 for b in sample) < len(sample) // 20:
                return "text/plain"
    return "application/octet-stream"
