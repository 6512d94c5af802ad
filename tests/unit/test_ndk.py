"""builder.toolchains.ndk: request parsing, discovery, selection, glslc. No processes started."""
from __future__ import annotations

from pathlib import Path

import pytest
from packaging.specifiers import SpecifierSet
from packaging.version import Version

from builder.errors import ToolchainError, UsageError
from builder.toolchains.ndk import (
    NdkInfo,
    default_sdk_root,
    env_choice,
    explain_choice,
    find_glslc,
    find_ndks,
    glslc,
    inspect_ndk,
    parse_ndk_request,
    parse_revision,
    read_properties,
    release_name,
    scan_ndks,
    select_ndk,
)
from tests.fixtures.standin_ndk import make_broken_ndk, make_properties_only_ndk, make_standin_ndk

SUPPORTED = SpecifierSet(">=21,<28")
TESTED = SpecifierSet(">=21.4,<21.5")


# --- parse_ndk_request ----------------------------------------------------------------------

@pytest.mark.parametrize("text, major, minor", [
    ("r21e", 21, 4), ("21e", 21, 4), ("r21", 21, 0), ("R21B", 21, 1), ("r25c", 25, 2),
    ("21", 21, 0), ("21.4", 21, 4), (" r26d ", 26, 3),
])
def test_release_letters_map_to_minor(text, major, minor):
    req = parse_ndk_request(text)
    assert req.kind == "release"
    assert (req.major, req.minor) == (major, minor)
    assert req.matches(Version(f"{major}.{minor}.123"))
    assert not req.matches(Version(f"{major}.{minor + 1}.123"))


def test_exact_version():
    req = parse_ndk_request("20.0.5594570")
    assert req.kind == "version" and req.version == Version("20.0.5594570")
    assert req.matches(Version("20.0.5594570"))
    assert not req.matches(Version("20.0.5594571"))


def test_beta_requests():
    assert parse_ndk_request("r23-beta2").matches(parse_revision("23.0.7196353-beta2"))
    assert not parse_ndk_request("r23").matches(parse_revision("23.0.7196353-beta2"))
    assert parse_ndk_request("23.0.7196353-beta2").matches(parse_revision("23.0.7196353-beta2"))


@pytest.mark.parametrize("text", ["/opt/ndk", "./ndk", "~/ndk", "../x/y"])
def test_paths(text):
    req = parse_ndk_request(text)
    assert req.kind == "path" and req.path is not None
    assert "~" not in str(req.path)


@pytest.mark.parametrize("text", ["", "latest", "ANY"])
def test_any(text):
    assert parse_ndk_request(text).kind == "any"


@pytest.mark.parametrize("text", ["r", "21ee", "banana", "21.x"])
def test_bad_requests_are_usage_errors(text):
    with pytest.raises(ToolchainError) as err:
        parse_ndk_request(text)
    assert isinstance(err.value, UsageError) and err.value.exit_code == 2
    assert "r21e" in str(err.value)


def test_release_name():
    assert release_name(Version("21.4.7075529")) == "r21e"
    assert release_name(Version("21.0.6113669")) == "r21"
    assert release_name(parse_revision("23.0.7196353-beta2")) == "r23-beta2"


# --- reading one folder ---------------------------------------------------------------------

def test_properties_parsing_and_beta_revision(tmp_path):
    props = read_properties("# c\nPkg.Desc = Android NDK\nPkg.Revision = 26.0.10404224-beta1\n\n")
    assert props["Pkg.Revision"] == "26.0.10404224-beta1"
    assert parse_revision(props["Pkg.Revision"]) == Version("26.0.10404224b1")
    assert parse_revision("25.0.8141415 rc1") == Version("25.0.8141415rc1")
    info = inspect_ndk(make_standin_ndk(tmp_path / "n", "26.0.10404224-beta1"), "test")
    assert info.revision.is_prerelease


def test_properties_only_is_not_an_ndk(tmp_path):
    with pytest.raises(ToolchainError, match="android.toolchain.cmake is missing"):
        inspect_ndk(make_properties_only_ndk(tmp_path / "p"), "ANDROID_NDK")


