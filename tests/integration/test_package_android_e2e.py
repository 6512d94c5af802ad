"""Real AAR from real cross-compiled ELF libraries and a real javac-built classes.jar,
then a Maven layout and a manifest. Starts processes (compilers, javac)."""
from __future__ import annotations

import hashlib
import io
import zipfile
from pathlib import Path

import pytest
from elftools.elf.elffile import ELFFile

from builder import proc
from builder.errors import PackageError
from builder.package import aar, manifest, maven
from builder.package.aar import AarSpec, AbiInput
from builder.package.android_outputs import compile_java
from builder.steps import JavaCompileStep
from tests.fixtures.package_fixtures import (
    PYTORCH_JAVA,
    SDE,
    elf_compiler,
    listing,
    real_android_build,
    stub_compile_jars,
    write_sources,
)

pytestmark = pytest.mark.integration

ABIS = ("arm64-v8a", "armeabi-v7a", "x86", "x86_64")
MACHINES = {"arm64-v8a": "EM_AARCH64", "armeabi-v7a": "EM_ARM", "x86": "EM_386", "x86_64": "EM_X86_64"}
JAVAC = proc.which("javac")


@pytest.fixture(scope="module")
def toolchains() -> dict[str, tuple[str, ...]]:
    found = {abi: elf_compiler(abi) for abi in ABIS}
    missing = [abi for abi, cc in found.items() if cc is None]
    if missing:
        pytest.skip(f"no cross compiler (gcc or clang+ld.lld) for {', '.join(missing)}")
    if JAVAC is None:
        pytest.skip("javac not installed")
    return found  # type: ignore[return-value]


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory, toolchains: dict[str, tuple[str, ...]]) -> dict:
    root = tmp_path_factory.mktemp("android")
    builds = {}
    for abi in ABIS:
        # x86 deliberately linked with 4 KB pages, to see it reported as not 16 KB aligned
        builds[abi] = real_android_build(root / "build", abi, toolchains[abi],
                                         max_page_size=4096 if abi == "x86" else 16384)
    jars = stub_compile_jars(root / "jars", JAVAC)  # type: ignore[arg-type]
    src = write_sources(root / "java", PYTORCH_JAVA)
    return {"root": root, "builds": builds, "jars": jars, "src": src,
            "classes_jar": _classes_jar(src, jars, root / "java-out")}


def _classes_jar(src: Path, jars: tuple[Path, ...], out: Path) -> Path:
    """classes.jar the way `builder android` makes it: the plan's javac step, run by the executor's function."""
    step = JavaCompileStep(title="javac", javac=Path(JAVAC or "javac"), source_root=src, exclude=(), sourcepath=(src,),
                           classpath=tuple(jars), release=8, classes_jar=out / "classes.jar",
                           sources_jar=out / "sources.jar")
    (javac,) = step.commands()
    jar, _ = compile_java(javac, step.source_root, step.exclude, step.classes_dir, step.argfile, step.classes_jar,
                          step.sources_jar, source_date_epoch=SDE)
    return jar


def _inputs(ws: dict) -> list[AbiInput]:
    return [AbiInput(abi, ws["builds"][abi]) for abi in ABIS]


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_aar_is_complete_and_correct(workspace: dict, tmp_path: Path) -> None:
    out = tmp_path / "out" / "pytorch_android_lite.aar"
    result = aar.build_aar(_inputs(workspace), out, AarSpec(ABIS), classes_jar=workspace["classes_jar"], source_date_epoch=SDE)
    with zipfile.ZipFile(out) as zf:
        names = set(zf.namelist())
        for abi in ABIS:
            for lib in ("libpytorch_jni_lite.so", "libfbjni.so", "libc++_shared.so"):
                elf = ELFFile(io.BytesIO(zf.read(f"jni/{abi}/{lib}")))
                assert elf.header["e_machine"] == MACHINES[abi], (abi, lib)
        with zipfile.ZipFile(io.BytesIO(zf.read("classes.jar"))) as jar:
            classes = set(jar.namelist())
    assert {"AndroidManifest.xml", "R.txt", "proguard.txt", "classes.jar", "headers/torch/script.h"} <= names
    assert {"org/pytorch/Module.class", "org/pytorch/LiteModuleLoader.class"} <= classes
    assert not any(c.startswith(("com/facebook", "android/")) for c in classes)
    jni = {r.name: r for r in result.libs if r.abi == "arm64-v8a"}
    assert jni["libpytorch_jni_lite.so"].needed == ("libfbjni.so", "libc++_shared.so")
    assert {(r.abi, r.aligned_16k) for r in result.libs} == {
        ("arm64-v8a", True), ("armeabi-v7a", True), ("x86", False), ("x86_64", True)}


