"""`builder android` end to end on the stand-in tree (issue 16): no user-supplied jar or .so. mini-torch
(tests/fixtures/minitorch.py) has a JNI project, fbjni submodule and Java API shaped like PyTorch's; the NDK is the
STAND-IN (Linux ELF per ABI, libc++_shared.so an empty stand-in), android.jar and nativeloader are STAND-INS
(tests/fixtures/standin_android.py). Real: cmake/ninja/cross compilers, javac, the AAR/POM/Maven writers."""
from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from elftools.elf.elffile import ELFFile

from tests.fixtures.gitrepos import isolate_git
from tests.fixtures.minitorch import make_minitorch
from tests.fixtures.standin_android import make_standin_android
from tests.fixtures.standin_ndk import ABI_GCC, make_standin_ndk

pytestmark = pytest.mark.integration
ABIS = ("arm64-v8a", "x86_64")
MACHINES = {"arm64-v8a": "EM_AARCH64", "x86_64": "EM_X86_64"}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    if shutil.which("javac") is None or shutil.which(ABI_GCC["arm64-v8a"]) is None:
        pytest.skip("needs javac and aarch64-linux-gnu-gcc (the stand-in NDK's arm64 compiler)")
    root = tmp_path_factory.mktemp("aar")
    up = make_minitorch(root / "up")
    ndk = make_standin_ndk(root / "ndk", revision="20.0.5594570", libcxx=True)
    sdk, m2 = make_standin_android(root / "java")
    env = {**os.environ, **isolate_git(root / "home"), "BUILDER_RECIPES_DIR": str(up.recipes),
           "BUILDER_CACHE_DIR": str(root / "cache"), "ANDROID_NDK": str(ndk), "SOURCE_DATE_EPOCH": "1700000000"}
    env.pop("ANDROID_HOME", None)
    return {"root": root, "up": up, "env": env, "args": ["--android-sdk", str(sdk), "--maven-repo", str(m2)]}