def test_missing_properties_is_not_an_ndk(tmp_path):
    (tmp_path / "x").mkdir()
    with pytest.raises(ToolchainError, match="is not an NDK: it has no source.properties"):
        inspect_ndk(tmp_path / "x", "ANDROID_NDK")


def test_broken_revision(tmp_path):
    with pytest.raises(ToolchainError, match="not-a-version.*is not a version"):
        inspect_ndk(make_broken_ndk(tmp_path / "b"))
    with pytest.raises(ToolchainError, match="has no Pkg.Revision"):
        inspect_ndk(make_broken_ndk(tmp_path / "c", revision_line="Pkg.Desc = x"))


def test_missing_folder_and_file(tmp_path):
    with pytest.raises(ToolchainError, match="does not exist"):
        inspect_ndk(tmp_path / "nope")
    (tmp_path / "f").write_text("x")
    with pytest.raises(ToolchainError, match="not a folder"):
        inspect_ndk(tmp_path / "f")


# --- find_ndks ------------------------------------------------------------------------------

def _layout(tmp_path: Path) -> tuple[dict[str, str], Path]:
    home = tmp_path / "home"
    env_ndk = make_standin_ndk(tmp_path / "explicit", "25.2.9519653")
    sdk = tmp_path / "sdk"
    make_standin_ndk(sdk / "ndk" / "21.4.7075529", "21.4.7075529")
    make_standin_ndk(sdk / "ndk" / "23.1.7779620", "23.1.7779620")
    make_standin_ndk(sdk / "ndk-bundle", "20.0.5594570")
    make_standin_ndk(home / "Android/Sdk/ndk/22.1.7171670", "22.1.7171670")
    make_standin_ndk(home / "Library/Android/sdk/ndk/19.2.5345600", "19.2.5345600")
    (sdk / "ndk" / ".21.0.partial-xyz").mkdir()          # an unfinished install: ignored
    make_properties_only_ndk(sdk / "ndk" / "24.0.8215888")  # incomplete: rejected with a reason
    env = {"ANDROID_NDK_HOME": str(env_ndk), "ANDROID_HOME": str(sdk), "PATH": "/nonexistent"}
    return env, home


def test_find_order_and_sources(tmp_path):
    env, home = _layout(tmp_path)
    found = find_ndks(env, home)
    assert [str(n.revision) for n in found] == [
        "25.2.9519653", "23.1.7779620", "21.4.7075529", "20.0.5594570", "22.1.7171670", "19.2.5345600"]
    assert [n.source for n in found] == [
        "ANDROID_NDK_HOME", "ANDROID_HOME/ndk", "ANDROID_HOME/ndk", "ANDROID_HOME/ndk-bundle",
        "~/Android/Sdk/ndk", "~/Library/Android/sdk/ndk"]
    scan = scan_ndks(env, home)
    assert [(p.name, why) for p, _, why in scan.rejected if p.name == "24.0.8215888"]
    assert all(".partial" not in str(p) for p, _, _ in scan.rejected)


def test_dedupe_by_realpath(tmp_path):
    env, home = _layout(tmp_path)
    target = Path(env["ANDROID_HOME"]) / "ndk" / "21.4.7075529"
    link = tmp_path / "link-to-21"
    link.symlink_to(target)
    env = dict(env, ANDROID_NDK=str(link), ANDROID_NDK_ROOT=str(target), ANDROID_SDK_ROOT=env["ANDROID_HOME"])
    found = find_ndks(env, home)
    revs = [str(n.revision) for n in found]
    assert revs.count("21.4.7075529") == 1
    assert found[0].source == "ANDROID_NDK" and found[0].path == link


def test_env_var_pointing_at_junk_is_reported(tmp_path):
    (tmp_path / "junk").mkdir()
    scan = scan_ndks({"ANDROID_NDK": str(tmp_path / "junk")}, tmp_path / "home")
    assert scan.found == ()
    assert scan.rejected[0][1] == "ANDROID_NDK" and "no source.properties" in scan.rejected[0][2]
    with pytest.raises(ToolchainError) as err:
        select_ndk(parse_ndk_request("any"), scan.found, SUPPORTED, TESTED, rejected=scan.rejected)
    assert "ANDROID_NDK=" in str(err.value) and "builder ndk install" in str(err.value)


