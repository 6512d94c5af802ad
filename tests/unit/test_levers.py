"""Size levers: recipe data, the per-release choice, what reaches the configure line, the _FLAGS append rule."""
from __future__ import annotations

import dataclasses
import tomllib

import pytest

from builder import config as config_mod
from builder import levers
from builder.config import BuildRequest, resolve
from builder.errors import RecipeError, UsageError, ValidationErrors
from builder.plan import merge_lever_defines, plan
from builder.recipes import LEVERS, load_all, load_recipe, parse_recipe

RECIPES = load_all()
ALL_TARGETS = ("android", "ios", "host")


def make(env, **kw):
    kw.setdefault("target", "host")
    kw.setdefault("tag", "v1.13.1")
    return plan(resolve(BuildRequest(**kw), env))


def ops_file(env):
    path = env.cwd / "ops.yaml"
    path.write_text("- aten::conv2d\n- aten::relu\n")
    return path


def traced_file(env):
    path = env.cwd / "traced.yaml"
    path.write_text("include_all_non_op_selectives: true\ninclude_all_operators: false\noperators:\n"
                    "  aten::conv2d: {is_root_operator: true, is_used_for_training: false, include_all_overloads: false}\n"
                    "  aten::convolution: {is_root_operator: false, is_used_for_training: false, include_all_overloads: false}\n")
    return path


# ------------------------------------------------------------------ recipe data

def test_every_recipe_has_levers_and_only_known_ones():
    for r in RECIPES:
        assert r.size_levers, f"{r.tag} has no [size_levers]"
        assert set(r.size_levers) <= set(LEVERS)
        for lv in r.size_levers.values():
            assert lv.description and set(lv.targets) <= set(r.targets)
            if lv.requires_feature:
                assert lv.requires_feature in r.features          # never a lever the release lacks


def test_levers_per_release():
    available = {r.tag: {t: {lv.name for lv in levers.available(r, t)} for t in r.targets} for r in RECIPES}
    link_and_flags = {"gc_sections", "min_size_rel", "force_load_registrations", "strip", "lto"}
    # v1.2.0: no selective build, no lightweight dispatch, no host target
    assert available["v1.2.0"]["android"] == link_and_flags
    assert available["v1.2.0"]["ios"] == {"min_size_rel"}              # iOS builds Release at v1.2.0
    assert "host" not in available["v1.2.0"]
    # v1.10.2: selected ops, still no lightweight dispatch
    assert available["v1.10.2"]["host"] == link_and_flags | {"selected_ops"}
    # v1.13.1 and v2.1.2: everything; iOS gets only what is not ELF-specific (and is already MinSizeRel)
    # traced_ops only where a model was traced and verified on the release (v1.13.1)
    assert available["v1.13.1"]["android"] == set(LEVERS)
    assert available["v1.13.1"]["ios"] == {"selected_ops", "traced_ops", "lightweight_dispatch"}
    assert available["v2.1.2"]["android"] == set(LEVERS) - {"traced_ops"}
    assert available["v2.1.2"]["ios"] == {"selected_ops", "lightweight_dispatch"}
    for r in RECIPES:
        assert ("lightweight_dispatch" in r.size_levers) == ("lightweight_dispatch" in r.features)
        assert ("selected_ops" in r.size_levers) == ("selected_ops" in r.features)


def test_defaults_only_where_verified_and_never_lto():
    v113 = load_recipe("v1.13.1")
    assert {n for n, lv in v113.size_levers.items() if lv.default} >= {"selected_ops", "gc_sections",
                                                                      "min_size_rel", "strip"}
    for r in RECIPES:
        assert not r.size_levers["lto"].default and "IR" in r.size_levers["lto"].notes
        if "lightweight_dispatch" in r.size_levers:
            assert not r.size_levers["lightweight_dispatch"].default
        if r.tag == "v2.6.0":      # verified on the real tree in sessions 9-10, each saying so
            on = {n for n, lv in r.size_levers.items() if lv.default}
            assert on == {"selected_ops", "gc_sections", "min_size_rel", "force_load_registrations", "strip",
                          "traced_ops"}
            assert all("Verified at v2.6.0" in r.size_levers[n].notes for n in on)
        elif r.tag != "v1.13.1":   # nothing is measured elsewhere yet
            assert not any(lv.default for lv in r.size_levers.values()), r.tag


