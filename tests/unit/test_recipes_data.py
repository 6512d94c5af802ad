"""The recipe files themselves: they load, cite what they were read from, and agree with the golden captures.

The golden JSON under tests/golden/expected/ was produced by tests/golden/capture.py running each release's own
script with a fake cmake; these tests only read it (no process is started).
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from packaging.version import Version

from builder.recipes import FEATURES, TARGETS, Recipe, Target, available_tags, load_all, load_recipe

GOLDEN = Path(__file__).resolve().parents[1] / "golden"
EXPECTED = GOLDEN / "expected"
HEX40 = re.compile(r"\b[0-9a-f]{40}\b")
TAGS = available_tags()

# Which release first has each feature, from the evidence cited in the recipes' notes. A recipe for an earlier
# release must not offer the feature (it would configure an option that does not exist there).
FIRST_RELEASE = {
    "lite_interpreter": "1.9.0", "tracing_based": "1.11.0", "lightweight_dispatch": "1.12.0",
    "coreml": "1.10.0", "metal": "1.7.0", "vulkan": "1.6.0", "selected_ops": "1.4.0",
}
GPU_TARGETS = {"vulkan": {"android", "host"}, "vulkan_fp16": {"android", "host"},
               "vulkan_relaxed": {"android", "host"}, "vulkan_shaderc": {"android", "host"},
               "vulkan_wrapper": {"android", "host"}, "metal": {"ios"}, "coreml": {"ios"}}


def test_the_expected_releases_have_recipes():
    for tag in ("v1.2.0", "v1.4.0", "v1.7.1", "v1.9.0", "v1.10.2", "v1.12.1", "v1.13.1", "v2.0.1", "v2.1.2", "v2.6.0"):
        assert tag in TAGS


@pytest.mark.parametrize("tag", TAGS)
def test_recipe_loads_and_pins_a_commit(tag):
    r = load_recipe(tag)
    assert r.tag == tag and r.version == Version(tag[1:])
    if r.commit_verified:
        assert r.commit and HEX40.fullmatch(r.commit)
        assert r.commit in r.commit_source, "the cited pin must name the commit it pins"
    else:
        assert "not" in r.notes.lower() or r.commit is None


@pytest.mark.parametrize("tag", TAGS)
def test_every_source_cites_a_commit(tag):
    r = load_recipe(tag)
    assert r.sources
    for name, ref in r.sources.items():
        assert HEX40.search(str(ref)) or HEX40.search(name), f"{tag}: [sources] '{name}' cites no commit"


@pytest.mark.parametrize("tag", TAGS)
def test_requirements_are_consistent(tag):
    r = load_recipe(tag)
    if r.ndk_default is not None:
        assert r.ndk_default in r.ndk_supported
    if r.bytecode_min is not None or r.bytecode_max is not None:
        assert r.bytecode_min is not None and r.bytecode_max is not None
        assert 1 <= r.bytecode_min <= r.bytecode_max


@pytest.mark.parametrize("tag", TAGS)
def test_features_and_targets_make_sense(tag):
    r = load_recipe(tag)
    assert set(r.targets) <= set(TARGETS) and "android" in r.targets
    for f in r.features.values():
        assert f.name in FEATURES
        assert f.on, f"{tag}: feature {f.name} turns nothing on"
        for dep in f.requires:
            assert dep in r.features
        if f.name in GPU_TARGETS:
            assert set(f.targets) <= GPU_TARGETS[f.name], f"{tag}: {f.name} on {f.targets}"
    for name, first in FIRST_RELEASE.items():
        if r.version < Version(first):
            assert name not in r.features, f"{tag} offers {name}, which first appears in {first}"
    for t in r.targets.values():
        assert t.build_type in ("Release", "MinSizeRel", "RelWithDebInfo", "Debug")
        for key in t.defines:
            assert key not in ("CMAKE_BUILD_TYPE", "CMAKE_INSTALL_PREFIX"), "builder sets these itself"
        placeholders = {p for v in t.defines.values() if isinstance(v, str) for p in re.findall(r"{(\w+)}", v)}
        assert placeholders <= {"source", "python", "python_purelib", "ndk", "abi", "api_level", "stl",
                                "ios_platform", "ios_arch", "deployment_target", "ops_file"}
        if t.name == "android":
            assert t.abis and set(t.default_abis) <= set(t.abis) and t.api_level
            assert not (t.stl is None and "{stl}" in t.defines.values())
        if t.name == "ios":
            assert t.platforms and set(t.default_platforms) <= set(t.platforms)
            assert "IOS_PLATFORM" in t.slice_defines


@pytest.mark.parametrize("tag", TAGS)
def test_submodules_are_paths_from_gitmodules_style(tag):
    r = load_recipe(tag)
    for t in r.targets.values():
        assert list(t.submodules) == sorted(set(t.submodules)), f"{tag}/{t.name}: keep submodules sorted, unique"
        for p in t.submodules:
            assert p.startswith(("third_party/", "android/libs/")), p
        if t.name != "android":
            assert not any(p.startswith("android/") for p in t.submodules)


@pytest.mark.parametrize("tag", ["v1.13.1", "v2.6.0"])
def test_the_jni_projects_submodules_come_only_with_an_aar(tag):
    r = load_recipe(tag)
    jni = r.targets["android"].jni
    assert jni is not None and jni.submodules == ("android/libs/fbjni",)
    assert "android/libs/fbjni" not in r.submodules_for("android")            # --no-aar: libtorch only
    with_aar = r.submodules_for("android", jni=True)
    assert "android/libs/fbjni" in with_aar and list(with_aar) == sorted(with_aar)
    assert set(with_aar) - set(r.submodules_for("android")) == {"android/libs/fbjni"}


# ---------------------------------------------------------------- golden captures

def _golden_cases():
    for path in sorted(EXPECTED.glob("v*/*.json")):
        yield pytest.param(path.parent.name, path.stem, id=f"{path.parent.name}-{path.stem}")


def _render(value, values: dict[str, str]) -> str:
    if isinstance(value, bool):
        return "ON" if value else "OFF"
    return re.sub(r"{(\w+)}", lambda m: values[m.group(1)], value)


def _enabled_features(recipe: Recipe, inputs: dict[str, str], target: str) -> set[str]:
    enabled = {n for n, f in recipe.features.items() if target in f.default_targets}
    if inputs.get("BUILD_LITE_INTERPRETER") == "0":
        enabled.discard("lite_interpreter")
    return enabled


def recipe_defines(recipe: Recipe, target: Target, golden: dict) -> dict[str, str]:
    """What builder passes for the golden's inputs, minus its own additions (extra_defines)."""
    inputs, ph = golden["inputs"], golden["placeholders"]
    values = {"source": ph["source"], "ndk": ph["ndk"], "python": ph["python"],
              "python_purelib": ph["python_purelib"], "abi": inputs.get("ANDROID_ABI", ""),
              "api_level": str(target.api_level or ""), "stl": target.stl or "",
              "ios_platform": inputs.get("IOS_PLATFORM", ""), "ios_arch": inputs.get("IOS_ARCH", ""),
              "deployment_target": target.deployment_target or ""}
    out: dict = dict(target.defines)
    for cond in target.conditionals:
        if Version(ph["ndk_revision"]) in cond.ndk:
            out.update(cond.defines)
    out.update(target.slice_defines)
    enabled = _enabled_features(recipe, inputs, target.name)
    for name, f in recipe.features.items():
        if target.name in f.targets:
            out.update(f.on if name in enabled else f.off)
    return {k: _render(v, values) for k, v in out.items()}


