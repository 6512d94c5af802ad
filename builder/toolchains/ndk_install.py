"""`builder ndk install` / `builder ndk list`: pinned, checksum-verified NDK downloads.

The archive list is data (``builder/data/ndk_archives.toml``). A download goes to a ``.part``
file in a cache folder and resumes with an HTTP Range request when the connection drops; the
archive is checked against every pinned checksum before anything is written into the SDK
folder; it is unpacked into a temporary folder beside the destination and moved into place
with one ``os.replace``, so ``<sdk>/ndk/<revision>`` either appears complete or not at all.
"""
from __future__ import annotations

import contextlib
import http.client
import logging
import os
import re
import shutil
import stat
import tempfile
import time
import tomllib
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from packaging.version import InvalidVersion, Version

from builder import hashing, locks
from builder.errors import RecipeError, ToolchainError, did_you_mean
from builder.toolchains.ndk import NdkInfo, NdkRequest, inspect_ndk, parse_ndk_request, release_name

log = logging.getLogger("builder")

DATA_FILE = Path(__file__).resolve().parent.parent / "data" / "ndk_archives.toml"
Progress = Callable[[int, "int | None"], None]
_CONTENT_RANGE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)")


@dataclass(frozen=True)
class NdkArchive:
    release: str
    revision: Version
    host: str
    file: str
    top_dir: str = ""
    size: int | None = None
    sha1: str | None = None
    sha256: str | None = None
    verified: bool = False
    sources: tuple[str, ...] = ()

    def url(self, base_url: str) -> str:
        return base_url.rstrip("/") + "/" + self.file

    @property
    def has_checksum(self) -> bool:
        return bool(self.sha1 or self.sha256)


class PinnedArchive(Protocol):
    """A downloadable archive with pinned checksums: an NDK (NdkArchive), an SDK platform (platform_install)."""

    @property
    def file(self) -> str: ...
    @property
    def size(self) -> int | None: ...
    @property
    def sha1(self) -> str | None: ...
    @property
    def sha256(self) -> str | None: ...

    def url(self, base_url: str) -> str: ...


@dataclass(frozen=True)
class ArchiveCatalog:
    base_url: str
    archives: tuple[NdkArchive, ...]


@dataclass(frozen=True)
class InstallResult:
    info: NdkInfo
    archive: NdkArchive
    already_installed: bool
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class ListRow:
    release: str
    revision: Version
    host: str
    size: int | None
    pinned: bool          # in builder's archive list (installable with `builder ndk install`)
    verified: bool        # checksums are Google's own published values
    installed_at: Path | None


# ---------------------------------------------------------------------------------------------
# Catalog

def load_catalog(path: Path | None = None) -> ArchiveCatalog:
    path = path or DATA_FILE
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise RecipeError(f"cannot read NDK archive list {path}: {exc}") from exc
    base = data.get("base_url")
    if not isinstance(base, str) or not base:
        raise RecipeError(f"{path}: base_url missing")
    archives = tuple(_archive(entry, path, i) for i, entry in enumerate(data.get("archive", [])))
    return ArchiveCatalog(base, archives)


def _archive(entry: dict[str, Any], path: Path, index: int) -> NdkArchive:
    where = f"{path}: archive #{index + 1}"
    try:
        revision = Version(str(entry["revision"]))
        archive = NdkArchive(
            release=str(entry["release"]), revision=revision, host=str(entry["host"]),
            file=str(entry["file"]), top_dir=str(entry.get("top_dir", "")),
            size=int(entry["size"]) if "size" in entry else None,
            sha1=_hex(entry.get("sha1"), 40, where), sha256=_hex(entry.get("sha256"), 64, where),
            verified=bool(entry.get("verified", False)), sources=tuple(entry.get("sources", ())))
    except (KeyError, TypeError, ValueError, InvalidVersion) as exc:
        raise RecipeError(f"{where} is malformed: {exc!r}") from exc
    if "/" in archive.file or archive.file.startswith("."):
        raise RecipeError(f"{where}: file must be a plain file name, got {archive.file!r}")
    return archive


def _hex(value: object, length: int, where: str) -> str | None:
    if value is None:
        return None
    text = str(value).lower()
    if not re.fullmatch(rf"[0-9a-f]{{{length}}}", text):
        raise RecipeError(f"{where}: checksum {value!r} is not {length} hex digits")
    return text


def host_os(system: str) -> str:
    """platform.system() value -> the archive list's host name."""
    return {"linux": "linux", "darwin": "darwin", "windows": "windows"}.get(system.lower(), system.lower())


