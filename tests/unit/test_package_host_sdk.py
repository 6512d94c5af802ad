"""Host SDK tarball from an install tree (no processes)."""
from __future__ import annotations

import tarfile
from pathlib import Path

import pytest

from builder.errors import PackageError
from builder.package import host_sdk
from tests.fixtures.package_fixtures import SDE, forbid_processes, listing


@pytest.fixture(autouse=True)
def _no_processes(monkeypatch: pytest.MonkeyPatch) -> None:
    forbid_processes(monkeypatch)


def _install(root: Path) -> Path:
    for rel, text in {"include/torch/script.h": "#pragma once\n", "lib/libtorch.a": "!<arch>\n",
                      "lib/libc10.a": "!<arch>\n", "share/cmake/Torch/TorchConfig.cmake": "# cfg\n",
                      "share/cmake/Caffe2/Caffe2Config.cmake": "# c2\n", "bin/torch_shm_manager": "x",
                      "share/doc/readme": "x"}.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def test_tarball_contents_and_reproducible(tmp_path: Path) -> None:
    install = _install(tmp_path / "install")
    one = host_sdk.package_host_sdk(install, tmp_path / "out" / "sdk.tar.gz", source_date_epoch=SDE)
    with tarfile.open(one.path) as tar:
        names = tar.getnames()
    assert "libtorch/share/cmake/Torch/TorchConfig.cmake" in names
    assert "libtorch/include/torch/script.h" in names and "libtorch/lib/libtorch.a" in names
    assert not any("bin/" in n or "share/doc" in n for n in names)
    two = host_sdk.package_host_sdk(install, tmp_path / "out" / "again.tar.gz", source_date_epoch=SDE)
    assert one.sha256 == two.sha256 and one.non_relocatable == ()


def test_missing_torch_config(tmp_path: Path) -> None:
    install = _install(tmp_path / "install")
    (install / "share/cmake/Torch/TorchConfig.cmake").unlink()
    with pytest.raises(PackageError) as err:
        host_sdk.package_host_sdk(install, tmp_path / "out" / "sdk.tar.gz", source_date_epoch=SDE)
    assert str(err.value) == f"share/cmake/Torch/TorchConfig.cmake not found in {install}"
    assert not (tmp_path / "out").exists()


def test_missing_folders_all_named(tmp_path: Path) -> None:
    install = tmp_path / "install"
    (install / "include").mkdir(parents=True)
    with pytest.raises(PackageError) as err:
        host_sdk.package_host_sdk(install, tmp_path / "sdk.tar.gz", source_date_epoch=SDE)
    assert "lib/ not found" in str(err.value) and "share/cmake/ not found" in str(err.value)
    with pytest.raises(PackageError, match="install folder .* not found"):
        host_sdk.package_host_sdk(tmp_path / "none", tmp_path / "sdk.tar.gz", source_date_epoch=SDE)
    assert listing(tmp_path) == ["install", "install/include"]


def test_non_relocatable_reported(tmp_path: Path) -> None:
    install = _install(tmp_path / "install")
    (install / "share/cmake/Caffe2/Caffe2Targets.cmake").write_text(f'set(x "{install}/lib/libc10.a")\n')
    result = host_sdk.package_host_sdk(install, tmp_path / "sdk.tar.gz", source_date_epoch=SDE)
    assert result.non_relocatable == ("share/cmake/Caffe2/Caffe2Targets.cmake",)
