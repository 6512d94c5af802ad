"""Issue 7: ABIs built as separate invocations (as on separate CI machines) and assembled later from their parts
give the same AAR bytes as building both in one invocation and packaging them together. Stand-in NDK."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from builder.package.aar import STANDIN_SYSTEM_LIBS
from tests.fixtures.gitrepos import isolate_git
from tests.fixtures.minitorch import make_minitorch
from tests.fixtures.standin_android import make_standin_android
from tests.fixtures.standin_ndk import ABI_GCC, make_standin_ndk

pytestmark = pytest.mark.integration
ABIS = ("arm64-v8a", "x86_64")


def cli(env, *args) -> subprocess.CompletedProcess:
    res = subprocess.run([sys.executable, "-m", "builder", *args], env=env, capture_output=True, text=True,
                         timeout=600)
    assert res.returncode == 0, res.stderr
    return res


def test_parts_assemble_to_the_same_aar(tmp_path):
    up = make_minitorch(tmp_path / "up")
    ndk = make_standin_ndk(tmp_path / "ndk" / "20.0.5594570", revision="20.0.5594570")
    env = {**os.environ, **isolate_git(tmp_path / "home"), "BUILDER_RECIPES_DIR": str(up.recipes),
           "BUILDER_CACHE_DIR": str(tmp_path / "cache"), "ANDROID_NDK": str(ndk), "SOURCE_DATE_EPOCH": "1700000000"}
    base = ["android", "--tag", up.tag, "--mirror", up.mirror, "--cache", "none", "--no-aar"]
    jar = tmp_path / "classes.jar"
    with zipfile.ZipFile(jar, "w") as z:
        z.writestr("org/pytorch/Module.class", b"\xca\xfe\xba\xbe stand-in class bytes")

    together = tmp_path / "together"
    abi_args = [a for abi in ABIS for a in ("--abi", abi)]
    cli(env, *base, *abi_args, "--out", str(together))
    slices = json.loads(cli(env, *base, *abi_args, "--out", str(together), "--json").stdout)["slices"]
    one = tmp_path / "one.aar"
    cli(env, "package", "aar", "--classes-jar", str(jar), "-o", str(one),
        *[a for s in slices for a in ("--build-dir", f"{s['name']}={s['build_dir']}")])

    parts = []
    for abi in ABIS:                                  # one machine per ABI
        out = tmp_path / f"machine-{abi}"
        cli(env, *base, "--abi", abi, "--out", str(out))
        sl = json.loads(cli(env, *base, "--abi", abi, "--out", str(out), "--json").stdout)["slices"][0]
        cli(env, "package", "part", "--abi", abi, "--build-dir", sl["build_dir"], "-o", str(tmp_path / f"part-{abi}"))
        parts += ["--parts", str(tmp_path / f"part-{abi}")]
    assembled = tmp_path / "assembled.aar"
    cli(env, "assemble", *parts, "--classes-jar", str(jar), "-o", str(assembled))

    digest = lambda p: hashlib.sha256(Path(p).read_bytes()).hexdigest()  # noqa: E731
    assert digest(one) == digest(assembled)
    names = zipfile.ZipFile(assembled).namelist()
    assert {f"jni/{abi}/libpytorch_jni_lite.so" for abi in ABIS} <= set(names)


@pytest.mark.skipif(shutil.which("javac") is None or shutil.which(ABI_GCC["arm64-v8a"]) is None,
                    reason="needs javac and aarch64-linux-gnu-gcc (the stand-in NDK's arm64 compiler)")
def test_per_abi_builds_assemble_to_the_one_invocation_release(tmp_path):
    """examples/release-local.sh's steps, on this machine: `builder android` per ABI (+ `package part`), then
    `builder assemble --publication` = the AAR bytes and Maven folder of one `builder android` of both ABIs."""
    up = make_minitorch(tmp_path / "up")
    ndk = make_standin_ndk(tmp_path / "ndk", revision="20.0.5594570", libcxx=True)
    sdk, m2 = make_standin_android(tmp_path / "java")
    env = {**os.environ, **isolate_git(tmp_path / "home"), "BUILDER_RECIPES_DIR": str(up.recipes),
           "BUILDER_CACHE_DIR": str(tmp_path / "cache"), "ANDROID_NDK": str(ndk), "SOURCE_DATE_EPOCH": "1700000000"}
    env.pop("ANDROID_HOME", None)
    base = ["android", "--tag", up.tag, "--mirror", up.mirror, "--cache", "none", "--android-sdk", str(sdk),
            "--maven-repo", str(m2)]
    abi_args = [a for abi in ABIS for a in ("--abi", abi)]
    out, parts = tmp_path / "out", []          # every machine builds in the same folder (paths reach build-ids)
    plan = json.loads(cli(env, *base, *abi_args, "--out", str(out), "--json").stdout)
    (aar_name,) = [s["title"].removeprefix("write ") for s in plan["steps"] if s["title"].endswith(".aar")]
    version = aar_name.removesuffix(".aar").removeprefix("pytorch_android_lite-")
    for abi in ABIS:
        cli(env, *base, "--abi", abi, "--out", str(out))
        (jni,) = out.glob(f"build/android-{abi}-*/jni/aar-input")
        cli(env, "package", "part", "--abi", abi, "--build-dir", str(jni), "-o", str(tmp_path / "parts" / abi),
            "--runtime-lib", "libfbjni.so", "--shared-stl", *[a for lib in STANDIN_SYSTEM_LIBS for a in ("--system-lib", lib)])
        parts += ["--parts", str(tmp_path / "parts" / abi)]
    pom = sorted(out.joinpath("maven").rglob("*.pom"))[0]
    dist = tmp_path / "dist"
    cli(env, "assemble", *parts, "--publication", str(pom.parent), "--version", version, "--out", str(dist),
        *[a for lib in STANDIN_SYSTEM_LIBS for a in ("--system-lib", lib)])
    out.rename(tmp_path / "out-per-abi")
    cli(env, *base, *abi_args, "--out", str(out))          # the one-invocation build, from nothing, same folder
    one = out / aar_name
    assert (dist / aar_name).read_bytes() == one.read_bytes()
    version_dir = Path(*pom.parent.relative_to(out).parts[:-1], version)
    mine, theirs = dist / version_dir, out / version_dir
    assert sorted(p.name for p in mine.iterdir()) == sorted(p.name for p in theirs.iterdir())
    for path in theirs.iterdir():
        assert (mine / path.name).read_bytes() == path.read_bytes(), path.name