def find_archive(request: NdkRequest, host: str, catalog: ArchiveCatalog) -> NdkArchive:
    for_host = [a for a in catalog.archives if a.host == host]
    names = sorted({a.release for a in for_host})
    if request.kind in ("any", "path"):
        raise ToolchainError("`builder ndk install` needs a version or release, e.g. r21e",
                             hint="available for " + host + ": " + (", ".join(names) or "none"))
    hits = [a for a in for_host if request.matches(a.revision)]
    if not hits:
        other = sorted({a.host for a in catalog.archives if request.matches(a.revision)})
        extra = f"; it is pinned for {', '.join(other)} only" if other else ""
        raise ToolchainError(
            f"NDK {request.describe()} is not in builder's pinned archive list for {host}{extra}"
            + did_you_mean(request.text.lower(), names),
            hint="pinned for " + host + ": " + (", ".join(names) or "none")
                 + "; or install it with Android Studio's SDK manager and set ANDROID_NDK")
    return max(hits, key=lambda a: a.revision)


def list_rows(catalog: ArchiveCatalog, installed: Sequence[NdkInfo],
              host: str | None = None) -> tuple[ListRow, ...]:
    """Pinned archives (for ``host``, or all) plus installed NDKs that are not pinned."""
    by_rev: dict[Version, NdkInfo] = {}
    for info in installed:
        by_rev.setdefault(info.revision, info)
    rows = [ListRow(a.release, a.revision, a.host, a.size, True, a.verified,
                    by_rev[a.revision].path if a.revision in by_rev else None)
            for a in catalog.archives if host is None or a.host == host]
    pinned = {a.revision for a in catalog.archives}
    rows += [ListRow(release_name(i.revision), i.revision, host or "", None, False, False, i.path)
             for i in installed if i.revision not in pinned]
    return tuple(sorted(rows, key=lambda r: (r.revision, r.host), reverse=True))


# ---------------------------------------------------------------------------------------------
# Download

MAX_DOWNLOAD_BYTES = 4 << 30      # every NDK archive is under 2 GiB


class _Restart(Exception):
    """The partial file is unusable: start again from byte 0 (counts as a retry)."""


def download(url: str, part: Path, *, expected_size: int | None = None,
             progress: Progress | None = None, retries: int = 5, timeout: float = 60.0,
             backoff: float = 1.0, chunk_size: int = 1 << 20) -> Path:
    """Fetch ``url`` into ``part``, resuming from what ``part`` already holds."""
    part.parent.mkdir(parents=True, exist_ok=True)
    failures = 0
    while True:
        have = part.stat().st_size if part.exists() else 0
        if expected_size is not None and have > expected_size:
            part.unlink()
            have = 0
        if expected_size is not None and have == expected_size and have > 0:
            return part
        try:
            _fetch_once(url, part, have, expected_size, progress, timeout, chunk_size)
            return part
        except urllib.error.HTTPError as exc:
            if exc.code < 500 and exc.code not in (408, 429):
                raise ToolchainError(f"download of {url} failed: HTTP {exc.code} {exc.reason}") from exc
            error: Exception = exc
        except _Restart as exc:
            part.unlink(missing_ok=True)
            error = exc
        except (OSError, http.client.HTTPException) as exc:
            error = exc
        failures += 1
        if failures > retries:
            raise ToolchainError(f"download of {url} failed after {retries} retries: {error}",
                                 hint="run the same command again to resume")
        done = part.stat().st_size if part.exists() else 0
        log.warning("download interrupted (%s); resuming at byte %d", error, done)
        if backoff > 0:
            time.sleep(min(backoff * 2 ** (failures - 1), 30.0))


def _fetch_once(url: str, part: Path, have: int, expected_size: int | None,
                progress: Progress | None, timeout: float, chunk_size: int) -> None:
    headers = {"User-Agent": "builder-ndk-install", "Accept-Encoding": "identity"}
    if have:
        headers["Range"] = f"bytes={have}-"
    request = urllib.request.Request(url, headers=headers)
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:
            if expected_size is None:
                return          # server says we already hold every byte
            raise _Restart(f"server refused range from byte {have}") from exc
        raise
    with response:
        mode, total = _plan_write(response, have, expected_size)
        if mode == "wb":
            have = 0
        limit = total or expected_size or MAX_DOWNLOAD_BYTES
        with open(part, mode) as sink:
            while block := response.read(chunk_size):
                sink.write(block)
                have += len(block)
                if have > limit:   # a server that sends no length (or more than it said) is not read for ever
                    part.unlink(missing_ok=True)
                    raise ToolchainError(f"download of {url} sent more than {limit} bytes; refused",
                                         hint="check the NDK archive URL (builder ndk list)")
                if progress is not None:
                    progress(have, total)
    if total is not None and have < total:
        raise ConnectionError(f"connection closed at byte {have} of {total}")


