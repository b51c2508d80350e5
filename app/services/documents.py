"""Documents: where their bytes live (a file store), what they are (checked by content), and their checksum.

The file store is an interface so production can use object storage; development and tests use a local
folder under ``settings.var_dir``. Keys are opaque and never derived from what a user typed.
"""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from app.core.settings import Settings
from app.services.errors import DOCUMENT_TOO_LARGE, UNSUPPORTED_DOCUMENT_TYPE

__all__ = ["CheckedFile", "FileStore", "LocalFileStore", "check_file", "file_store", "sniff_media_type"]

_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"%PDF-", "application/pdf"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
)


def sniff_media_type(data: bytes) -> str | None:
    """The media type the content really is (PDF, JPEG or PNG), whatever the file name or header claims."""
    for magic, media_type in _MAGIC:
        if data.startswith(magic):
            return media_type
    return None


@dataclass(frozen=True, slots=True)
class CheckedFile:
    filename: str
    media_type: str
    size_bytes: int
    sha256: str
    data: bytes


def check_file(settings: Settings, filename: str | None, data: bytes) -> CheckedFile:
    """Refuse a file over ``settings.max_upload_bytes`` (413) or of a type other than PDF/JPEG/PNG by its
    content (415); otherwise its media type and SHA-256."""
    if len(data) > settings.max_upload_bytes:
        raise DOCUMENT_TOO_LARGE(
            f"Tệp vượt quá {settings.max_upload_bytes} byte",
            f"The file exceeds {settings.max_upload_bytes} bytes",
            max_bytes=settings.max_upload_bytes,
        )
    media_type = sniff_media_type(data)
    if media_type is None:
        raise UNSUPPORTED_DOCUMENT_TYPE(
            "Nội dung tệp không phải PDF, JPEG hoặc PNG",
            "The file's content is not PDF, JPEG or PNG",
            accepted=[m for _, m in _MAGIC],
        )
    name = (filename or "document").replace("/", "_").replace("\\", "_").strip()[:255] or "document"
    return CheckedFile(
        filename=name,
        media_type=media_type,
        size_bytes=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        data=data,
    )


class FileStore(Protocol):
    """Where document bytes are kept."""

    async def put(self, data: bytes) -> str:
        """Store ``data``; returns its opaque key."""
        ...

    async def get(self, key: str) -> bytes:
        """The bytes stored under ``key`` (``FileNotFoundError`` if absent)."""
        ...


class LocalFileStore:
    """A folder on local disk (development, tests, a single-server deployment)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, key: str) -> Path:
        if not key.isalnum():
            raise FileNotFoundError(key)
        return self.root / key[:2] / key

    async def put(self, data: bytes) -> str:
        key = uuid.uuid4().hex
        path = self._path(key)

        def write() -> None:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".part")
            tmp.write_bytes(data)
            tmp.replace(path)

        await asyncio.to_thread(write)
        return key

    async def get(self, key: str) -> bytes:
        return await asyncio.to_thread(self._path(key).read_bytes)


def file_store(settings: Settings) -> FileStore:
    """The configured file store: the local folder ``{var_dir}/documents``."""
    return LocalFileStore(Path(settings.var_dir) / "documents")
