"""builder.execute's pure parts: which steps run together, stamps, "configured with", staged installs, failure
summaries, manifests written once. No processes (the unit-test guard would fail the test)."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import get_args

import pytest

from builder import execute
from builder.config import BuildRequest, resolve
from builder.execute import (
    Event,
    RunResult,
    _Run,
    configured_with,
    failure,
    finish_install,
    hit_rate,
    stamp_valid,
    units,
)
from builder.plan import STAMP, plan
from builder.steps import CMakeConfigureStep, CMakeProject, ManifestStep, Step


def make(env, **kw):
    kw.setdefault("target", "android")
    kw.setdefault("tag", "v1.13.1")
    return plan(resolve(BuildRequest(**kw), env))


def project(tmp_path: Path, key: str = "k1") -> CMakeProject:
    build = tmp_path / "build"
    return CMakeProject(name="x86", slice="x86", source_dir=tmp_path / "src", build_dir=build,
                        install_dir=build / "install", key=key, cmake=Path("/opt/cmake"))


def test_units_group_the_checkout_and_each_cmake_project(env):
    p = make(env, abis=("arm64-v8a", "x86"), aar=False)
    groups = list(units(p.steps))
    assert [len(g) for g in groups] == [6, 3, 3, 1]           # fetch, verify, work tree, submodules, 2 patches
    assert {s.kind for s in groups[0]} == {"source"}
    assert [s.kind for s in groups[1]] == ["configure", "build", "install"]
    assert {s.slice for s in groups[1]} == {"arm64-v8a"} and {s.slice for s in groups[2]} == {"x86"}
    assert isinstance(groups[3][0], ManifestStep)
    assert sum(groups, ()) == p.steps


def test_every_step_type_has_a_case_in_execute():
    source = Path(execute.__file__).read_text()
    for kind in get_args(Step):
        for member in get_args(kind) or (kind,):
            assert f"case {member.__name__}()" in source or f"| {member.__name__}()" in source, member


def test_stamp_is_valid_only_for_the_same_key_and_an_install(tmp_path):
    p = project(tmp_path)
    assert not stamp_valid(p)
    (p.staging_dir / "lib").mkdir(parents=True)
    finish_install(p)
    assert (p.install_dir / "lib").is_dir() and not p.staging_dir.exists()
    assert stamp_valid(p)
    assert not stamp_valid(dataclasses.replace(p, key="k2"))
    data = json.loads((p.build_dir / STAMP).read_text())
    assert data["key"] == "k1" and data["slice"] == "x86"


def test_finish_install_replaces_an_older_install(tmp_path):
    p = project(tmp_path)
    (p.install_dir / "old").mkdir(parents=True)
    (p.staging_dir / "new").mkdir(parents=True)
    finish_install(p)
    assert sorted(x.name for x in p.install_dir.iterdir()) == ["new"]
    assert not (p.build_dir / "install.old").exists()


def test_configured_with_needs_the_same_argv_and_a_generated_folder(tmp_path):
    p = project(tmp_path)
    argv = ["/opt/cmake", "-S", "src", "-B", "build"]
    p.build_dir.mkdir()
    (p.build_dir / execute.CONFIGURED).write_text(json.dumps(argv))
    assert not configured_with(p, argv)                       # no CMakeCache.txt / build.ninja yet
    (p.build_dir / "CMakeCache.txt").write_text("")
    (p.build_dir / "build.ninja").write_text("")
    assert configured_with(p, argv)
    assert not configured_with(p, [*argv, "-DX=1"])


def test_failure_names_the_failing_command_and_first_errors(tmp_path):
    tail = ["[1/3] Building x.o", "FAILED: x.o", "/usr/bin/c++ -c x.cpp -o x.o", "x.cpp:1:1: error: boom",
            "ninja: build stopped"]
    exc = failure("build x86", ["cmake", "--build", "b"], 1, tail, tmp_path / "builder.log")
    assert exc.message == "build x86 failed (exit code 1)"
    assert exc.command == "/usr/bin/c++ -c x.cpp -o x.o"
    assert exc.first_errors == ("x.cpp:1:1: error: boom",) and exc.log.endswith("builder.log")
    assert failure("configure", ["cmake", "-S", "a b"], 2, ["CMake Error at x"], tmp_path).command == "cmake -S 'a b'"


def test_hit_rate():
    assert hit_rate(None) == "n/a"
    assert hit_rate({"hits": 0, "misses": 0}) == "no compilations"
    assert hit_rate({"hits": 3, "misses": 1}) == "75% (3/4)"


def test_manifest_step_writes_each_manifest_once(env, tmp_path):
    p = make(env, abis=("x86",), aar=False)
    p = dataclasses.replace(p, config=dataclasses.replace(p.config, source_date_epoch=1_600_000_000))
    step = next(s for s in p.steps if isinstance(s, ManifestStep))
    install = step.artifacts[0].path
    (install / "lib").mkdir(parents=True)
    (install / "lib" / "libtorch_cpu.a").write_bytes(b"!<arch>\n")
    events: list[Event] = []
    result = RunResult()
    _Run(p, events.append, result).unit((step,))
    manifest = json.loads(Path(f"{install}.manifest.json").read_text())
    assert manifest["target"] == "android-x86" and manifest["details"]["key"] == p.slices[0].key
    assert manifest["source_date_epoch"] == 1_600_000_000
    assert [f["path"] for f in manifest["files"]] == ["lib/libtorch_cpu.a"]
    assert result.artifacts == (install,)
    stamp = Path(f"{install}.manifest.json").stat().st_mtime_ns
    _Run(p, events.append, RunResult()).unit((step,))          # same key: not written again
    assert Path(f"{install}.manifest.json").stat().st_mtime_ns == stamp


def test_a_configure_step_is_one_cmake_command(env):
    conf = next(s for s in make(env, abis=("x86",)).steps if isinstance(s, CMakeConfigureStep))
    (command,) = conf.commands()
    assert command.argv == conf.argv() and command.env == conf.project.env
    assert conf.to_json()["shell"] == command.shell()


@pytest.mark.parametrize("target", ["ios", "host"])
def test_ios_cannot_run_here_but_host_can(env, target):
    from builder.errors import ToolchainError

    p = make(env, target=target, **({"platforms": ("SIMULATOR",)} if target == "ios" else {}))
    if target == "ios":
        with pytest.raises(ToolchainError, match="macOS"):
            p.config.target.preflight(p.config)
    else:
        p.config.target.preflight(p.config)