def _recipe_data(tag="v1.13.1"):
    r = load_recipe(tag)
    return tomllib.loads(r.path.read_text()), r.path


@pytest.mark.parametrize("mutate, fragment", [
    (lambda d: d["size_levers"].__setitem__("smaller", {"description": "x", "strip": True}), "unknown size lever"),
    (lambda d: d["size_levers"]["strip"].__setitem__("link", "everything"), "not a link mode"),
    (lambda d: d["size_levers"]["strip"].__setitem__("colour", "red"), "unknown key 'colour'"),
    (lambda d: d["size_levers"]["strip"].__setitem__("default", "yes"), "expected"),
    (lambda d: d["features"].pop("lightweight_dispatch"), "requires feature lightweight_dispatch"),
    (lambda d: d["size_levers"]["gc_sections"].__setitem__("targets", ["android", "ios", "host"]) or
     d["size_levers"]["selected_ops"].__setitem__("targets", ["android", "tv"]), "unknown target tv"),
    (lambda d: d["size_levers"].__setitem__("lto", {"description": "nothing"}), "changes nothing"),
])
def test_bad_lever_data_is_a_recipe_error(mutate, fragment):
    data, path = _recipe_data()
    mutate(data)
    with pytest.raises(RecipeError, match=fragment):
        parse_recipe(data, path)


# ------------------------------------------------------------------ choosing

def test_size_levers_turn_on_the_release_defaults(env):
    v113 = load_recipe("v1.13.1")
    expected = tuple(n for n, lv in v113.size_levers.items() if lv.default and "host" in lv.targets)
    p = make(env, size_levers=True, ops_file=traced_file(env))
    assert p.config.size_levers == expected and "traced_ops" in expected
    assert {"selected_ops", "tracing_based"} <= p.config.features
    assert p.slices[0].defines["TRACING_BASED"] is True


def test_size_levers_with_a_plain_list_skip_traced_ops_with_a_warning(env):
    p = make(env, size_levers=True, ops_file=ops_file(env))
    assert "traced_ops" not in p.config.size_levers and "selected_ops" in p.config.size_levers
    assert "tracing_based" not in p.config.features
    assert any("--trace" in w for w in p.config.warnings)


def test_traced_ops_lever_refuses_a_plain_list(env):
    with pytest.raises(UsageError, match="traced_ops needs a traced op list"):
        make(env, levers=("traced_ops",), ops_file=ops_file(env))


def test_a_tracing_list_turns_tracing_based_on(env):
    p = make(env, ops_file=traced_file(env))
    assert p.slices[0].defines["TRACING_BASED"] is True


def test_a_tracing_list_is_refused_where_the_release_has_no_tracing_build(env):
    with pytest.raises(UsageError, match="v1.10.2 has no tracing-based selective build"):
        make(env, tag="v1.10.2", ops_file=traced_file(env))


def test_tracing_feature_refuses_a_plain_list(env):
    with pytest.raises(UsageError, match="needs a tracing-based op list"):
        make(env, features=("tracing_based",), ops_file=ops_file(env))


def test_size_levers_without_ops_skip_selected_ops_with_a_warning(env):
    p = make(env, size_levers=True)
    assert "selected_ops" not in p.config.size_levers and "selected_ops" not in p.config.features
    assert any("--ops" in w for w in p.config.warnings)
    assert "SELECTED_OP_LIST" not in p.slices[0].defines


def test_no_levers_by_default_leaves_the_plan_alone(env):
    assert make(env).config.size_levers == ()
    assert make(env).slices[0].key == make(env, size_levers=False).slices[0].key


