"""`builder bench` for real on the stand-in tree: mini-torch built by builder (host, and arm64-v8a with the stand-in
NDK), its binaries/speed_benchmark_torch.cc (a stand-in with the release program's flags and output) compiled
against each install and run: interleaved rows, --json, the caching allocator, threads, --compare, a missing
operator, and the qemu smoke that prints no timing. Opt-in: the release's own program against the torch wheel."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from builder import proc
from builder.models import bench as bm
from builder.models import bench_report as br
from tests.fixtures.gitrepos import isolate_git
from tests.fixtures.minitorch import make_minitorch
from tests.fixtures.standin_ndk import make_standin_ndk

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(proc.which("c++") is None, reason="no C++ compiler")]
REAL_TREE = Path(os.environ.get("BUILDER_REAL_TREE", "/work/real/tree/pytorch-1.13.1"))


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("bench")
    up = make_minitorch(root / "up")
    env = {**os.environ, **isolate_git(root / "home"), "BUILDER_RECIPES_DIR": str(up.recipes),
           "BUILDER_CACHE_DIR": str(root / "cache")}
    out = root / "out"
    run(env, "host", "--tag", up.tag, "--mirror", up.mirror, "--cache", "none", "--out", str(out))
    build = next((out / "build").glob("host-*"))
    return {"root": root, "env": env, "up": up, "out": out, "build": build}


def run(env, *args, check=True) -> subprocess.CompletedProcess[str]:
    res = subprocess.run([sys.executable, "-m", "builder", *args], env=env, capture_output=True, text=True,
                         timeout=900)
    if check and res.returncode != 0:
        raise AssertionError(f"exit {res.returncode}\n{res.stdout}\n{res.stderr}")
    return res


def lite_file(path: Path, payload: bytes = b"x" * 4096) -> Path:
    """A file builder takes for a lite-interpreter model (the stand-in program only reads it)."""
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("m/bytecode.pkl", payload)
        z.writestr("m/data.pkl", b"d")
    return path


def test_bench_runs_the_builds_own_benchmark_interleaved(world, tmp_path):
    model = lite_file(tmp_path / "m.ptl")
    res = run(world["env"], "bench", "--build", str(world["build"]), "--compare", str(world["build"] / "install"),
              "--name", "full", "--name", "again", "--model", str(model), "--shapes", "1x3x16x16",
              "--caching-allocator", "--threads", "1", "--rounds", "2", "--iter", "4", "--warmup", "1", "--json")
    doc = json.loads(res.stdout)
    assert doc["schema"] == br.SCHEMA and (doc["rounds"], doc["iterations"], doc["warmup"]) == (2, 4, 1)
    labels = [r["label"] for r in doc["rows"]]
    assert labels == ["full, 1 thread", "full, caching allocator, 1 thread", "again, 1 thread",
                      "again, caching allocator, 1 thread"]
    for row in doc["rows"]:
        assert row["timed"] and row["ran_on"] == "this machine (native)" and row["lite"]
        assert [len(r) for r in row["iterations_ms"]] == [4, 4]
        assert row["latency_ms"]["n"] == 8 and row["latency_ms"]["min"] >= 0 and row["load_ms"] > 0
        assert row["source"].endswith("binaries/speed_benchmark_torch.cc") and row["stripped_bytes"] > 0
    # a row this short may end before the 10 ms RSS sampler's first look on a loaded machine (then it says None,
    # never a made-up figure); that the sampler finds a real peak is tests/integration/test_proc_timed.py's job
    assert all(r["peak_rss_kib"] is None or r["peak_rss_kib"] > 0 for r in doc["rows"])
    assert doc["rows"][0]["ratio"]["median"] == 1.0
    assert len({r["program"] for r in doc["rows"]}) == 1      # one program for the same install, compiled once
    text = run(world["env"], "bench", "--build", str(world["build"]), "--model", str(model), "--rounds", "1",
               "--iter", "2").stdout
    assert "median ms" in text.splitlines()[1] and text.splitlines()[2].startswith(world["build"].name)


def test_the_program_gets_the_defines_every_library_of_the_build_shares(world):
    subject = bm.subject_for_build(world["build"])
    assert "-DBUILD_LITE_INTERPRETER" in subject.defines and "-DMINITORCH_LITE=1" in subject.defines
    assert "-DCAFFE2_BUILD_MAIN_LIB" not in subject.defines          # torch_cpu's own, not its users'
    assert subject.source.read_text().count("PyTorchObserver") == 1


def test_a_missing_operator_and_bad_options_are_one_line_errors(world, tmp_path):
    model = lite_file(tmp_path / "needs.ptl", b"MISSING_OP")
    res = run(world["env"], "bench", "--build", str(world["build"]), "--model", str(model), "--rounds", "1",
              "--iter", "1", check=False)
    assert res.returncode == 6
    assert "needs operator(s) missing from the build: aten::missing_op" in res.stderr
    bad = run(world["env"], "bench", "--build", str(world["build"]), "--model", str(model), "--rounds", "0",
              "--iter", "0", check=False)
    assert bad.returncode == 2 and "2 problems" in bad.stderr and "Traceback" not in bad.stderr


def test_android_build_under_qemu_is_an_untimed_smoke(world, tmp_path):
    if proc.which("qemu-aarch64-static") is None or proc.which("aarch64-linux-gnu-g++") is None:
        pytest.skip("needs qemu-user-static and the aarch64 cross compiler")
    ndk = make_standin_ndk(world["root"] / "ndk" / "20.0.5594570", revision="20.0.5594570")
    env = {**world["env"], "ANDROID_NDK": str(ndk)}
    env.pop("ANDROID_HOME", None)
    out = tmp_path / "out"
    run(env, "android", "--tag", world["up"].tag, "--mirror", world["up"].mirror, "--cache", "none", "--no-aar",
        "--abi", "arm64-v8a", "--out", str(out))
    build = next((out / "build").glob("android-arm64-v8a-*"))
    model = lite_file(tmp_path / "m.ptl")
    doc = json.loads(run(env, "bench", "--build", str(build), "--model", str(model), "--rounds", "3", "--iter", "2",
                         "--json").stdout)
    (row,) = doc["rows"]
    assert row["timed"] is False and "qemu-aarch64-static" in row["ran_on"]
    assert row["latency_ms"] is None and row["load_ms"] is None and row["iterations_ms"] is None
    text = run(env, "bench", "--build", str(build), "--model", str(model), "--rounds", "1", "--iter", "1").stdout
    assert "smoke ok, untimed" in text


@pytest.mark.skipif(not (REAL_TREE / "binaries/speed_benchmark_torch.cc").is_file(),
                    reason=f"no real PyTorch tree at {REAL_TREE} (set BUILDER_REAL_TREE)")
def test_the_releases_own_program_runs_on_the_torch_wheel(world, tmp_path):
    import torch

    class Net(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv, self.fc = torch.nn.Conv2d(3, 4, 3), torch.nn.Linear(4, 2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.fc(torch.relu(self.conv(x)).mean((2, 3)))

    pt = tmp_path / "net.pt"
    torch.jit.script(Net().eval()).save(str(pt))
    wheel = Path(torch.__file__).parent
    doc = json.loads(run(world["env"], "bench", "--build", str(wheel), "--source", str(REAL_TREE), "--model", str(pt),
                         "--variants", "--shapes", "1x3x16x16", "--torch", "--rounds", "1", "--iter", "3",
                         "--json").stdout)
    variants = [r["variant"] for r in doc["rows"]]
    assert variants[0] == "exported" and "dynamic quantization (Linear)" in variants
    assert "channels_last input" in variants and doc["rows"][-1]["kind"] == "torch"
    assert all(r["latency_ms"]["n"] == 3 for r in doc["rows"])
    assert any("optimize_for_mobile" in n for n in doc["notes"]) or "optimize_for_mobile" in variants
