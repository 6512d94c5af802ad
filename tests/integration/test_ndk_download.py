"""`builder ndk install` against a local HTTP server (127.0.0.1 only) serving a stand-in archive.

The server supports Range requests and can drop the connection part-way through a response,
so resuming, restarting and refusing bad archives are all exercised for real.
"""
from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from packaging.version import Version

from builder.errors import ToolchainError
from builder.toolchains.ndk import find_glslc, find_ndks
from builder.toolchains.ndk_install import ArchiveCatalog, NdkArchive, download, install_ndk
from tests.fixtures.standin_ndk import make_standin_zip

REVISION = "21.4.7075529"
FILE = "android-ndk-r21e-linux-x86_64.zip"


@dataclass
class ServerState:
    files: dict[str, bytes] = field(default_factory=dict)
    drop_after: int | None = None   # bytes of body to send before hanging up...
    drops_left: int = 0             # ...this many times
    honour_range: bool = True
    requests: list[tuple[str, str | None]] = field(default_factory=list)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:   # keep test output quiet
        pass

    def do_GET(self) -> None:
        state: ServerState = self.server.state  # type: ignore[attr-defined]
        rng = self.headers.get("Range")
        state.requests.append((self.path, rng))
        data = state.files.get(self.path)
        if data is None:
            self._reply(404, b"not found")
            return
        start = 0
        m = re.fullmatch(r"bytes=(\d+)-", rng or "")
        if m and state.honour_range:
            start = int(m.group(1))
            if start >= len(data):
                self._reply(416, b"", {"Content-Range": f"bytes */{len(data)}"})
                return
        body = data[start:]
        headers = {"Content-Length": str(len(body))}
        if start:
            headers["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
        self.send_response(206 if start else 200)
        for k, v in headers.items():
            self.send_header(k, v)
        self.end_headers()
        if state.drops_left > 0 and state.drop_after is not None:
            state.drops_left -= 1
            self.wfile.write(body[:state.drop_after])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(body)

    def _reply(self, code: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(code)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def server() -> Iterator[tuple[str, ServerState]]:
    state = ServerState()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.state = state  # type: ignore[attr-defined]
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/mirror/", state
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


@pytest.fixture
def standin(tmp_path, server):
    base, state = server
    archive = make_standin_zip(tmp_path / "src" / FILE, REVISION, "android-ndk-r21e")
    state.files[f"/mirror/{FILE}"] = archive.path.read_bytes()
    entry = NdkArchive(release="r21e", revision=Version(REVISION), host="linux", file=FILE,
                       top_dir="android-ndk-r21e", size=archive.size, sha1=archive.sha1, sha256=archive.sha256,
                       verified=True)
    catalog = ArchiveCatalog("https://dl.google.com/android/repository/", (entry,))
    return base, state, catalog, archive


def _install(tmp_path: Path, base: str, catalog: ArchiveCatalog, **kw):
    return install_ndk("r21e", sdk_root=tmp_path / "sdk", download_dir=tmp_path / "downloads", host="linux",
                       catalog=catalog, base_url=base, backoff=0, timeout=10, **kw)


def _tree(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*")) if root.exists() else []


def test_good_install_is_found_afterwards(tmp_path, standin):
    base, state, catalog, archive = standin
    seen: list[tuple[int, int | None]] = []
    result = _install(tmp_path, base, catalog, progress=lambda done, total: seen.append((done, total)))
    dest = tmp_path / "sdk" / "ndk" / REVISION
    assert result.info.path == dest and not result.already_installed and result.warnings == ()
    assert seen[-1] == (archive.size, archive.size)
    assert (dest / "ndk-build").stat().st_mode & 0o111
    assert find_glslc(result.info, env={}) == dest / "shader-tools/linux-x86_64/glslc"
    assert _tree(tmp_path / "downloads") in ([], [f"{FILE}.lock"])
    found = find_ndks({"ANDROID_HOME": str(tmp_path / "sdk")}, tmp_path / "home")
    assert [(n.path, str(n.revision)) for n in found] == [(dest, REVISION)]
    again = _install(tmp_path, base, catalog)
    assert again.already_installed and len(state.requests) == 1


def test_dropped_connection_resumes_with_range(tmp_path, standin):
    base, state, catalog, archive = standin
    state.drop_after = archive.size // 3
    state.drops_left = 2
    result = _install(tmp_path, base, catalog)
    assert result.info.revision == Version(REVISION)
    ranges = [r for _, r in state.requests]
    assert ranges[0] is None
    assert ranges[1] == f"bytes={archive.size // 3}-"
    assert len(ranges) == 3 and all(r and r.startswith("bytes=") for r in ranges[1:])


def test_leftover_part_file_is_resumed(tmp_path, standin):
    base, state, catalog, archive = standin
    data = state.files[f"/mirror/{FILE}"]
    (tmp_path / "downloads").mkdir()
    (tmp_path / "downloads" / f"{FILE}.part").write_bytes(data[:1000])
    _install(tmp_path, base, catalog)
    assert state.requests == [(f"/mirror/{FILE}", "bytes=1000-")]


def test_server_ignoring_range_restarts_cleanly(tmp_path, standin):
    base, state, catalog, archive = standin
    state.honour_range = False
    state.drop_after = 500
    state.drops_left = 1
    result = _install(tmp_path, base, catalog)
    assert result.info.revision == Version(REVISION)
    assert len(state.requests) == 2


def test_wrong_checksum_is_refused_and_sdk_untouched(tmp_path, standin):
    base, state, catalog, archive = standin
    bad = ArchiveCatalog(catalog.base_url, (NdkArchive(**{**catalog.archives[0].__dict__, "sha256": "0" * 64}),))
    sdk = tmp_path / "sdk"
    (sdk / "platforms").mkdir(parents=True)
    before = _tree(sdk)
    with pytest.raises(ToolchainError, match="checksum mismatch"):
        _install(tmp_path, base, bad)
    assert _tree(sdk) == before
    assert not (tmp_path / "downloads" / f"{FILE}.part").exists()
    assert not (tmp_path / "downloads" / FILE).exists()


def test_truncated_forever_gives_up_with_resume_hint(tmp_path, standin):
    base, state, catalog, archive = standin
    state.drop_after = 100
    state.drops_left = 99
    with pytest.raises(ToolchainError, match="after 2 retries") as err:
        _install(tmp_path, base, catalog, retries=2)
    assert "again to resume" in str(err.value)
    assert not (tmp_path / "sdk").exists()
    assert (tmp_path / "downloads" / f"{FILE}.part").stat().st_size == 300


def test_http_404_is_not_retried(tmp_path, server):
    base, state = server
    with pytest.raises(ToolchainError, match="HTTP 404"):
        download(base + "missing.zip", tmp_path / "x.part", retries=5, backoff=0)
    assert len(state.requests) == 1


def test_wrong_revision_inside_archive_is_refused(tmp_path, server):
    base, state = server
    archive = make_standin_zip(tmp_path / "src" / FILE, "21.3.6528147", "android-ndk-r21e")
    state.files[f"/mirror/{FILE}"] = archive.path.read_bytes()
    entry = NdkArchive(release="r21e", revision=Version(REVISION), host="linux", file=FILE, size=archive.size,
                       sha256=archive.sha256, verified=True)
    with pytest.raises(ToolchainError, match="contains NDK 21.3.6528147"):
        _install(tmp_path, base, ArchiveCatalog("https://x/", (entry,)))
    assert _tree(tmp_path / "sdk") == []


def test_unverified_entries(tmp_path, standin):
    base, state, catalog, archive = standin
    plain = NdkArchive(**{**catalog.archives[0].__dict__, "sha1": None, "sha256": None, "size": None})
    with pytest.raises(ToolchainError, match="--allow-unverified"):
        _install(tmp_path, base, ArchiveCatalog("https://x/", (plain,)))
    assert state.requests == []
    result = _install(tmp_path, base, ArchiveCatalog("https://x/", (plain,)), allow_unverified=True)
    assert "WITHOUT verification" in result.warnings[0]


# ------------------------------------------------------------------ android.jar (builder sdk install)

def _platform_zip(path: Path, top: str = "android-9") -> bytes:
    """A stand-in platform archive shaped like Google's platform-28_r06.zip: one top folder holding android.jar."""
    import io
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr(f"{top}/android.jar", b"PK stand-in android.jar")
        zf.writestr(f"{top}/source.properties", "Pkg.Revision=6\nAndroidVersion.ApiLevel=28\n")
    path.write_bytes(buf.getvalue())
    return buf.getvalue()


def test_sdk_install_checks_both_pins_and_unpacks_as_platforms_android_api(tmp_path, server):
    import hashlib

    from builder.toolchains.platform_install import PlatformArchive, PlatformCatalog, install_platform

    base, state = server
    data = _platform_zip(tmp_path / "p.zip")
    state.files["/mirror/platform-28_r06.zip"] = data
    good = PlatformArchive(28, 6, "platform-28_r06.zip", hashlib.sha1(data).hexdigest(),
                           hashlib.sha256(data).hexdigest())
    bad = PlatformArchive(28, 6, "platform-28_r06.zip", good.sha1, "0" * 64)
    sdk = tmp_path / "sdk"
    with pytest.raises(ToolchainError, match="checksum mismatch"):
        install_platform(28, sdk_root=sdk, download_dir=tmp_path / "dl", catalog=PlatformCatalog(base, (bad,)))
    assert not (sdk / "platforms").exists() and not (tmp_path / "dl" / good.file).exists()
    jar, had = install_platform(28, sdk_root=sdk, download_dir=tmp_path / "dl", catalog=PlatformCatalog(base, (good,)))
    assert jar == sdk / "platforms" / "android-28" / "android.jar" and not had and jar.read_bytes().startswith(b"PK")
    again, had = install_platform(28, sdk_root=sdk, download_dir=tmp_path / "dl", catalog=PlatformCatalog(base, (good,)))
    assert again == jar and had and len(state.requests) == 2          # the second install downloads nothing


def test_the_pinned_platform_catalogue_names_google_and_both_checksums():
    from builder.toolchains.platform_install import load_platforms

    catalog = load_platforms()
    p28 = catalog.find(28)
    assert catalog.base_url == "https://dl.google.com/android/repository/" and p28.file == "platform-28_r06.zip"
    assert len(p28.sha1) == 40 and len(p28.sha256) == 64
    with pytest.raises(ToolchainError, match="no pinned archive for android-99"):
        catalog.find(99)


def test_every_recipes_compile_sdk_is_installable():
    from builder.recipes import RECIPES_DIR, load_recipe
    from builder.toolchains.platform_install import load_platforms

    catalog = load_platforms()
    for path in sorted(RECIPES_DIR.glob("v*.toml")):
        java = load_recipe(path.stem, RECIPES_DIR).targets.get("android")
        if java is not None and java.java is not None:
            catalog.find(java.java.compile_sdk)


def test_maven_fetch_checks_the_repositorys_sha1_and_writes_maven_layout(tmp_path, server):
    import hashlib

    from builder.toolchains.maven_fetch import fetch_jar

    base, state = server
    jar = b"PK\x03\x04 stand-in nativeloader"
    path = "/mirror/com/facebook/soloader/nativeloader/0.10.4/nativeloader-0.10.4.jar"
    state.files[path] = jar
    state.files[path + ".sha1"] = b"0" * 40 + b"\n"
    m2 = tmp_path / "m2"
    with pytest.raises(ToolchainError, match="is not the repository's"):
        fetch_jar("com.facebook.soloader:nativeloader:0.10.4", m2, base, timeout=10)
    assert not any(p.is_file() for p in m2.rglob("*"))
    state.files[path + ".sha1"] = hashlib.sha1(jar).hexdigest().encode() + b"  nativeloader-0.10.4.jar\n"
    got = fetch_jar("com.facebook.soloader:nativeloader:0.10.4", m2, base, timeout=10)
    assert got == m2 / "com/facebook/soloader/nativeloader/0.10.4/nativeloader-0.10.4.jar" and got.read_bytes() == jar
    assert sorted(p.name for p in got.parent.iterdir()) == ["nativeloader-0.10.4.jar"]
    before = len(state.requests)
    fetch_jar("com.facebook.soloader:nativeloader:0.10.4", m2, base, timeout=10)
    assert len(state.requests) == before                      # present: nothing downloaded


def test_maven_fetch_of_one_jar_at_once_from_two_threads(tmp_path, server):
    import hashlib
    from concurrent.futures import ThreadPoolExecutor

    from builder.toolchains.maven_fetch import fetch_jar

    base, state = server
    jar = b"PK\x03\x04 stand-in nativeloader " * 4096
    path = "/mirror/com/facebook/soloader/nativeloader/0.10.4/nativeloader-0.10.4.jar"
    state.files[path] = jar
    state.files[path + ".sha1"] = hashlib.sha1(jar).hexdigest().encode() + b"\n"
    m2 = tmp_path / "m2"
    with ThreadPoolExecutor(2) as pool:
        got = list(pool.map(lambda _: fetch_jar("com.facebook.soloader:nativeloader:0.10.4", m2, base, timeout=10),
                            range(2)))
    assert got[0] == got[1] and got[0].read_bytes() == jar
    assert sorted(p.name for p in got[0].parent.iterdir()) == ["nativeloader-0.10.4.jar"]   # no .part left
