"""Looking inside archive attachments without being hurt by them.

Only zip is opened (stdlib ``zipfile``): gzip/tar/rar/7z members are reported by type but not
expanded. Every member is checked against the limits *before* it is inflated (declared size,
compression ratio, total bytes, member count, nesting depth), and inflation reads at most
``limit + 1`` bytes so a lying header cannot make us allocate a bomb.
"""

from __future__ import annotations

import copy
import hashlib
import io
import zipfile
import zlib
from dataclasses import dataclass

from mailsift.config.schema import LimitSettings
from mailsift.core.message import Attachment
from mailsift.parsing.magic import detect_type

__all__ = ["ArchiveReport", "expand_zip"]

_ZIP_TYPES = ("application/zip", "application/x-zip-compressed")
_CHUNK = 1024 * 1024
#: names of members past ``max_archive_members`` are listed up to this many times the limit
_NAMES_FACTOR = 10


@dataclass
class ArchiveReport:
    members: list[Attachment]
    defects: list[tuple[str, str]]
    encrypted: bool = False


def expand_zip(data: bytes, name: str, limits: LimitSettings, depth: int = 1,
               budget: list[int] | None = None) -> ArchiveReport:
    """List (and within limits read) the members of a zip archive, recursing into nested zips."""
    report = ArchiveReport(members=[], defects=[])
    budget = budget if budget is not None else [limits.max_archive_bytes]
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        infos = archive.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, OSError, EOFError) as exc:
        report.defects.append(("PARSE_ARCHIVE_CORRUPT", f"{name}: {exc}"[:200]))
        return report
    if len(infos) > limits.max_archive_members:
        report.defects.append(("PARSE_ARCHIVE_LIMIT", f"{name}: {len(infos)} members"))
        # Members past the limit are not read, but their names are in the central directory
        # already parsed: list them, so a blocked type at member 1001 is still seen.
        report.members.extend(_names_only(infos[limits.max_archive_members:
                                                limits.max_archive_members * _NAMES_FACTOR],
                                          name, depth))
        infos = infos[: limits.max_archive_members]
    for info in infos:
        if info.is_dir():
            continue
        member_name = info.filename[:255]
        path = f"{name}/{member_name}"
        encrypted = bool(info.flag_bits & 0x1)
        content = b""
        if encrypted:
            report.encrypted = True
        else:
            ratio = info.file_size / max(info.compress_size, 1)
            if ratio > limits.max_archive_ratio and info.file_size > 1024 * 1024:
                report.defects.append(
                    ("PARSE_ARCHIVE_BOMB", f"{path}: ratio {ratio:.0f} ({info.file_size} bytes)")
                )
            elif info.file_size > budget[0]:
                report.defects.append(("PARSE_ARCHIVE_LIMIT", f"{path}: {info.file_size} bytes"))
            else:
                content = _read_bounded(archive, info, budget[0], report, path)
                budget[0] -= len(content)
        detected = detect_type(content) if content else ("application/x-encrypted" if encrypted
                                                         else "application/octet-stream")
        report.members.append(
            Attachment(
                filename=member_name,
                declared_type="",
                detected_type=detected,
                size=info.file_size,
                sha256=hashlib.sha256(content).hexdigest() if content else "",
                content=content,
                container=name,
                depth=depth,
                encrypted=encrypted,
            )
        )
        if content and detected in _ZIP_TYPES:
            if depth >= limits.max_archive_depth:
                report.defects.append(("PARSE_ARCHIVE_DEPTH", path))
                # one level more by name only (its central directory, nothing inflated)
                report.members.extend(_zip_names(content, path, depth + 1,
                                                 limits.max_archive_members))
            else:
                inner = expand_zip(content, path, limits, depth + 1, budget)
                report.members.extend(inner.members)
                report.defects.extend(inner.defects)
                report.encrypted = report.encrypted or inner.encrypted
    return report


def _names_only(infos: list[zipfile.ZipInfo], container: str, depth: int) -> list[Attachment]:
    return [Attachment(filename=i.filename[:255], declared_type="",
                       detected_type="application/octet-stream", size=i.file_size, sha256="",
                       content=b"", container=container, depth=depth)
            for i in infos if not i.is_dir()]


def _zip_names(data: bytes, name: str, depth: int, max_members: int) -> list[Attachment]:
    try:
        infos = zipfile.ZipFile(io.BytesIO(data)).infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, OSError, EOFError):
        return []
    return _names_only(infos[:max_members * _NAMES_FACTOR], name, depth)


def _read_bounded(archive: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int,
                  report: ArchiveReport, path: str) -> bytes:
    """Inflate one member, reading at most ``limit + 1`` bytes whatever its header says.

    The header's size is not trusted as the end: zipfile stops at the declared size and then
    fails the CRC, which made a lying header look merely corrupt. So the member is read as if
    it declared ``limit + 1`` bytes; more data than declared is a bomb in disguise."""
    probe = copy.copy(info)
    probe.file_size = limit + 1
    chunks: list[bytes] = []
    total = 0
    try:
        with archive.open(probe) as fh:
            while total <= limit and (chunk := fh.read(min(_CHUNK, limit + 1 - total))):
                chunks.append(chunk)
                total += len(chunk)
    except (zipfile.BadZipFile, NotImplementedError, RuntimeError, ValueError, OSError,
            EOFError, zlib.error) as exc:
        if total <= info.file_size:
            report.defects.append(("PARSE_ARCHIVE_CORRUPT", f"{path}: {exc}"[:200]))
            return b""
    if total > info.file_size or total > limit:
        report.defects.append(("PARSE_ARCHIVE_BOMB",
                               f"{path}: size header lies ({info.file_size} declared, "
                               f"{'over ' if total > limit else ''}{total} inflated)"))
        return b""
    return b"".join(chunks)