def _plan_write(response: http.client.HTTPResponse, have: int,
                expected_size: int | None) -> tuple[str, int | None]:
    """('ab', total) to append to a resumed download, ('wb', total) to start over."""
    if have and response.status == 206:
        m = _CONTENT_RANGE.match(response.headers.get("Content-Range", ""))
        if not m or int(m.group(1)) != have:
            raise _Restart(f"server answered the range request with {response.headers.get('Content-Range')!r}")
        total = int(m.group(3)) if m.group(3) != "*" else expected_size
        return "ab", total
    length = response.headers.get("Content-Length")
    return "wb", int(length) if length and length.isdigit() else expected_size


def file_digests(path: Path) -> tuple[str, str]:
    """(sha1, sha256) of ``path``, read once: what NDK archives are pinned by."""
    found = hashing.file_digests(path, ("sha1", "sha256"))
    return found["sha1"], found["sha256"]


def verify_archive(path: Path, archive: PinnedArchive) -> None:
    """Raise ToolchainError unless size and every pinned checksum match."""
    problems = []
    size = path.stat().st_size
    if archive.size is not None and size != archive.size:
        problems.append(f"size {size} != pinned {archive.size}")
    got_sha1, got_sha256 = file_digests(path)
    if archive.sha1 and got_sha1 != archive.sha1:
        problems.append(f"sha1 {got_sha1} != pinned {archive.sha1}")
    if archive.sha256 and got_sha256 != archive.sha256:
        problems.append(f"sha256 {got_sha256} != pinned {archive.sha256}")
    if problems:
        raise ToolchainError(f"refusing {archive.file}: checksum mismatch ({'; '.join(problems)})",
                             hint="the download was deleted; if it happens again the mirror "
                                  "serves a different file")


# ---------------------------------------------------------------------------------------------
# Unpack

def extract_ndk_zip(zip_path: Path, dest: Path, check: Callable[[Path], None] | None = None) -> Path:
    """Unpack into ``dest`` atomically, dropping the zip's single top folder, keeping modes.

    ``check`` runs on the unpacked temporary folder before it is moved into place; if it raises,
    nothing is left behind.
    """
    if dest.exists() or dest.is_symlink():
        raise ToolchainError(f"{dest} already exists", hint="remove it to reinstall")
    created = [p for p in (dest.parent, *dest.parent.parents) if not p.exists()]
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.partial-", dir=dest.parent))
    try:
        with zipfile.ZipFile(zip_path) as zf:
            members = zf.infolist()
            top = _single_top(members)
            for info in members:
                _extract_member(zf, info, tmp, top)
        os.chmod(tmp, 0o755)
        if check is not None:
            check(tmp)
        try:
            os.replace(tmp, dest)
        except OSError as exc:
            raise ToolchainError(f"cannot move the unpacked NDK to {dest}: {exc}",
                                 hint="another install may have created it meanwhile") from exc
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        for folder in created:          # deepest first: only folders this call made
            _rmdir_if_empty(folder)
        raise
    return dest


def _single_top(members: Sequence[zipfile.ZipInfo]) -> str:
    tops = {m.filename.lstrip("/").split("/", 1)[0] for m in members if m.filename.strip("/")}
    if len(tops) == 1:
        top = tops.pop()
        if all(m.filename.lstrip("/").startswith(top + "/") or m.filename.strip("/") == top for m in members):
            return top + "/"
    return ""


def _safe_relative(name: str, top: str) -> Path | None:
    name = name.replace("\\", "/")
    if top and name.startswith(top):
        name = name[len(top):]
    if not name.strip("/"):
        return None
    rel = Path(name)
    if name.startswith("/") or rel.is_absolute() or ".." in rel.parts or re.match(r"^[A-Za-z]:", name):
        raise ToolchainError(f"refusing archive member {name!r}: it points outside the NDK folder")
    return rel


def _extract_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, root: Path, top: str) -> None:
    rel = _safe_relative(info.filename, top)
    if rel is None:
        return
    out = root / rel
    mode = (info.external_attr >> 16) & 0xFFFF if info.create_system == 3 else 0
    if info.is_dir():
        out.mkdir(parents=True, exist_ok=True)
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    _check_inside(out.parent, root)
    if stat.S_ISLNK(mode):
        target = zf.read(info).decode("utf-8")
        resolved = os.path.normpath(os.path.join(os.path.dirname(str(rel)), target))
        if os.path.isabs(target) or resolved.startswith(".."):
            log.warning("skipping symlink %s -> %s: it points outside the NDK", rel, target)
            return
        os.symlink(target, out)
        return
    with zf.open(info) as src, open(out, "wb") as dst:
        shutil.copyfileobj(src, dst, 1 << 20)
    perm = stat.S_IMODE(mode)
    if perm:
        os.chmod(out, perm | stat.S_IRUSR)


