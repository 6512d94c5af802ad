"""Host SDK tarball, unpacked elsewhere, consumed with find_package(Torch). Starts processes."""
from __future__ import annotations

import tarfile
from pathlib import Path

import pytest

from builder import proc
from builder.package import host_sdk, manifest
from tests.fixtures.package_fixtures import SDE, host_install

pytestmark = pytest.mark.integration

CC, AR, CMAKE = proc.which("gcc") or proc.which("cc"), proc.which("ar"), proc.which("cmake")


@pytest.mark.skipif(not (CC and AR and CMAKE), reason="needs a C compiler, ar and cmake")
def test_find_package_torch_from_unpacked_sdk(tmp_path: Path) -> None:
    install = host_install(tmp_path / "build", CC, AR)  # type: ignore[arg-type]
    result = host_sdk.package_host_sdk(install, tmp_path / "dist" / "libtorch-host.tar.gz", source_date_epoch=SDE)
    again = host_sdk.package_host_sdk(install, tmp_path / "dist" / "again.tar.gz", source_date_epoch=SDE)
    assert result.sha256 == again.sha256 and result.non_relocatable == ()

    elsewhere = tmp_path / "elsewhere"
    with tarfile.open(result.path) as tar:
        tar.extractall(elsewhere, filter="data")
    project = tmp_path / "consumer"
    project.mkdir()
    (project / "CMakeLists.txt").write_text(
        "cmake_minimum_required(VERSION 3.16)\nproject(consumer C)\nfind_package(Torch REQUIRED)\n"
        "add_executable(consumer main.c)\ntarget_link_libraries(consumer ${TORCH_LIBRARIES})\n")
    (project / "main.c").write_text(
        "#include <torch/torch.h>\n#include <stdio.h>\nint main(void) { printf(\"%d\\n\", torch_answer()); return 0; }\n")
    build = tmp_path / "consumer-build"
    gen = ["-G", "Ninja"] if proc.which("ninja") else []
    proc.run([CMAKE, "-S", project, "-B", build, *gen, f"-DCMAKE_PREFIX_PATH={elsewhere / 'libtorch'}",  # type: ignore[list-item]
              f"-DCMAKE_C_COMPILER={CC}"])
    proc.run([CMAKE, "--build", build])  # type: ignore[list-item]
    assert proc.run([build / "consumer"]).stdout.strip() == "42"

    doc = manifest.build_manifest(manifest.ManifestInputs(tag="v1.13.1", commit="c"), result.path)
    groups = {r.group for r in manifest.size_report(doc)}
    assert groups == {"include", "lib", "share"}