# Defines builder passes explicitly where the release's script relies on the CMake default (same value).
CMAKE_DEFAULTS = {
    ("v1.13.1", "android", "USE_VULKAN"): "ON",   # CMakeLists.txt:273-277 cmake_dependent_option(... ON "ANDROID" OFF)
    ("v1.13.1", "host", "USE_VULKAN"): "OFF",     # the same option: OFF where ANDROID is not set
    ("v2.6.0", "android", "USE_VULKAN"): "ON",    # CMakeLists.txt:304-306, the same option
    ("v2.6.0", "host", "USE_VULKAN"): "OFF",
}


@pytest.mark.parametrize("tag,target", list(_golden_cases()))
def test_recipe_matches_golden_capture(tag, target):
    golden = json.loads((EXPECTED / tag / f"{target}.json").read_text())
    recipe = load_recipe(tag)
    t = recipe.target(target)
    assert golden["script"] == t.script
    if recipe.commit:
        assert golden["source_commit"] == recipe.commit
    assert golden["build_type"] == t.build_type
    expected = golden["defines"]
    got = recipe_defines(recipe, t, golden)
    missing = {k: v for k, v in expected.items() if k not in got}
    extra = {k: v for k, v in got.items() if k not in expected and CMAKE_DEFAULTS.get((tag, target, k)) != v}
    differ = {k: (got[k], v) for k, v in expected.items() if k in got and got[k] != v}
    assert not (missing or extra or differ), f"missing={missing} extra={extra} differ(recipe, script)={differ}"
    for k, v in t.env.items():
        assert golden["env"].get(k) == v, f"the script runs with {k}={golden['env'].get(k)!r}, recipe says {v!r}"