def test_nothing_found(tmp_path):
    assert find_ndks({}, tmp_path) == ()


def test_default_sdk_root(tmp_path):
    assert default_sdk_root({"ANDROID_SDK_ROOT": "/s"}, tmp_path, "Linux") == Path("/s")
    assert default_sdk_root({}, tmp_path, "Linux") == tmp_path / "Android/Sdk"
    assert default_sdk_root({}, tmp_path, "Darwin") == tmp_path / "Library/Android/sdk"


# --- select_ndk -----------------------------------------------------------------------------

def _infos(*revs: str) -> tuple[NdkInfo, ...]:
    return tuple(NdkInfo(Path(f"/sdk/ndk/{r}"), Version(r), "ANDROID_HOME/ndk") for r in revs)


def test_select_prefers_tested_then_supported_then_newest():
    found = _infos("27.2.12479018", "21.4.7075529", "25.2.9519653")
    chosen, warnings = select_ndk(parse_ndk_request("latest"), found, SUPPORTED, TESTED, False)
    assert str(chosen.revision) == "21.4.7075529" and warnings == ()
    chosen, warnings = select_ndk(parse_ndk_request("latest"), found[:1] + found[2:], SUPPORTED, TESTED)
    assert str(chosen.revision) == "27.2.12479018"
    assert len(warnings) == 1 and "not been tested" in warnings[0] and "r27c" in warnings[0]


def test_select_requested_version():
    found = _infos("21.4.7075529", "25.2.9519653")
    chosen, warnings = select_ndk(parse_ndk_request("r25c"), found, SUPPORTED, TESTED)
    assert str(chosen.revision) == "25.2.9519653" and "not been tested" in warnings[0]


def test_requested_version_missing_lists_found_and_suggests_install():
    found = _infos("21.4.7075529", "25.2.9519653")
    with pytest.raises(ToolchainError) as err:
        select_ndk(parse_ndk_request("r26d"), found, SUPPORTED, TESTED)
    text = str(err.value)
    assert "r26d" in text and "21.4.7075529" in text and "25.2.9519653" in text
    assert "builder ndk install r26d" in text


def test_outside_supported_names_range_and_every_ndk():
    found = _infos("19.2.5345600", "28.0.12433566", "21.4.7075529")
    with pytest.raises(ToolchainError) as err:
        select_ndk(parse_ndk_request("r28"), found, SUPPORTED, TESTED)
    text = str(err.value)
    assert "<28,>=21" in text or ">=21,<28" in text
    for rev in ("19.2.5345600", "28.0.12433566", "21.4.7075529"):
        assert rev in text
    assert "--force" in text
    assert err.value.exit_code == 2


def test_force_turns_unsupported_into_warning():
    found = _infos("19.2.5345600")
    chosen, warnings = select_ndk(parse_ndk_request("any"), found, SUPPORTED, TESTED, force=True)
    assert str(chosen.revision) == "19.2.5345600"
    assert any("--force" in w for w in warnings) and any("not been tested" in w for w in warnings)


def test_select_by_path(tmp_path):
    ndk = make_standin_ndk(tmp_path / "my ndk", "21.4.7075529")
    chosen, warnings = select_ndk(parse_ndk_request(str(ndk)), (), SUPPORTED, TESTED)
    assert chosen.path == ndk and chosen.source == "path" and warnings == ()
    with pytest.raises(ToolchainError, match="is not an NDK"):
        select_ndk(parse_ndk_request(str(tmp_path)), (), SUPPORTED, TESTED)


def test_beta_counts_inside_a_range():
    found = (NdkInfo(Path("/b"), parse_revision("23.0.7196353-beta2"), "x"),)
    chosen, _ = select_ndk(parse_ndk_request("r23-beta2"), found, SUPPORTED, TESTED)
    assert chosen.revision.is_prerelease


# --- precedence: --ndk > ANDROID_NDK > ANDROID_NDK_HOME > ANDROID_NDK_ROOT > SDK folders ------------------------

