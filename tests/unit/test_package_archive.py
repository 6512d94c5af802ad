"""Reproducible zip / tar.gz writers and all-or-nothing outputs (no processes)."""
from __future__ import annotations

import gzip
import hashlib
import os
import tarfile
import zipfile
from pathlib import Path

import pytest

from builder.package import archive
from tests.fixtures.package_fixtures import SDE, forbid_processes, listing


@pytest.fixture(autouse=True)
def _no_processes(monkeypatch: pytest.MonkeyPatch) -> None:
    forbid_processes(monkeypatch)


def _tree(root: Path, *, exec_mode: int = 0o755, mtime: int = 1_000_000) -> Path:
    (root / "b" / "deep").mkdir(parents=True)
    (root / "a.txt").write_text("alpha\n")
    (root / "b" / "deep" / "z.bin").write_bytes(bytes(range(256)) * 10)
    tool = root / "b" / "tool.sh"
    tool.write_text("#!/bin/sh\necho hi\n")
    tool.chmod(exec_mode)
    (root / "link").symlink_to("a.txt")
    for p in root.rglob("*"):
        if not p.is_symlink():
            os.utime(p, (mtime, mtime))
    return root


def _sha(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


@pytest.mark.parametrize("writer", [archive.write_zip, archive.write_tar_gz])
def test_same_bytes_whatever_the_disk_metadata(tmp_path: Path, writer) -> None:
    one = _tree(tmp_path / "one", mtime=1_000_000)
    two = _tree(tmp_path / "two", exec_mode=0o775, mtime=2_000_000)
    os.chmod(two / "a.txt", 0o600)
    out1 = writer(tmp_path / "out1", archive.tree_entries(one, "pkg"), source_date_epoch=SDE)
    out2 = writer(tmp_path / "out2", archive.tree_entries(two, "pkg"), source_date_epoch=SDE)
    assert _sha(out1) == _sha(out2)
    again = writer(tmp_path / "out1", archive.tree_entries(one, "pkg"), source_date_epoch=SDE)
    assert _sha(again) == _sha(out2)


@pytest.mark.parametrize("writer", [archive.write_zip, archive.write_tar_gz])
def test_epoch_changes_the_bytes(tmp_path: Path, writer) -> None:
    entries = [archive.file_entry("x", b"x")]
    a = writer(tmp_path / "a", entries, source_date_epoch=SDE)
    b = writer(tmp_path / "b", entries, source_date_epoch=SDE + 86400)
    assert _sha(a) != _sha(b)


def test_zip_entries_sorted_modes_and_times(tmp_path: Path) -> None:
    out = archive.write_zip(tmp_path / "x.zip", archive.tree_entries(_tree(tmp_path / "t"), "pkg"),
                            source_date_epoch=SDE)
    with zipfile.ZipFile(out) as zf:
        infos = zf.infolist()
    names = [i.filename for i in infos]
    assert names == sorted(names)
    assert names[:2] == ["pkg/", "pkg/a.txt"]
    modes = {i.filename: (i.external_attr >> 16) & 0o7777 for i in infos}
    assert modes["pkg/a.txt"] == 0o644
    assert modes["pkg/b/tool.sh"] == 0o755
    assert modes["pkg/b/"] == 0o755
    kinds = {i.filename: (i.external_attr >> 16) & 0o170000 for i in infos}
    assert kinds["pkg/link"] == 0o120000
    assert {i.date_time for i in infos} == {(2022, 12, 15, 0, 0, 0)}


def test_zip_clamps_epoch_to_1980(tmp_path: Path) -> None:
    out = archive.write_zip(tmp_path / "x.zip", [archive.file_entry("f", b"1")], source_date_epoch=0)
    with zipfile.ZipFile(out) as zf:
        assert zf.infolist()[0].date_time == (1980, 1, 1, 0, 0, 0)


def test_tar_owner_mode_mtime_and_gzip_header(tmp_path: Path) -> None:
    out = archive.write_tar_gz(tmp_path / "x.tar.gz", archive.tree_entries(_tree(tmp_path / "t"), "pkg"),
                               source_date_epoch=SDE)
    raw = out.read_bytes()
    assert raw[:2] == b"\x1f\x8b"
    assert raw[4:8] == b"\0\0\0\0"  # gzip mtime 0
    assert raw[3] & 0x08 == 0  # no FNAME
    with tarfile.open(out, "r:gz") as tar:
        members = tar.getmembers()
    names = [m.name for m in members]
    assert names == sorted(names)
    for m in members:
        assert (m.uid, m.gid, m.uname, m.gname, m.mtime) == (0, 0, "", "", SDE)
    by_name = {m.name: m for m in members}
    assert by_name["pkg/a.txt"].mode == 0o644
    assert by_name["pkg/b/tool.sh"].mode == 0o755
    assert by_name["pkg/b"].isdir() and by_name["pkg/b"].mode == 0o755
    assert by_name["pkg/link"].issym() and by_name["pkg/link"].linkname == "a.txt"
    assert gzip.decompress(raw)  # a valid stream


def test_duplicate_names_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="duplicate"):
        archive.write_zip(tmp_path / "x.zip", [archive.file_entry("a", b"1"), archive.file_entry("a", b"2")],
                          source_date_epoch=SDE)
    assert listing(tmp_path) == []


def test_bad_names_rejected() -> None:
    for bad in ("../x", "a/../b", "", "/"):
        with pytest.raises(ValueError):
            archive.file_entry(bad, b"")


def test_failed_verify_leaves_nothing(tmp_path: Path) -> None:
    def verify(_tmp: Path) -> None:
        raise RuntimeError("nope")

    with pytest.raises(RuntimeError):
        archive.write_zip(tmp_path / "x.zip", [archive.file_entry("a", b"1")], source_date_epoch=SDE,
                          verify=verify)
    assert listing(tmp_path) == []


def test_failed_write_keeps_old_output(tmp_path: Path) -> None:
    dest = tmp_path / "x.tar.gz"
    archive.write_tar_gz(dest, [archive.file_entry("a", b"1")], source_date_epoch=SDE)
    before = _sha(dest)
    broken = archive.Entry("b", source=tmp_path / "missing")
    with pytest.raises(FileNotFoundError):
        archive.write_tar_gz(dest, [archive.file_entry("a", b"2"), broken], source_date_epoch=SDE)
    assert _sha(dest) == before
    assert listing(tmp_path) == ["x.tar.gz"]


def test_atomic_dir_replaces_and_cleans_up(tmp_path: Path) -> None:
    dest = tmp_path / "out"
    dest.mkdir()
    (dest / "old").write_text("old")
    with archive.atomic_dir(dest) as tmp:
        (tmp / "new").write_text("new")
    assert listing(tmp_path) == ["out", "out/new"]
    assert oct(dest.stat().st_mode & 0o777) == oct(0o755)
    with pytest.raises(RuntimeError), archive.atomic_dir(dest) as tmp:
        (tmp / "half").write_text("x")
        raise RuntimeError
    assert listing(tmp_path) == ["out", "out/new"]