def test_unknown_lever_suggests(env):
    with pytest.raises(UsageError, match="unknown size lever 'gc_section'.*gc_sections"):
        make(env, levers=("gc_section",))


def test_lever_the_release_lacks_names_releases_with_it(env):
    with pytest.raises(UsageError) as info:
        make(env, tag="v1.10.2", levers=("lightweight_dispatch",))
    assert "v1.10.2 has no lightweight_dispatch" in str(info.value)
    assert "v1.12.1" in info.value.hint and "v2.1.2" in info.value.hint and "v1.10.2" not in info.value.hint


def test_lever_not_for_the_target(env):
    with pytest.raises(UsageError, match="not available for ios"):
        make(env, target="ios", levers=("gc_sections",))


def test_explicit_selected_ops_needs_ops(env):
    with pytest.raises(UsageError, match="needs an operator list"):
        make(env, levers=("selected_ops",))


def test_all_lever_problems_at_once(env):
    with pytest.raises(ValidationErrors) as info:
        make(env, tag="v1.10.2", levers=("nope", "lightweight_dispatch"))
    assert len(info.value.problems) == 2


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda r: r.tag)
def test_a_lever_a_release_lacks_is_never_passed(env, recipe):
    """Every lever each release has, for each target: the configure line holds nothing from another release."""
    other_defines = {k for r in RECIPES for n, lv in r.size_levers.items() for k in lv.defines
                     if n not in recipe.size_levers}
    other_features = {lv.requires_feature for r in RECIPES for lv in r.size_levers.values()
                      if lv.requires_feature and lv.requires_feature not in recipe.features}
    feature_defines = {k for r in RECIPES for f in r.features.values() if f.name in other_features for k in f.on}
    for target in recipe.targets:
        names = tuple(lv.name for lv in levers.available(recipe, target))
        p = make(env, tag=recipe.tag, target=target, levers=names, size_levers=True,
                 ops_file=(traced_file(env) if "traced_ops" in names else ops_file(env))
                 if recipe.has("selected_ops", target) else None, abis=(recipe.targets[target].abis[0],) if target == "android" else ())
        assert set(p.config.size_levers) == set(names)
        for sp in p.slices:
            assert not (set(sp.defines) & (other_defines | feature_defines)), (recipe.tag, target)
    assert not (set(load_recipe("v1.10.2").size_levers) & {"lightweight_dispatch"})


def test_lightweight_dispatch_lever_turns_the_feature_on(env):
    sp = make(env, levers=("lightweight_dispatch",)).slices[0]
    assert sp.defines["USE_LIGHTWEIGHT_DISPATCH"] is True and sp.defines["STATIC_DISPATCH_BACKEND"] == "CPU"


# ------------------------------------------------------------------ defines, link spec, plan output

def test_lever_defines_reach_the_configure_line(env):
    base = make(env).slices[0]
    p = make(env, levers=("gc_sections", "min_size_rel", "lto"))
    sp = p.slices[0]
    assert sp.defines["CMAKE_BUILD_TYPE"] == "MinSizeRel" and base.defines["CMAKE_BUILD_TYPE"] == "Release"
    assert sp.defines["CMAKE_CXX_FLAGS"] == "-ffunction-sections -fdata-sections"
    assert sp.defines["CMAKE_INTERPROCEDURAL_OPTIMIZATION"] is True
    configure = next(s for s in p.steps if s.kind == "configure")
    assert "-DCMAKE_C_FLAGS=-ffunction-sections -fdata-sections" in configure.argv()
    assert sp.key != base.key


def test_link_only_levers_do_not_rebuild(env):
    assert make(env, levers=("strip", "force_load_registrations")).slices[0].key == make(env).slices[0].key


def test_user_define_still_wins(env):
    sp = make(env, levers=("gc_sections",), defines=(("CMAKE_CXX_FLAGS", "-O1"),)).slices[0]
    assert sp.defines["CMAKE_CXX_FLAGS"] == "-O1"


