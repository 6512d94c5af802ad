"""Build keys and the compiler cache depend on what changes the output, not on how a path was spelled or where builder
ran (issue 22 item 2), on mini-torch: `--model` by a relative and an absolute path from two working folders is one
build folder (the second run a no-op); the same build in another folder (at another depth) hits ccache."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fixtures.gitrepos import isolate_git
from tests.fixtures.minitorch import make_minitorch

pytestmark = pytest.mark.integration


def run(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    res = subprocess.run([sys.executable, "-m", "builder", *args], env=env, capture_output=True, text=True,
                         timeout=600, cwd=cwd)
    assert res.returncode == 0, res.stderr
    return res


@pytest.fixture
def mini(tmp_path: Path) -> tuple[list[str], dict[str, str]]:
    up = make_minitorch(tmp_path / "up")
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, **isolate_git(tmp_path / "home"), "BUILDER_RECIPES_DIR": str(up.recipes),
           "BUILDER_CACHE_DIR": str(tmp_path / "cache"), "PYTHONPATH": str(root)}
    return ["host", "--tag", up.tag, "--mirror", up.mirror], env


def test_model_spelled_two_ways_from_two_folders_is_one_build(tmp_path: Path,
                                                              mini: tuple[list[str], dict[str, str]]) -> None:
    import torch

    from tests.fixtures.nets import ConvNet

    base, env = mini
    one, two = tmp_path / "one", tmp_path / "elsewhere" / "two"
    (one / "model").mkdir(parents=True)
    two.mkdir(parents=True)
    torch.jit.script(ConvNet().eval()).save(str(one / "model" / "model.pt"))
    args = [*base, "--cache", "none", "--no-verify", "--out", str(tmp_path / "out")]
    spellings = [(one, "model/model.pt"), (two, str(one / "model" / "model.pt")), (two, "../../one/model/model.pt")]
    plans = [json.loads(run([*args, "--model", m, "--json"], env, cwd).stdout) for cwd, m in spellings]
    assert len({p["slices"][0]["build_dir"] for p in plans}) == 1
    assert len({p["slices"][0]["defines"]["SELECTED_OP_LIST"] for p in plans}) == 1
    run([*args, "--model", "model/model.pt"], env, one)
    again = run([*args, "--model", "../../one/model/model.pt"], env, two)
    assert "up to date" in again.stderr + again.stdout
    assert len(list((tmp_path / "out" / "build").glob("host-*"))) == 1


def test_ops_file_at_two_paths_is_one_key(tmp_path: Path, mini: tuple[list[str], dict[str, str]]) -> None:
    base, env = mini
    a, b = tmp_path / "a.yaml", tmp_path / "b" / "c.yaml"
    b.parent.mkdir()
    a.write_text("# from model x\n- aten::relu\n- aten::conv2d\n")
    b.write_text("- aten::conv2d   # other comments\n- aten::relu\n")
    args = [*base, "--cache", "none", "--out", str(tmp_path / "out"), "--json"]
    keys = {json.loads(run([*args, "--ops", str(p)], env, tmp_path).stdout)["slices"][0]["key"] for p in (a, b)}
    assert len(keys) == 1


@pytest.mark.skipif(shutil.which("ccache") is None, reason="ccache is not installed")
def test_same_build_in_another_folder_hits_ccache(tmp_path: Path, mini: tuple[list[str], dict[str, str]]) -> None:
    base, env = mini
    env = {**env, "CCACHE_DIR": str(tmp_path / "ccache")}       # a private cache: counts are this test's own
    first, second = tmp_path / "w1", tmp_path / "deeper" / "than" / "w2"
    rates = []
    for folder in (first, second):
        folder.mkdir(parents=True)
        out = run([*base, "--cache", "ccache"], env, folder)
        line = next(ln for ln in (out.stdout + out.stderr).splitlines() if "hit rate" in ln)
        hits, total = line.rsplit("(", 1)[1].rstrip(")").split("/")
        rates.append((int(hits), int(total)))
    assert rates[0][0] == 0 and rates[0][1] > 0
    assert rates[1][1] == rates[0][1] and rates[1][0] >= 0.9 * rates[1][1], rates


@pytest.mark.skipif(shutil.which("ccache") is None, reason="ccache is not installed")
def test_selective_build_misses_ccache_where_no_export_changes_the_text(
        tmp_path: Path, mini: tuple[list[str], dict[str, str]]) -> None:
    """v1.13.1 adds -DNO_EXPORT to a static build with a selected op list (CMakeLists.txt:615-617): a -D alone still
    hits ccache (preprocessor mode), but every file whose headers expand the export macro misses. mini-torch: the
    24 kernels and core.cpp include minitorch.h; torch.cpp and jni.c do not."""
    base, env = mini
    env = {**env, "CCACHE_DIR": str(tmp_path / "ccache")}
    ops = tmp_path / "ops.yaml"
    ops.write_text("- aten::relu\n")
    counts = []
    for folder, extra in ((tmp_path / "full", []), (tmp_path / "selective", ["--ops", str(ops)])):
        folder.mkdir()
        out = run([*base, "--cache", "ccache", *extra], env, folder)
        line = next(ln for ln in (out.stdout + out.stderr).splitlines() if "hit rate" in ln)
        hits, total = line.rsplit("(", 1)[1].rstrip(")").split("/")
        counts.append((int(hits), int(total)))
    assert counts[1] == (2, 27), counts