def test_golden_scripts_are_stored_with_provenance():
    for tag_dir in sorted((GOLDEN / "scripts").iterdir()):
        sources = (tag_dir / "SOURCES.md").read_text()
        for script in tag_dir.glob("*.sh"):
            assert re.search(rf"^\|\s*{re.escape(script.name)}\s*\|\s*[0-9a-f]{{40}}\s*\|", sources, re.M), script
        assert (EXPECTED / tag_dir.name).is_dir(), f"run python tests/golden/capture.py {tag_dir.name}"


def test_capture_parser_last_define_wins():
    import importlib.util
    spec = importlib.util.spec_from_file_location("capture", GOLDEN / "capture.py")
    capture = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(capture)
    parsed = capture.parse_configure(["/src", "-GNinja", "-DA=1", "-DB:BOOL=ON", "-D", "C=x y", "-DA=2"])
    assert parsed == {"source": "/src", "generator": "Ninja", "defines": {"B": "ON", "C": "x y", "A": "2"}}


def test_all_recipes_load_together():
    assert [r.tag for r in load_all()] == list(TAGS)


# --- NDKs ------------------------------------------------------------------------------------

def test_v1_13_1_tested_ndks_are_the_ones_its_ci_used():
    """r19c built libtorch/AAR (.circleci/docker/build.sh), r21e built and ran the instrumented tests
    (.github/workflows/_run_android_tests.yml): both tested, nothing else."""
    r = load_recipe("v1.13.1")
    assert r.ndk_tested.texts() == ["==19.2.5345600", "==21.4.7075529"]
    assert Version("19.2.5345600") in r.ndk_tested and Version("21.4.7075529") in r.ndk_tested
    assert Version("20.0.5594570") not in r.ndk_tested and Version("21.4.7075530") not in r.ndk_tested
    assert str(r.ndk_tested) == "==19.2.5345600 or ==21.4.7075529"
    assert r.ndk_default == "19.2.5345600"
    for cited in (".github/workflows/_run_android_tests.yml", ".circleci/docker/build.sh"):
        assert cited in r.sources


@pytest.mark.parametrize("tag", TAGS)
def test_carried_ndk_data_says_so(tag):
    """A recipe whose NDK facts were not read at its own tag says where they were carried from: a reconstructed
    recipe from v1.13.1; a real-tree recipe whose tree lacks the CI files from a commit its provenance lists."""
    r = load_recipe(tag)
    text = r.path.read_text(encoding="utf-8")
    line = next(ln for ln in text.splitlines() if ln.startswith("ndk_tested"))
    block = text[:text.index(line)].rsplit("\n", 4)[-4:]
    if r.provenance.facts == "reconstructed" and "==" in line:
        assert any("carried from v1.13.1" in ln and "not re-read" in ln for ln in block), tag
    elif r.provenance.from_commits and "==" in line:
        cited = [c for c in r.provenance.from_commits if any(c[:8] in ln for ln in block)]
        assert cited and any("not read at the tag" in ln for ln in block), tag