def build(world, out: Path, *extra: str) -> subprocess.CompletedProcess:
    argv = [sys.executable, "-m", "builder", "android", "--tag", world["up"].tag, "--mirror", world["up"].mirror,
            "--cache", "none", "--out", str(out), *(a for abi in ABIS for a in ("--abi", abi)), *world["args"], *extra]
    res = subprocess.run(argv, env=world["env"], capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, f"{res.stdout}\n{res.stderr}"
    return res


def test_android_writes_aar_pom_sources_and_maven_folder(world, tmp_path):
    out = tmp_path / "out"
    build(world, out)
    (aar,) = out.glob("pytorch_android_lite-0.1.0-builder.*.aar")
    version = aar.stem.split("-", 1)[1]
    with zipfile.ZipFile(aar) as zf:
        names = set(zf.namelist())
        for abi in ABIS:
            for lib in ("libpytorch_jni_lite.so", "libfbjni.so", "libc++_shared.so"):
                elf = ELFFile(io.BytesIO(zf.read(f"jni/{abi}/{lib}")))
                assert elf.header["e_machine"] == MACHINES[abi], (abi, lib)
            jni = ELFFile(io.BytesIO(zf.read(f"jni/{abi}/libpytorch_jni_lite.so")))
            needed = {t.needed for t in jni.get_section_by_name(".dynamic").iter_tags() if t.entry.d_tag == "DT_NEEDED"}
            assert "libc++_shared.so" in needed              # packaged beside it, as with Google's NDK
            assert jni.get_section_by_name(".symtab") is None  # stripped like Gradle strips
        with zipfile.ZipFile(io.BytesIO(zf.read("classes.jar"))) as jar:
            classes = set(jar.namelist())
        values = zf.read("res/values/values.xml").decode()
        r_txt = zf.read("R.txt").decode()
    assert {"AndroidManifest.xml", "classes.jar", "proguard.txt", "headers/minitorch.h"} <= names
    assert {"org/pytorch/LiteModuleLoader.class", "org/pytorch/LiteNativePeer.class"} <= classes
    assert not any(c.startswith(("com/facebook", "android/", "javax/")) for c in classes)   # compile-only
    assert "app_name" in values and r_txt == "int string app_name 0x0\n"
    folder = out / "maven" / "org" / "pytorch" / "pytorch_android_lite" / version
    pom = (folder / f"pytorch_android_lite-{version}.pom").read_text()
    for dep in ("<artifactId>fbjni-java-only</artifactId>", "<version>0.2.2</version>",
                "<artifactId>nativeloader</artifactId>", "<version>0.10.4</version>"):
        assert dep in pom
    assert (folder / f"pytorch_android_lite-{version}-sources.jar").is_file()
    assert (folder / f"pytorch_android_lite-{version}.aar.sha256").read_text() == \
        hashlib.sha256(aar.read_bytes()).hexdigest()
    assert (folder.parent / "maven-metadata.xml").is_file()
    manifest = json.loads(Path(f"{aar}.manifest.json").read_text())
    assert manifest["target"] == "android-aar" and manifest["details"]["slice"] == "arm64-v8a,x86_64"


def test_the_same_command_twice_gives_the_same_bytes(world, tmp_path):
    """Rebuilt from nothing (the output folder removed): the same AAR, byte for byte. (Another output folder gives the
    same Maven version, but build-ids differ: the linker hashes the sources' paths in the symbol table.)"""
    out = tmp_path / "out"
    build(world, out)
    (first,) = out.glob("*.aar")
    data = first.read_bytes()
    again = build(world, out)                                    # nothing to do: libraries and AAR up to date
    assert "up to date" in again.stdout + again.stderr and first.read_bytes() == data
    shutil.rmtree(out)
    build(world, out)
    assert first.read_bytes() == data
    other = tmp_path / "elsewhere"
    build(world, other)
    assert next(other.glob("*.aar")).name == first.name


@pytest.mark.skipif(shutil.which("gradle") is None, reason="Debian's gradle is not installed (apt-get install gradle)")
def test_gradle_offline_resolves_the_aar_and_reads_its_pom(world, tmp_path):
    out = tmp_path / "out"
    build(world, out)
    (aar,) = out.glob("*.aar")
    version = aar.stem.split("-", 1)[1]
    project = tmp_path / "app"
    project.mkdir()
    m2 = world["args"][world["args"].index("--maven-repo") + 1]
    (project / "build.gradle").write_text(f"""
configurations {{ lib; withDeps }}
repositories {{ maven {{ url "file://{out}/maven" }}; maven {{ url "file://{m2}" }} }}
dependencies {{
  lib("org.pytorch:pytorch_android_lite:{version}") {{ transitive = false }}
  withDeps("org.pytorch:pytorch_android_lite:{version}")
}}
task resolve {{ doLast {{
  configurations.lib.resolvedConfiguration.resolvedArtifacts.each {{ println "resolved " + it.file.name }}
  configurations.withDeps.resolvedConfiguration.lenientConfiguration.unresolvedModuleDependencies.each {{
    println "unresolved " + it.selector }}
}} }}
""")
    res = subprocess.run(["gradle", "--offline", "-q", "resolve"], cwd=project, capture_output=True, text=True,
                         timeout=600, env={**os.environ, "GRADLE_USER_HOME": str(tmp_path / "gradle-home")})
    assert res.returncode == 0, res.stdout + res.stderr
    assert f"resolved {aar.name}" in res.stdout
    # the POM's runtime dependencies are read: fbjni-java-only is in no local repository here (nativeloader is)
    assert "unresolved com.facebook.fbjni:fbjni-java-only:0.2.2" in res.stdout
    assert "nativeloader" not in res.stdout.split("unresolved", 1)[-1]


@pytest.mark.skipif(shutil.which("java") is None, reason="needs a JDK's java")
def test_verify_aar_runs_a_model_through_its_java_api_on_this_jvm(world, tmp_path):
    """`builder verify --aar`: the AAR's own classes.jar and jni/x86_64/ libraries (STAND-IN NDK: Linux ELF) on this
    machine's JVM, through LiteModuleLoader.load -> forward -> getDataAsFloatArray; mini-torch's model is identity,
    computed natively across JNI, so torch eager gives the same numbers."""
    torch = pytest.importorskip("torch")
    out = tmp_path / "out"
    build(world, out)
    (aar,) = out.glob("*.aar")
    model = tmp_path / "identity.ptl"
    torch.jit.script(torch.nn.Identity())._save_for_lite_interpreter(str(model))
    m2 = world["args"][world["args"].index("--maven-repo") + 1]
    sdk = world["args"][world["args"].index("--android-sdk") + 1]
    argv = [sys.executable, "-m", "builder", "verify", "--aar", str(aar), "--model", str(model), "--shapes", "2x3x4",
            "--maven-repo", m2, "--android-sdk", sdk]
    res = subprocess.run(argv, env=world["env"], capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "LiteModuleLoader.load" in res.stdout and "jni/x86_64/" in res.stdout and "max abs 0.00e+00" in res.stdout
    again = subprocess.run(argv, env=world["env"], capture_output=True, text=True, timeout=600)   # cached check
    assert again.returncode == 0, again.stdout + again.stderr
    arm_only = tmp_path / "arm.aar"
    with zipfile.ZipFile(aar) as src, zipfile.ZipFile(arm_only, "w") as dst:
        for item in src.infolist():
            if not item.filename.startswith("jni/x86_64/"):
                dst.writestr(item, src.read(item))
    res = subprocess.run([*argv[:5], str(arm_only), *argv[6:], "--tag", world["up"].tag], env=world["env"],
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 2 and "no libraries this x86_64 machine's JVM can load" in res.stderr
    assert "Traceback" not in res.stderr


def test_install_ndk_fetches_missing_java_dependencies_then_builds_the_aar(world, tmp_path):
    """--install-ndk with an empty Maven folder: the jars v0.1.0 pins are downloaded (here from a local HTTP server
    serving the stand-in Maven layout with .sha1 files, as Maven Central publishes them), checked, then used."""
    import functools
    import threading
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    served = tmp_path / "served"
    shutil.copytree(world["args"][world["args"].index("--maven-repo") + 1], served)
    for jar in served.rglob("*.jar"):
        jar.with_name(jar.name + ".sha1").write_text(hashlib.sha1(jar.read_bytes()).hexdigest() + "\n")
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(served))
    handler.log_message = lambda *a: None            # type: ignore[attr-defined]
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        empty_m2 = tmp_path / "m2"
        args = [a if a != world["args"][world["args"].index("--maven-repo") + 1] else str(empty_m2) for a in world["args"]]
        out = tmp_path / "out"
        argv = [sys.executable, "-m", "builder", "android", "--tag", world["up"].tag, "--mirror", world["up"].mirror,
                "--cache", "none", "--out", str(out), "--abi", "x86_64", *args, "--install-ndk",
                "--maven-url", f"http://127.0.0.1:{httpd.server_address[1]}/"]
        res = subprocess.run(argv, env=world["env"], capture_output=True, text=True, timeout=900)
    finally:
        httpd.shutdown()
        httpd.server_close()
    assert res.returncode == 0, res.stdout + res.stderr
    assert (empty_m2 / "com/facebook/soloader/nativeloader/0.10.4/nativeloader-0.10.4.jar").is_file()
    assert len(list(out.glob("*.aar"))) == 1
