"""`builder sdk install`: android.jar of a compile SDK (``platforms/android-<api>``) from a pinned archive.

The same path as an NDK install (builder.toolchains.ndk_install): resumable download into the cache, every pinned
checksum checked before anything is written into the SDK, unpacked beside the destination and moved into place in
one rename, so ``<sdk>/platforms/android-<api>`` appears complete or not at all. The pins are data
(``builder/data/android_platforms.toml``).
"""
from __future__ import annotations

import logging
import tomllib
import zipfile
from dataclasses import dataclass
from pathlib import Path

from builder import locks
from builder.errors import RecipeError, ToolchainError
from builder.toolchains.ndk_install import Progress, extract_ndk_zip, fetch_verified

log = logging.getLogger("builder")

DATA_FILE = Path(__file__).resolve().parent.parent / "data" / "android_platforms.toml"


@dataclass(frozen=True)
class PlatformArchive:
    api: int
    revision: int
    file: str
    sha1: str
    sha256: str
    size: int | None = None         # not pinned: Google's table gives it, no copy of it was found

    def url(self, base_url: str) -> str:
        return base_url.rstrip("/") + "/" + self.file


@dataclass(frozen=True)
class PlatformCatalog:
    base_url: str
    platforms: tuple[PlatformArchive, ...]

    def find(self, api: int) -> PlatformArchive:
        for item in self.platforms:
            if item.api == api:
                return item
        have = ", ".join(str(p.api) for p in self.platforms)
        raise ToolchainError(f"no pinned archive for android-{api} (pinned: {have})",
                             hint=f"install it with sdkmanager \"platforms;android-{api}\" and pass --android-sdk")


def load_platforms(path: Path | None = None) -> PlatformCatalog:
    path = path or DATA_FILE
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        items = tuple(PlatformArchive(int(p["api"]), int(p["revision"]), str(p["file"]), str(p["sha1"]),
                                      str(p["sha256"])) for p in data["platform"])
        return PlatformCatalog(str(data["base_url"]), items)
    except (OSError, tomllib.TOMLDecodeError, KeyError, TypeError, ValueError) as exc:
        raise RecipeError(f"{path}: not a valid platform catalogue ({exc})") from exc


def platform_dir(sdk_root: Path, api: int) -> Path:
    return sdk_root / "platforms" / f"android-{api}"


def install_platform(api: int, *, sdk_root: Path, download_dir: Path, catalog: PlatformCatalog | None = None,
                     base_url: str | None = None, progress: Progress | None = None) -> tuple[Path, bool]:
    """(android.jar, already installed?) for ``api`` under ``sdk_root``; downloads and verifies when missing."""
    catalog = catalog or load_platforms()
    archive = catalog.find(api)
    dest = platform_dir(sdk_root, api)
    if (dest / "android.jar").is_file():
        return dest / "android.jar", True
    if dest.exists():
        raise ToolchainError(f"{dest} exists but has no android.jar", hint="remove it and run the install again")
    download_dir.mkdir(parents=True, exist_ok=True)
    with locks.locked(download_dir / f"{archive.file}.lock", waiting=f"another builder downloading {archive.file}"):
        if (dest / "android.jar").is_file():
            return dest / "android.jar", True
        zip_path = fetch_verified(archive, base_url or catalog.base_url, download_dir, progress=progress)

        def check(folder: Path) -> None:
            if not (folder / "android.jar").is_file():
                raise ToolchainError(f"{archive.file} holds no android.jar")
        try:
            extract_ndk_zip(zip_path, dest, check)
        except zipfile.BadZipFile as exc:
            raise ToolchainError(f"{zip_path} is not a valid zip: {exc}") from exc
        zip_path.unlink(missing_ok=True)
    log.info("installed android-%d (revision %d) at %s", api, archive.revision, dest)
    return dest / "android.jar", False
