"""Golden tests: the configure call in builder's plan carries the settings the release's own script passes.

v1.13.1: compared with the real scripts' configure calls, captured by running scripts/build_android.sh,
build_ios.sh and build_mobile.sh (stored under tests/golden/scripts/v1.13.1, read at commit
49444c3e546bf240bed24a101e747422d1f8a0ee) with a fake cmake: tests/golden/capture.py -> expected/v1.13.1/*.json.
v1.2.0 and v2.1.2: the scripts' text at those tags could not be obtained on this machine (see the recipes' notes);
the plan is compared with the recipe's transcription of them, which the recipes mark as reconstructed.
No processes are started: plans are pure.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from builder.config import BuildRequest, resolve
from builder.plan import plan, render_value
from builder.recipes import load_recipe
from tests.unit.conftest import ProcessForbidden, _forbidden, fake_tools, ndk_dir, no_processes  # noqa: F401

EXPECTED = Path(__file__).parent / "expected"
REQUESTS = {
    "android": {"target": "android", "abis": ("arm64-v8a",)},
    "ios": {"target": "ios", "platforms": ("SIMULATOR",), "arches": ("x86_64",)},
    "host": {"target": "host"},
}


@pytest.fixture
def env(tmp_path, fake_tools):  # noqa: F811
    from builder.config import Environment
    from tests.fixtures.standin_ndk import make_standin_ndk

    ndk = make_standin_ndk(tmp_path / "ndk", revision="21.4.7075529")
    (ndk / "shader-tools" / "linux-x86_64").rename(ndk / "shader-tools" / "darwin-x86_64")   # host_os below
    from tests.fixtures.standin_android import make_java_layout_files

    java = make_java_layout_files(tmp_path)      # the AAR's Java inputs, as placeholder files
    return Environment(environ={"ANDROID_NDK": str(ndk), "BUILDER_CACHE_DIR": str(tmp_path / "cache"),
                                "PATH": "/nonexistent", **java}, home=tmp_path, host_os="Darwin", cwd=tmp_path)


def configure_defines(tag: str, target: str, env) -> tuple[dict[str, str], dict[str, str], list[str]]:
    p = plan(resolve(BuildRequest(tag=tag, **REQUESTS[target]), env))
    step = next(s for s in p.steps if s.kind == "configure")
    defines = {}
    for arg in step.argv():
        if arg.startswith("-D"):
            key, value = arg[2:].split("=", 1)
            defines[key.split(":")[0]] = value
    return defines, dict(step.project.env), list(step.argv())


def normalise(value: str, captured: dict, env, tag: str) -> str:
    """Map the capture's placeholder paths to this plan's paths."""
    ph = captured.get("placeholders", {})
    value = value.replace(ph.get("ndk", "\0"), env.environ["ANDROID_NDK"])
    return value


@pytest.mark.parametrize("target", ["android", "ios", "host"])
def test_v1_13_1_plan_matches_release_script(target, env):
    captured = json.loads((EXPECTED / "v1.13.1" / f"{target}.json").read_text())
    defines, step_env, argv = configure_defines("v1.13.1", target, env)
    ph = captured["placeholders"]
    skip_paths = {"CMAKE_PREFIX_PATH", "PYTHON_EXECUTABLE"}      # this interpreter's paths, not the capture's
    for key, value in captured["defines"].items():
        assert key in defines, f"{captured['script']} passes -D{key}; the plan does not"
        if key in skip_paths:
            continue
        want = value.replace(ph.get("ndk", "\0"), env.environ["ANDROID_NDK"])
        if key == "CMAKE_TOOLCHAIN_FILE" and target == "ios":
            assert defines[key].endswith("/cmake/iOS.cmake")
            continue
        assert defines[key] == want, f"-D{key}: script {want!r}, plan {defines[key]!r}"
    assert defines["CMAKE_BUILD_TYPE"] == captured["build_type"]
    if captured.get("generator"):
        assert argv[argv.index("-G") + 1] == captured["generator"]
    for key, value in captured["env"].items():
        if key.startswith("BUILD_PYTORCH_MOBILE"):
            assert step_env.get(key) == value


@pytest.mark.parametrize("tag", ["v1.2.0", "v2.1.2"])
@pytest.mark.parametrize("target", ["android", "ios", "host"])
def test_plan_carries_recipe_script_settings(tag, target, env):
    recipe = load_recipe(tag)
    if target not in recipe.targets:
        pytest.skip(f"{tag} has no {target} script (see the recipe's notes)")
    defines, _, _ = configure_defines(tag, target, env)
    t = recipe.targets[target]
    for key, value in t.defines.items():
        assert key in defines
        if isinstance(value, bool):
            assert defines[key] == render_value(value), key
        elif "{" not in value:
            assert defines[key] == value or key.endswith("_FLAGS"), key
    assert defines["CMAKE_BUILD_TYPE"] == t.build_type