def _parse_with(tmp_path, tested: str) -> Recipe:
    import tomllib

    from builder.recipes import parse_recipe

    text = load_recipe("v1.13.1").path.read_text(encoding="utf-8")
    start = text.index("ndk_tested = [")
    end = text.index("]\n", start) + 2
    text = text[:start] + f"ndk_tested = {tested}\n" + text[end:]
    return parse_recipe(tomllib.loads(text), tmp_path / "v1.13.1.toml")


def test_ndk_tested_schema(tmp_path):
    from builder.errors import RecipeError

    assert _parse_with(tmp_path, '">=19,<22"').ndk_tested.texts() == ["<22,>=19"]
    one = _parse_with(tmp_path, '["==19.2.5345600"]').ndk_tested
    assert Version("19.2.5345600") in one and len(one) == 1
    for bad, why in (("[]", "non-empty list"), ("[19]", "specifier string"), ('["==19.2", "banana"]', "banana"),
                     ("19", "expected")):
        with pytest.raises(RecipeError, match=why):
            _parse_with(tmp_path, bad)


def test_ndk_default_must_be_a_supported_full_revision(tmp_path):
    import tomllib

    from builder.errors import RecipeError
    from builder.recipes import parse_recipe

    text = load_recipe("v1.13.1").path.read_text(encoding="utf-8")
    for bad in ("r19c", "19.2", "17.2.4988734"):
        changed = text.replace('ndk_default = "19.2.5345600"', f'ndk_default = "{bad}"')
        with pytest.raises(RecipeError, match="ndk_default"):
            parse_recipe(tomllib.loads(changed), tmp_path / "v1.13.1.toml")


def test_recipes_show_lists_every_tested_ndk():
    from builder.recipes import summary

    ndk = summary(load_recipe("v1.13.1"))["ndk"]
    assert ndk == {"supported": ">=18", "tested": ["==19.2.5345600", "==21.4.7075529"], "default": "19.2.5345600"}


# --- provenance ----------------------------------------------------------------------------------

@pytest.mark.parametrize("tag", TAGS)
def test_every_recipe_says_where_its_facts_come_from(tag):
    """Read from the release's real tree (and which copy), or reconstructed (from which commits): data, not prose."""
    p = load_recipe(tag).provenance
    assert p.facts in ("real_tree", "reconstructed") and p.summary
    if p.facts == "real_tree":
        assert p.tree
    else:
        assert p.from_commits and not p.tree and all(HEX40.fullmatch(c) for c in p.from_commits)


def _without(tmp_path, drop: str, replace: tuple[str, str] | None = None):
    import tomllib

    from builder.recipes import parse_recipe
    text = load_recipe("v2.6.0").path.read_text(encoding="utf-8")
    data = tomllib.loads(text if replace is None else text.replace(*replace))
    if drop == "provenance":
        data.pop("provenance")
    else:
        data["provenance"].pop(drop, None)
    return parse_recipe(data, tmp_path / "v2.6.0.toml")


@pytest.mark.parametrize("drop,message", [("provenance", "missing key 'provenance'"), ("facts", "missing key 'facts'"),
                                          ("summary", "missing key 'summary'"),
                                          ("tree", 'facts = "real_tree" needs `tree`')])
def test_a_recipe_without_provenance_is_refused(tmp_path, drop, message):
    from builder.errors import RecipeError
    with pytest.raises(RecipeError, match=re.escape(message)):
        _without(tmp_path, drop)


def test_reconstructed_needs_the_commits_and_no_tree(tmp_path):
    from builder.errors import RecipeError
    with pytest.raises(RecipeError, match="from_commits"):
        _without(tmp_path, "from_commits", ('facts = "real_tree"', 'facts = "reconstructed"'))
    with pytest.raises(RecipeError, match="is not one of real_tree, reconstructed"):
        _without(tmp_path, "nothing", ('facts = "real_tree"', 'facts = "guessed"'))


def test_recipes_list_and_show_carry_provenance():
    from builder.recipes import summary
    assert summary(load_recipe("v2.6.0"))["provenance"]["facts"] == "real_tree"
    assert summary(load_recipe("v2.1.2"))["provenance"]["label"] == "reconstructed"


def test_exactly_one_default_release():
    from builder.recipes import default_tag
    assert [r.tag for r in load_all() if r.default] == [default_tag()]
