"""builder.toolchains.ndk_install without the network: catalog, verification, unpacking."""
from __future__ import annotations

import os
import stat
import zipfile
from dataclasses import replace
from pathlib import Path

import pytest
from packaging.version import Version

from builder.errors import RecipeError, ToolchainError
from builder.recipes import available_tags, load_recipe
from builder.toolchains.ndk import NdkInfo, inspect_ndk, parse_ndk_request
from builder.toolchains.ndk_install import (
    ArchiveCatalog,
    NdkArchive,
    extract_ndk_zip,
    find_archive,
    host_os,
    list_rows,
    load_catalog,
    verify_archive,
)
from tests.fixtures.standin_ndk import make_standin_zip


def test_pinned_catalog_is_well_formed():
    catalog = load_catalog()
    assert catalog.base_url == "https://dl.google.com/android/repository/"
    assert {a.release for a in catalog.archives} >= {"r19c", "r20", "r21e", "r25c", "r26d", "r27c"}
    for a in catalog.archives:
        assert a.url(catalog.base_url).startswith("https://dl.google.com/android/repository/android-ndk-")
        assert a.has_checksum and a.sources
        assert a.size and a.size > 100_000_000
        assert parse_ndk_request(a.release).matches(a.revision), a
        assert a.top_dir == f"android-ndk-{a.release}"
    r21e = find_archive(parse_ndk_request("r21e"), "linux", catalog)
    assert r21e.revision == Version("21.4.7075529")
    assert r21e.sha1 == "c3ebc83c96a4d7f539bd72c241b2be9dcd29bda9" and r21e.verified


@pytest.mark.parametrize("tag", available_tags())
@pytest.mark.parametrize("host", ["linux", "darwin"])
def test_recipe_default_ndk_is_in_the_catalogue(tag, host):
    """`builder ndk install <ndk_default>` (and --install-ndk with no --ndk) can install every recipe's default NDK,
    with a pinned checksum (no --allow-unverified)."""
    recipe = load_recipe(tag)
    assert recipe.ndk_default is not None, f"{tag} names no default NDK"
    archive = find_archive(parse_ndk_request(recipe.ndk_default), host, load_catalog())
    assert archive.revision == Version(recipe.ndk_default)
    assert archive.has_checksum and archive.size and archive.verified
    if host == "linux":
        assert archive.sha256, f"{archive.file}: the linux archive of a default NDK pins a sha256"


@pytest.mark.parametrize("tag", available_tags())
def test_every_exactly_tested_ndk_is_in_the_catalogue(tag):
    """An NDK a recipe names as tested (==X.Y.Z) can be installed for linux with a pinned sha256."""
    catalog = load_catalog()
    for spec in load_recipe(tag).ndk_tested:
        for s in spec:
            if s.operator == "==" and "*" not in s.version:
                archive = find_archive(parse_ndk_request(s.version), "linux", catalog)
                assert archive.revision == Version(s.version) and archive.sha256


def test_headline_ndk_r20_is_pinned_for_linux_and_darwin():
    """The product's headline command uses --ndk 20.0.5594570."""
    catalog = load_catalog()
    for host in ("linux", "darwin"):
        archive = find_archive(parse_ndk_request("20.0.5594570"), host, catalog)
        assert archive.release == "r20" and archive.sha1 and archive.sha256 and archive.verified


def test_find_archive_errors():
    catalog = load_catalog()
    with pytest.raises(ToolchainError, match="did you mean .*r21e"):
        find_archive(parse_ndk_request("r21d"), "linux", catalog)
    with pytest.raises(ToolchainError, match="pinned for linux only"):
        find_archive(parse_ndk_request("r25c"), "darwin", catalog)
    with pytest.raises(ToolchainError, match="needs a version"):
        find_archive(parse_ndk_request("latest"), "linux", catalog)
    assert find_archive(parse_ndk_request("21.4.7075529"), "darwin", catalog).file.endswith("darwin-x86_64.zip")
    assert host_os("Linux") == "linux" and host_os("Darwin") == "darwin"


def test_malformed_catalog_is_a_recipe_error(tmp_path):
    bad = tmp_path / "a.toml"
    bad.write_text('base_url = "https://x/"\n[[archive]]\nrelease = "r1"\nrevision = "1.0.0"\nhost = "linux"\n'
                   'file = "f.zip"\nsha1 = "zz"\n')
    with pytest.raises(RecipeError, match="40 hex"):
        load_catalog(bad)
    bad.write_text("not toml [")
    with pytest.raises(RecipeError):
        load_catalog(bad)


