"""All-or-nothing outputs: every file or folder builder writes is made under a unique temporary name beside its
destination and moved into place with ``os.replace``, so a reader (or a second builder) never sees half of it and
a failure leaves the old one, or nothing, at the destination. The one place for that pattern."""
from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

FILE_MODE = 0o644
DIR_MODE = 0o755


@contextlib.contextmanager
def atomic_file(dest: Path, mode: int | None = FILE_MODE) -> Iterator[Path]:
    """Yield a temp path beside ``dest`` (an empty file; a tool may replace it); on success it replaces ``dest``
    (with ``mode``, or the mode the writer gave it when None), on error it is removed."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_dir(dest: Path) -> Iterator[Path]:
    """Yield an empty temp folder beside ``dest``; on success it takes ``dest``'s place."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent))
    try:
        yield tmp
        os.chmod(tmp, DIR_MODE)
        replace_dir(tmp, dest)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)


def replace_dir(src: Path, dest: Path) -> None:
    """Move folder ``src`` to ``dest`` (same filesystem), replacing whatever ``dest`` was."""
    if not dest.exists() and not dest.is_symlink():
        os.replace(src, dest)
        return
    trash = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".old", dir=dest.parent))
    old = trash / "old"
    os.replace(dest, old)
    try:
        os.replace(src, dest)
    except OSError:
        os.replace(old, dest)
        raise
    finally:
        shutil.rmtree(trash, ignore_errors=True)


def sibling_temp(final: Path) -> Path:
    """A temp path beside ``final`` for a tool that writes its output itself (a compiler, torch's save);
    ``commit`` it when the tool succeeded, unlink it otherwise."""
    return final.with_name(f".{final.name}.tmp-{os.getpid()}")


def commit(tmp: Path, final: Path) -> None:
    final.parent.mkdir(parents=True, exist_ok=True)
    os.replace(tmp, final)


def write_bytes(dest: Path, data: bytes) -> Path:
    with atomic_file(dest) as tmp:
        tmp.write_bytes(data)
    return dest


def write_text(dest: Path, text: str) -> Path:
    return write_bytes(dest, text.encode("utf-8"))