def test_flags_append_rule():
    out = {"CMAKE_CXX_FLAGS": "-fobjc-arc", "CMAKE_BUILD_TYPE": "Release", "CMAKE_SHARED_LINKER_FLAGS": ""}
    merge_lever_defines(out, {"CMAKE_CXX_FLAGS": "-ffunction-sections", "CMAKE_C_FLAGS": "-fdata-sections",
                              "CMAKE_BUILD_TYPE": "MinSizeRel", "CMAKE_SHARED_LINKER_FLAGS": "-Wl,--gc-sections"})
    assert out == {"CMAKE_CXX_FLAGS": "-fobjc-arc -ffunction-sections", "CMAKE_C_FLAGS": "-fdata-sections",
                   "CMAKE_BUILD_TYPE": "MinSizeRel", "CMAKE_SHARED_LINKER_FLAGS": "-Wl,--gc-sections"}
    merge_lever_defines(out, {"CMAKE_CXX_FLAGS": "-ffunction-sections"})   # twice: no duplicate
    assert out["CMAKE_CXX_FLAGS"] == "-fobjc-arc -ffunction-sections"


def test_ios_objc_arc_survives_a_flags_lever(env, monkeypatch):
    """A lever with CMAKE_CXX_FLAGS on iOS (made up: no release has one) appends to build_ios.sh's -fobjc-arc."""
    real = load_recipe("v1.13.1")
    gc = dataclasses.replace(real.size_levers["gc_sections"], targets=("android", "ios", "host"))
    fake = dataclasses.replace(real, size_levers={**real.size_levers, "gc_sections": gc})
    monkeypatch.setattr(config_mod.recipes_mod, "load_recipe", lambda tag, directory=None: fake)
    sp = make(env, target="ios", levers=("gc_sections",), platforms=("OS",)).slices[0]
    assert sp.defines["CMAKE_CXX_FLAGS"] == "-fobjc-arc -ffunction-sections -fdata-sections"


def test_link_spec():
    r = load_recipe("v1.13.1")
    assert levers.link_spec(r, ()) == levers.LinkSpec("whole-archive", (), False)
    spec = levers.link_spec(r, ("gc_sections", "force_load_registrations", "strip"))
    assert spec == levers.LinkSpec("registrations", ("-Wl,--gc-sections",), True)
    assert "registrations" in spec.describe() and "debug file kept" in spec.describe()


def test_plan_shows_the_levers(env):
    p = make(env, levers=("gc_sections", "force_load_registrations"))
    assert "# size levers: gc_sections, force_load_registrations (programs linking it: link registrations, " \
           "-Wl,--gc-sections)" in p.to_text()
    data = p.to_json()
    assert data["size_levers"] == ["gc_sections", "force_load_registrations"]
    assert data["link"] == {"mode": "registrations", "flags": ["-Wl,--gc-sections"], "strip": False}


def test_lever_table():
    rows = dict(levers.table(RECIPES))
    assert rows["v1.2.0"]["selected_ops"] == "" and rows["v1.2.0"]["lightweight_dispatch"] == ""
    assert rows["v1.13.1"]["strip"].startswith("default") and rows["v1.13.1"]["lto"].startswith("opt-in")


def test_cli_unknown_lever_is_a_usage_error(env, monkeypatch):
    from typer.testing import CliRunner

    from builder.cli import app

    monkeypatch.setenv("BUILDER_CACHE_DIR", env.environ["BUILDER_CACHE_DIR"])
    monkeypatch.chdir(env.cwd)
    result = CliRunner().invoke(app, ["host", "--tag", "v1.13.1", "--lever", "stirp", "--dry-run"])
    assert result.exit_code == 2
    assert "unknown size lever 'stirp'" in result.output and "strip" in result.output
    ok = CliRunner().invoke(app, ["host", "--tag", "v1.13.1", "--lever", "strip", "--lever", "gc_sections",
                                  "--dry-run"])
    assert ok.exit_code == 0, ok.output
    assert "# size levers: gc_sections, strip" in ok.output
