"""The one hashing helper: digests of files (read in chunks), bytes, text and JSON-able data."""
from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from pathlib import Path
from typing import IO, Any

CHUNK = 1 << 20


def file_digests(path: Path, algorithms: Iterable[str] = ("sha256",)) -> dict[str, str]:
    """{algorithm: hex digest} of ``path``, read once."""
    hashes = {name: hashlib.new(name, usedforsecurity=False) if name in ("md5", "sha1") else hashlib.new(name)
              for name in algorithms}
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(CHUNK), b""):
            for h in hashes.values():
                h.update(block)
    return {name: h.hexdigest() for name, h in hashes.items()}


def bytes_digests(data: bytes, algorithms: Iterable[str]) -> dict[str, str]:
    """{algorithm: hex digest} of ``data``."""
    return {name: hashlib.new(name, data).hexdigest() for name in algorithms}


def sha256_of(parts: Iterable[bytes | str]) -> str:
    """One digest over ``parts`` in order (text as UTF-8): the same as of their concatenation."""
    h = hashlib.sha256()
    for part in parts:
        h.update(part.encode("utf-8") if isinstance(part, str) else part)
    return h.hexdigest()


def sha256_stream(handle: IO[bytes]) -> str:
    h = hashlib.sha256()
    for block in iter(lambda: handle.read(CHUNK), b""):
        h.update(block)
    return h.hexdigest()


def sha256_file(path: Path) -> str:
    return file_digests(path)["sha256"]


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_text(text: str) -> str:
    return sha256_bytes(text.encode("utf-8"))


def sha256_json(data: Any) -> str:
    """Of the canonical JSON of ``data`` (sorted keys): a key for "everything that changes X"."""
    return sha256_text(json.dumps(data, sort_keys=True))


def sha256_file_or_missing(path: Path) -> str:
    return sha256_file(path) if path.is_file() else "missing"