def _precedence_layout(tmp_path: Path) -> tuple[dict[str, str], Path]:
    """An NDK behind each variable, and a tested, newer NDK in the SDK folder that used to win over all of them."""
    home = tmp_path / "home"
    sdk = tmp_path / "sdk"
    make_standin_ndk(sdk / "ndk" / "21.4.7075529", "21.4.7075529")      # tested (TESTED), newest supported
    make_standin_ndk(sdk / "ndk" / "22.1.7171670", "22.1.7171670")
    env = {"ANDROID_NDK": str(make_standin_ndk(tmp_path / "a", "23.1.7779620")),
           "ANDROID_NDK_HOME": str(make_standin_ndk(tmp_path / "b", "24.0.8215888")),
           "ANDROID_NDK_ROOT": str(make_standin_ndk(tmp_path / "c", "25.2.9519653")),
           "ANDROID_HOME": str(sdk), "PATH": "/nonexistent"}
    return env, home


def _choose(env, home, text="any", force=False):
    scan = scan_ndks(env, home)
    ask = parse_ndk_request(text)
    chosen, warnings = select_ndk(ask, scan.found, SUPPORTED, TESTED, force, rejected=scan.rejected)
    return chosen, warnings, explain_choice(ask, chosen, scan.found, SUPPORTED, TESTED)


@pytest.mark.parametrize("unset, want, source", [
    ((), "23.1.7779620", "ANDROID_NDK"),
    (("ANDROID_NDK",), "24.0.8215888", "ANDROID_NDK_HOME"),
    (("ANDROID_NDK", "ANDROID_NDK_HOME"), "25.2.9519653", "ANDROID_NDK_ROOT"),
    (("ANDROID_NDK", "ANDROID_NDK_HOME", "ANDROID_NDK_ROOT"), "21.4.7075529", "ANDROID_HOME/ndk"),
])
def test_ndk_env_precedence(tmp_path, unset, want, source):
    env, home = _precedence_layout(tmp_path)
    env = {k: v for k, v in env.items() if k not in unset}
    chosen, warnings, why = _choose(env, home)
    assert (str(chosen.revision), chosen.source) == (want, source)
    if source.startswith("ANDROID_NDK"):
        # the variable wins although ANDROID_HOME holds a tested NDK: untested is a warning, not a reason to skip it
        assert any("not been tested" in w for w in warnings)
        others = 4 - len(unset)         # the other variables' NDKs that are set, and the SDK folder's two
        assert why.startswith(f"from {source} (no --ndk") and f"; {others} other NDKs found come later" in why
        for earlier in unset:
            assert f"no {earlier}" in why
    else:
        assert warnings == ()
        assert why == ("from ANDROID_HOME/ndk: the newest the recipe tested, of 2 found (no --ndk, ANDROID_NDK, "
                       "ANDROID_NDK_HOME, ANDROID_NDK_ROOT unset)")


def test_android_ndk_is_not_ignored_when_android_home_holds_ndks(tmp_path):
    """The bug: ANDROID_NDK was silently passed over for a tested NDK under ANDROID_HOME."""
    sdk = tmp_path / "sdk"
    make_standin_ndk(sdk / "ndk" / "21.4.7075529", "21.4.7075529")
    mine = make_standin_ndk(tmp_path / "my-ndk", "22.1.7171670")
    chosen, _, why = _choose({"ANDROID_NDK": str(mine), "ANDROID_HOME": str(sdk)}, tmp_path / "home")
    assert chosen.path == mine and chosen.source == "ANDROID_NDK"
    assert why == "from ANDROID_NDK (no --ndk); 1 other NDK found comes later in the search"


def test_ndk_option_beats_the_environment(tmp_path):
    env, home = _precedence_layout(tmp_path)
    chosen, warnings, why = _choose(env, home, "21.4.7075529")
    assert chosen.source == "ANDROID_HOME/ndk" and warnings == ()
    assert why == "--ndk 21.4.7075529, found in ANDROID_HOME/ndk"
    path = make_standin_ndk(tmp_path / "elsewhere", "22.1.7171670")
    chosen, _, why = _choose(env, home, str(path))
    assert chosen.path == path and why == f"--ndk {path}"


