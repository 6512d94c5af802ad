"""Real builds through the CLI: mini-torch (tests/fixtures/minitorch.py) for four ABIs with the STAND-IN NDK
(tests/fixtures/standin_ndk.py: each ABI mapped to a real cross compiler here; not Google's NDK)."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from elftools.elf.elffile import ELFFile

from tests.fixtures.gitrepos import isolate_git
from tests.fixtures.minitorch import make_minitorch
from tests.fixtures.standin_ndk import ABI_ELF, make_standin_ndk

ABIS = ("arm64-v8a", "armeabi-v7a", "x86", "x86_64")
pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("world")
    env = {**os.environ, **isolate_git(root / "home")}
    up = make_minitorch(root / "up")
    ndk = make_standin_ndk(root / "sdk" / "ndk" / "20.0.5594570", revision="20.0.5594570")
    env.update({"BUILDER_RECIPES_DIR": str(up.recipes), "BUILDER_CACHE_DIR": str(root / "cache"),
                "ANDROID_NDK": str(ndk)})
    env.pop("ANDROID_HOME", None)
    return {"root": root, "env": env, "up": up, "ndk": ndk}


def builder(world, *args, out: Path, check=True, extra_env=None) -> subprocess.CompletedProcess:
    argv = [sys.executable, "-m", "builder", "android", "--tag", world["up"].tag, "--mirror", world["up"].mirror,
            "--cache", "none", "--no-aar", "--out", str(out), *args]     # libtorch only: the AAR has test_aar_e2e
    res = subprocess.run(argv, env={**world["env"], **(extra_env or {})}, capture_output=True, text=True,
                         timeout=600)
    if check and res.returncode != 0:
        raise AssertionError(f"exit {res.returncode}\n{res.stdout}\n{res.stderr}")
    return res


def plan_json(world, *args, out: Path) -> dict:
    return json.loads(builder(world, *args, "--json", out=out).stdout)


def elf_machine(path: Path) -> tuple[str, int]:
    with path.open("rb") as f:
        elf = ELFFile(f)
        return elf["e_machine"], elf.elfclass


def test_four_abis_build_and_rebuild_is_noop(world, tmp_path):
    out = tmp_path / "out"
    abi_args = [a for abi in ABIS for a in ("--abi", abi)]
    builder(world, *abi_args, out=out)
    plan = plan_json(world, *abi_args, out=out)
    for sl in plan["slices"]:
        lib = Path(sl["install_dir"]) / "lib" / "libpytorch_jni_lite.so"
        assert elf_machine(lib) == ABI_ELF[sl["name"]], sl["name"]
        assert (Path(sl["install_dir"]) / "lib" / "libtorch_cpu.a").is_file()
        assert not (Path(sl["build_dir"]) / "install.partial").exists()
    t0 = time.monotonic()
    again = builder(world, *abi_args, out=out)
    elapsed = time.monotonic() - t0
    assert elapsed < 3.0, elapsed
    for abi in ABIS:
        assert f"{abi}: up to date" in again.stderr
    assert "configure " not in again.stderr and "build arm" not in again.stderr


def test_changed_define_rebuilds_only_its_folder(world, tmp_path):
    out = tmp_path / "out"
    builder(world, "--abi", "x86_64", out=out)
    first = plan_json(world, "--abi", "x86_64", out=out)["slices"][0]
    changed = plan_json(world, "--abi", "x86_64", "-D", "MINITORCH_FLAVOUR=spicy", out=out)["slices"][0]
    assert changed["build_dir"] != first["build_dir"]
    builder(world, "--abi", "x86_64", "-D", "MINITORCH_FLAVOUR=spicy", out=out)
    assert Path(changed["install_dir"], "lib", "libpytorch_jni_lite.so").is_file()
    res = builder(world, "--abi", "x86_64", out=out)      # the old configuration is still valid
    assert "up to date" in res.stderr


def test_broken_source_reports_command_error_and_log(world, tmp_path):
    broken = make_minitorch(tmp_path / "broken", broken=True)
    env = {"BUILDER_RECIPES_DIR": str(broken.recipes)}
    argv_mirror = ["--mirror", broken.mirror]
    res = subprocess.run([sys.executable, "-m", "builder", "android", "--tag", broken.tag, *argv_mirror,
                          "--cache", "none", "--no-aar", "--abi", "x86_64", "--out", str(tmp_path / "out")],
                         env={**world["env"], **env}, capture_output=True, text=True, timeout=600)
    assert res.returncode == 4, res.stderr
    err = res.stderr
    assert "build failed" in err and "k03.cpp" in err          # the failing command
    assert "error:" in err                                     # the compiler's first error
    log_line = next(line for line in err.splitlines() if "full log:" in line)
    assert Path(log_line.split("full log:", 1)[1].strip()).is_file()
    assert "Traceback" not in err


def test_killed_build_leaves_nothing_installed_and_resumes(world, tmp_path):
    out = tmp_path / "out"
    sl = plan_json(world, "--abi", "arm64-v8a", "-j", "1", out=out)["slices"][0]
    log = Path(sl["build_dir"]) / "builder.log"
    argv = [sys.executable, "-m", "builder", "android", "--tag", world["up"].tag, "--mirror", world["up"].mirror,
            "--cache", "none", "--no-aar", "--out", str(out), "--abi", "arm64-v8a", "-j", "1"]
    proc = subprocess.Popen(argv, env=world["env"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if log.is_file() and "[3/" in log.read_text(errors="replace"):
            break
        time.sleep(0.05)
    else:
        proc.kill()
        pytest.fail("build never reached step 3")
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not Path(sl["install_dir"]).exists()
    builder(world, "--abi", "arm64-v8a", "-j", "1", out=out)
    assert elf_machine(Path(sl["install_dir"]) / "lib" / "libpytorch_jni_lite.so") == ABI_ELF["arm64-v8a"]


def test_resumed_multi_abi_build_keeps_the_shared_trees_generated_files(world, tmp_path):
    """The ABIs of one build write the same generated files into the shared work tree (intree): resuming them is
    not "another configuration", so nothing there is deleted and nothing is configured again."""
    from builder.execute import STAMP

    out = tmp_path / "out"
    abi_args = ("--abi", "arm64-v8a", "--abi", "x86_64")
    builder(world, *abi_args, out=out)
    plan = plan_json(world, *abi_args, out=out)
    generated = Path(plan["source"]) / "generated" / "generated.h"
    before = generated.stat().st_mtime_ns
    for sl in plan["slices"]:                         # as if the run had been stopped before either install
        (Path(sl["build_dir"]) / STAMP).unlink()
    configured = {sl["name"]: (Path(sl["build_dir"]) / "build.ninja").stat().st_mtime_ns for sl in plan["slices"]}
    res = builder(world, *abi_args, out=out)
    assert "last built by another configuration" not in res.stderr
    assert generated.stat().st_mtime_ns == before
    for sl in plan["slices"]:                         # not configured again
        assert (Path(sl["build_dir"]) / "build.ninja").stat().st_mtime_ns == configured[sl["name"]], sl["name"]
        assert (Path(sl["build_dir"]) / STAMP).is_file()