def test_consumer_compiles_against_classes_jar(workspace: dict, tmp_path: Path) -> None:
    out = aar.build_aar(_inputs(workspace), tmp_path / "x.aar", AarSpec(ABIS), classes_jar=workspace["classes_jar"],
                        source_date_epoch=SDE).path
    with zipfile.ZipFile(out) as zf:
        (tmp_path / "classes.jar").write_bytes(zf.read("classes.jar"))
    consumer = write_sources(tmp_path / "app", {"com/example/App.java": (
        "package com.example;\nimport org.pytorch.LiteModuleLoader;\nimport org.pytorch.Module;\n"
        "public class App { public static Module run(String p) { Module m = LiteModuleLoader.load(p);"
        " m.destroy(); return m; } }\n")})
    classpath = ":".join(str(p) for p in (tmp_path / "classes.jar", *workspace["jars"]))
    (tmp_path / "classes").mkdir()
    proc.run([JAVAC, "--release", "8", "-cp", classpath, "-d", tmp_path / "classes",
              consumer / "com/example/App.java"])
    assert (tmp_path / "classes/com/example/App.class").is_file()


def test_reproducible_and_parts_give_same_bytes(workspace: dict, tmp_path: Path) -> None:
    spec = AarSpec(ABIS)
    one = aar.build_aar(_inputs(workspace), tmp_path / "one.aar", spec, classes_jar=workspace["classes_jar"], source_date_epoch=SDE)
    two = aar.build_aar(_inputs(workspace), tmp_path / "two.aar", spec, classes_jar=workspace["classes_jar"], source_date_epoch=SDE)
    assert _sha(one.path) == _sha(two.path)
    # Separate machines: each stages its ABI; one machine compiles classes.jar and assembles.
    parts = [aar.stage_abi_part(inp, spec, tmp_path / "machine" / inp.abi / "part") for inp in _inputs(workspace)]
    jar = _classes_jar(workspace["src"], workspace["jars"], tmp_path / "java")   # compiled again, same bytes
    three = aar.assemble_aar(parts[::-1], tmp_path / "three.aar", spec, classes_jar=jar, source_date_epoch=SDE)
    assert three.sha256 == one.sha256


def test_broken_build_folder_writes_nothing(workspace: dict, tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    (broken / "install" / "lib").mkdir(parents=True)
    (broken / "install" / "include").mkdir()
    inputs = [AbiInput("arm64-v8a", broken)] + _inputs(workspace)[1:]
    out = tmp_path / "out"
    with pytest.raises(PackageError) as err:
        aar.build_aar(inputs, out / "x.aar", AarSpec(ABIS), classes_jar=workspace["classes_jar"], source_date_epoch=SDE)
    assert f"arm64-v8a: install/lib/libpytorch_jni_lite.so not found in {broken}" in str(err.value)
    assert listing(out) == []


def test_maven_layout_and_manifest(workspace: dict, tmp_path: Path) -> None:
    result = aar.build_aar(_inputs(workspace), tmp_path / "out" / "pytorch_android_lite.aar", AarSpec(ABIS),
                           classes_jar=workspace["classes_jar"], source_date_epoch=SDE)
    inputs = manifest.ManifestInputs(tag="v1.13.1", commit="49444c3e", toolchain={"ndk": "stand-in"},
                                     defines={"BUILD_LITE_INTERPRETER": "1"}, ops=("aten::add.Tensor",),
                                     source_date_epoch=SDE)
    doc = manifest.build_manifest(inputs, result.path, details=result.details())
    path = manifest.write_manifest(doc, manifest.manifest_path(result.path))
    rows = {r.group: r for r in manifest.size_report(manifest.load_manifest(path))}
    assert set(rows) == {*ABIS, "common"} and rows["arm64-v8a"].files == 3
    version = maven.custom_version("1.13.1", manifest.config_digest(inputs))
    published = maven.publish_aar(result.path, tmp_path / "repo", maven.Coordinates("pytorch_android_lite", version),
                                  [maven.Dependency("com.facebook.fbjni", "fbjni-java-only", "0.2.2")],
                                  source_date_epoch=SDE)
    aar_copy = published.version_dir / f"pytorch_android_lite-{version}.aar"
    assert _sha(aar_copy) == result.sha256 == doc["artifact"]["sha256"]
    assert (published.version_dir / f"pytorch_android_lite-{version}.aar.sha256").read_text() == result.sha256