def _archive_for(info, release="r21e") -> NdkArchive:
    return NdkArchive(release=release, revision=Version("21.4.7075529"), host="linux", file=info.path.name,
                      top_dir="android-ndk-r21e", size=info.size, sha1=info.sha1, sha256=info.sha256,
                      verified=True)


def test_verify_archive(tmp_path):
    info = make_standin_zip(tmp_path / "a.zip")
    archive = _archive_for(info)
    verify_archive(info.path, archive)
    with pytest.raises(ToolchainError, match="sha256 .* != pinned"):
        verify_archive(info.path, replace(archive, sha256="0" * 64))
    with pytest.raises(ToolchainError, match="sha1 .* != pinned"):
        verify_archive(info.path, replace(archive, sha1="0" * 40, sha256=None))
    with pytest.raises(ToolchainError, match="size"):
        verify_archive(info.path, replace(archive, size=1))


def test_extract_keeps_exec_bits_and_symlinks(tmp_path):
    info = make_standin_zip(tmp_path / "a.zip")
    dest = tmp_path / "sdk" / "ndk" / "21.4.7075529"
    extract_ndk_zip(info.path, dest)
    assert inspect_ndk(dest).revision == Version("21.4.7075529")
    assert os.access(dest / "ndk-build", os.X_OK)
    assert os.access(dest / "shader-tools/linux-x86_64/glslc", os.X_OK)
    assert not os.access(dest / "source.properties", os.X_OK)
    assert (dest / "ndk-build-link").is_symlink() and os.readlink(dest / "ndk-build-link") == "ndk-build"
    assert sorted(p.name for p in dest.parent.iterdir()) == ["21.4.7075529"]
    with pytest.raises(ToolchainError, match="already exists"):
        extract_ndk_zip(info.path, dest)


def test_extract_failed_check_leaves_nothing(tmp_path):
    info = make_standin_zip(tmp_path / "a.zip")
    sdk = tmp_path / "sdk"
    sdk.mkdir()

    def reject(folder: Path) -> None:
        raise ToolchainError("no")
    with pytest.raises(ToolchainError):
        extract_ndk_zip(info.path, sdk / "ndk" / "21.4.7075529", reject)
    assert list(sdk.iterdir()) == []


@pytest.mark.parametrize("evil", ["../escape.txt", "/abs.txt", "top/../../x"])
def test_extract_refuses_paths_outside(tmp_path, evil):
    z = tmp_path / "evil.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("top/source.properties", "Pkg.Revision = 1.0.0\n")
        zf.writestr(evil, "x")
    with pytest.raises(ToolchainError, match="outside"):
        extract_ndk_zip(z, tmp_path / "sdk" / "ndk" / "1.0.0")
    assert not (tmp_path / "sdk").exists()
    assert not (tmp_path / "escape.txt").exists()


def test_extract_skips_escaping_symlink(tmp_path):
    z = tmp_path / "link.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("top/a.txt", "a")
        link = zipfile.ZipInfo("top/bad")
        link.create_system = 3
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(link, "../../etc/passwd")
    dest = extract_ndk_zip(z, tmp_path / "out")
    assert (dest / "a.txt").read_text() == "a" and not (dest / "bad").exists()


def test_list_rows_marks_installed_and_unpinned():
    catalog = ArchiveCatalog("https://x/", (
        NdkArchive("r21e", Version("21.4.7075529"), "linux", "a.zip", sha1="0" * 40, verified=True),
        NdkArchive("r25c", Version("25.2.9519653"), "linux", "b.zip", sha1="0" * 40),
        NdkArchive("r21e", Version("21.4.7075529"), "darwin", "c.zip", sha1="0" * 40)))
    installed = (NdkInfo(Path("/s/ndk/21.4.7075529"), Version("21.4.7075529"), "ANDROID_HOME/ndk"),
                 NdkInfo(Path("/s/ndk/22.1.7171670"), Version("22.1.7171670"), "ANDROID_HOME/ndk"))
    rows = list_rows(catalog, installed, "linux")
    assert [(r.release, r.pinned, r.installed_at) for r in rows] == [
        ("r25c", True, None), ("r22b", False, Path("/s/ndk/22.1.7171670")),
        ("r21e", True, Path("/s/ndk/21.4.7075529"))]
    assert len(list_rows(catalog, (), None)) == 3
