"""`builder clean`: find build folders (by the metadata builder writes in each) and free them."""
from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

META = ".builder-meta.json"


@dataclass(frozen=True)
class BuildFolder:
    path: Path
    tag: str
    target: str
    slice: str
    key: str
    size: int


def folder_size(path: Path) -> int:
    total = 0
    for p in path.rglob("*"):
        try:
            if p.is_file() and not p.is_symlink():
                total += p.stat().st_size
        except OSError:
            pass
    return total


def find_builds(out_dir: Path) -> tuple[BuildFolder, ...]:
    found = []
    for meta in sorted((out_dir / "build").glob(f"*/{META}")):
        try:
            data = json.loads(meta.read_text())
        except (OSError, ValueError):
            continue
        if not isinstance(data, dict):
            continue
        found.append(BuildFolder(meta.parent, data.get("tag", "?"), data.get("target", "?"),
                                 data.get("slice", "?"), data.get("key", "?"), folder_size(meta.parent)))
    return tuple(found)


def select(builds: tuple[BuildFolder, ...], *, tag: str | None = None, target: str | None = None,
           keys: frozenset[str] | None = None) -> tuple[BuildFolder, ...]:
    """The builds matching every criterion given (None: any)."""
    wanted = {"tag": tag, "target": target}
    return tuple(b for b in builds if all(v is None or getattr(b, k) == v for k, v in wanted.items())
                 and (keys is None or b.key in keys))


def remove(builds: tuple[BuildFolder, ...]) -> int:
    freed = 0
    for b in builds:
        shutil.rmtree(b.path, ignore_errors=True)
        freed += b.size
    return freed


def human(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"