def test_ndk_option_version_prefers_the_environments_copy(tmp_path):
    """Two copies of the requested version: the one earlier in the search (the variable's) is used."""
    env, home = _precedence_layout(tmp_path)
    env["ANDROID_NDK"] = str(make_standin_ndk(tmp_path / "mine-21", "21.4.7075529"))
    chosen, _, why = _choose(env, home, "r21e")
    assert chosen.source == "ANDROID_NDK" and why == "--ndk r21e, found in ANDROID_NDK"


@pytest.mark.parametrize("var", ["ANDROID_NDK", "ANDROID_NDK_HOME"])
def test_a_set_variable_that_is_not_an_ndk_is_an_error_not_skipped(tmp_path, var):
    env, home = _precedence_layout(tmp_path)
    (tmp_path / "junk").mkdir()
    env[var] = str(tmp_path / "junk")
    if var == "ANDROID_NDK_HOME":
        del env["ANDROID_NDK"]
    scan = scan_ndks(env, home)
    assert env_choice(scan.found, scan.rejected)[1] == var
    with pytest.raises(ToolchainError) as err:
        _choose(env, home)
    text = str(err.value)
    assert f"{var}={tmp_path / 'junk'}" in text and "no source.properties" in text
    assert "unset it" in text and "--ndk" in text and "builder ndk install" in text
    assert _choose(env, home, "r21e")[0].source == "ANDROID_HOME/ndk"     # --ndk still chooses


def test_a_variable_outside_the_supported_range_is_an_error_naming_it(tmp_path):
    env, home = _precedence_layout(tmp_path)
    env["ANDROID_NDK"] = str(make_standin_ndk(tmp_path / "old", "19.2.5345600"))
    with pytest.raises(ToolchainError) as err:
        _choose(env, home)
    text = str(err.value)
    assert "(from ANDROID_NDK) is outside the supported range" in text and "--ndk VERSION" in text
    chosen, warnings, _ = _choose(env, home, force=True)
    assert str(chosen.revision) == "19.2.5345600" and any("--force" in w for w in warnings)


def test_no_variable_set_means_no_env_choice(tmp_path):
    env, home = _precedence_layout(tmp_path)
    for var in ("ANDROID_NDK", "ANDROID_NDK_HOME", "ANDROID_NDK_ROOT"):
        env[var] = ""                                  # set but empty counts as unset
    scan = scan_ndks(env, home)
    assert env_choice(scan.found, scan.rejected) is None
    assert _choose(env, home)[0].source == "ANDROID_HOME/ndk"


def test_explain_single_and_untested(tmp_path):
    sdk = tmp_path / "sdk"
    make_standin_ndk(sdk / "ndk" / "25.2.9519653", "25.2.9519653")
    env = {"ANDROID_HOME": str(sdk)}
    assert "the only NDK found" in _choose(env, tmp_path / "h")[2]
    make_standin_ndk(sdk / "ndk" / "22.1.7171670", "22.1.7171670")
    assert "the newest supported (none tested), of 2 found" in _choose(env, tmp_path / "h")[2]


# --- glslc ----------------------------------------------------------------------------------

def test_glslc_from_ndk_shader_tools(tmp_path):
    ndk = make_standin_ndk(tmp_path / "n", glslc=True)
    info = inspect_ndk(ndk)
    assert find_glslc(info, env={"PATH": ""}) == ndk / "shader-tools/linux-x86_64/glslc"


def test_glslc_from_path_then_error(tmp_path):
    ndk = make_standin_ndk(tmp_path / "n", glslc=False)
    bindir = tmp_path / "bin"
    bindir.mkdir()
    exe = bindir / "glslc"
    exe.write_text("#!/bin/sh\n")
    exe.chmod(0o755)
    assert find_glslc(ndk, env={"PATH": str(bindir)}) == exe
    assert find_glslc(ndk, env={}) is None
    with pytest.raises(ToolchainError, match="shader-tools/linux-x86_64 or PATH"):
        glslc(ndk, env={"PATH": str(tmp_path / "empty")})