def _check_inside(path: Path, root: Path) -> None:
    real, real_root = os.path.realpath(path), os.path.realpath(root)
    if real != real_root and not real.startswith(real_root + os.sep):
        raise ToolchainError(f"refusing archive: {path} resolves outside the NDK folder")


def _rmdir_if_empty(path: Path) -> None:
    with contextlib.suppress(OSError):
        path.rmdir()


# ---------------------------------------------------------------------------------------------
# Install

def install_ndk(version: str, *, sdk_root: Path, download_dir: Path, host: str,
                catalog: ArchiveCatalog | None = None, base_url: str | None = None,
                progress: Progress | None = None, allow_unverified: bool = False,
                keep_archive: bool = False, retries: int = 5, backoff: float = 1.0,
                timeout: float = 60.0) -> InstallResult:
    """Download, verify and unpack the pinned NDK ``version`` into ``<sdk_root>/ndk/<revision>``."""
    catalog = catalog or load_catalog()
    archive = find_archive(parse_ndk_request(version), host, catalog)
    dest = sdk_root / "ndk" / str(archive.revision)
    warnings = _archive_warnings(archive, allow_unverified)
    existing = _existing(dest, archive)
    if existing is not None:
        return InstallResult(existing, archive, True, warnings)
    download_dir.mkdir(parents=True, exist_ok=True)
    with locks.locked(download_dir / f"{archive.file}.lock", waiting=f"another builder downloading {archive.file}"):
        existing = _existing(dest, archive)
        if existing is not None:
            return InstallResult(existing, archive, True, warnings)
        zip_path = fetch_verified(archive, base_url or catalog.base_url, download_dir,
                                   progress=progress, retries=retries, backoff=backoff, timeout=timeout)
        _unpack_checked(zip_path, dest, archive)
        if not keep_archive:
            zip_path.unlink(missing_ok=True)
    log.info("installed NDK %s (%s) at %s", archive.revision, archive.release, dest)
    return InstallResult(inspect_ndk(dest, "builder ndk install"), archive, False, warnings)


def _archive_warnings(archive: NdkArchive, allow_unverified: bool) -> tuple[str, ...]:
    if not archive.has_checksum:
        if not allow_unverified:
            raise ToolchainError(f"no checksum is pinned for {archive.file}, so it cannot be verified",
                                 hint="pass --allow-unverified to install it anyway")
        return (f"{archive.file} has no pinned checksum; installed WITHOUT verification",)
    if not archive.verified:
        return (f"the checksums pinned for {archive.file} come from public build scripts that agree, "
                "not from Google's own published table",)
    return ()


def _existing(dest: Path, archive: NdkArchive) -> NdkInfo | None:
    if not (dest.exists() or dest.is_symlink()):
        return None
    try:
        info = inspect_ndk(dest, "builder ndk install")
    except ToolchainError as exc:
        raise ToolchainError(f"{dest} exists but is not a working NDK: {exc.message}",
                             hint="remove it and run the install again") from exc
    if info.revision != archive.revision:
        raise ToolchainError(f"{dest} holds NDK {info.revision}, not {archive.revision}",
                             hint="remove it and run the install again")
    return info


def fetch_verified(archive: PinnedArchive, base_url: str, download_dir: Path, *, progress: Progress | None = None,
                   retries: int = 5, backoff: float = 1.0, timeout: float = 60.0) -> Path:
    """``archive`` in ``download_dir``, downloaded (resumed) when missing, checked against every pinned value; a
    download that does not match is deleted."""
    final = download_dir / archive.file
    if final.exists():
        try:
            verify_archive(final, archive)
            return final
        except ToolchainError:
            final.unlink()
    part = download_dir / f"{archive.file}.part"
    url = archive.url(base_url)
    log.info("downloading %s", url)
    download(url, part, expected_size=archive.size, progress=progress, retries=retries,
             backoff=backoff, timeout=timeout)
    try:
        verify_archive(part, archive)
    except ToolchainError:
        part.unlink(missing_ok=True)
        raise
    os.replace(part, final)
    return final


def _unpack_checked(zip_path: Path, dest: Path, archive: NdkArchive) -> None:
    def check(folder: Path) -> None:
        info = inspect_ndk(folder, archive.file)
        if info.revision != archive.revision:
            raise ToolchainError(f"{archive.file} contains NDK {info.revision}, expected {archive.revision}")
    try:
        extract_ndk_zip(zip_path, dest, check)
    except zipfile.BadZipFile as exc:
        raise ToolchainError(f"{zip_path} is not a valid zip: {exc}") from exc
