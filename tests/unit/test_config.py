"""resolve(): precedence, validation of every bad input before any side effect, all problems at once."""
from __future__ import annotations

from pathlib import Path

import pytest

from builder.config import BuildRequest, resolve
from builder.errors import ToolchainError, UsageError, ValidationErrors


def req(**kw) -> BuildRequest:
    kw.setdefault("target", "android")
    kw.setdefault("tag", "v1.13.1")
    return BuildRequest(**kw)


def test_android_defaults_from_recipe(env):
    config = resolve(req(abis=("arm64-v8a",)), env)
    assert [s.abi for s in config.slices] == ["arm64-v8a"]
    assert config.api_level == 21 and config.stl == "c++_shared"
    assert str(config.ndk.revision) == "20.0.5594570"
    assert "lite_interpreter" in config.features
    assert "third_party/pocketfft" in config.submodules and "third_party/gloo" not in config.submodules
    assert not any(p.exists() for p in (env.cwd / "builder-out", Path(env.environ["BUILDER_CACHE_DIR"])))


def test_default_abis_are_the_recipes(env):
    config = resolve(req(), env)
    assert [s.abi for s in config.slices] == ["armeabi-v7a", "arm64-v8a", "x86", "x86_64"]


@pytest.mark.parametrize("tag, fragment", [("v1.13.2", "did you mean v1.13.1"), ("1.13.1", "malformed tag"),
                                           ("v9.9.9", "no recipe for tag")])
def test_bad_tags(env, tag, fragment):
    with pytest.raises(UsageError, match=fragment) as info:
        resolve(req(tag=tag), env)
    assert info.value.exit_code == 2


def test_unknown_abi_suggests(env):
    with pytest.raises(UsageError, match="did you mean arm64-v8a"):
        resolve(req(abis=("arm64-v8",)), env)


def test_duplicate_abi(env):
    with pytest.raises(UsageError, match="given twice"):
        resolve(req(abis=("x86", "x86")), env)


def test_all_problems_at_once(env):
    with pytest.raises(ValidationErrors) as info:
        resolve(req(abis=("arm64", "x86", "x86"), features=("metal",), ops_file=env.cwd / "nope.yaml"), env)
    text = str(info.value)
    assert "unknown ABI" in text and "given twice" in text and "--metal" in text and "nope.yaml" in text
    assert len(info.value.problems) == 4


def test_ndk_not_found(env, tmp_path):
    environ = dict(env.environ)
    del environ["ANDROID_NDK"]
    from dataclasses import replace

    with pytest.raises(ToolchainError, match="no Android NDK found"):
        resolve(req(), replace(env, environ=environ))


def test_ndk_version_not_installed(env):
    with pytest.raises(ToolchainError, match="not installed"):
        resolve(req(ndk="r21e"), env)


def test_not_an_ndk(env, tmp_path):
    folder = tmp_path / "empty"
    folder.mkdir()
    with pytest.raises(UsageError, match="source.properties|not an NDK|NDK"):
        resolve(req(ndk=str(folder)), env)


def test_ndk_outside_supported_range(env, tmp_path):
    from tests.fixtures.standin_ndk import make_standin_ndk

    old = make_standin_ndk(tmp_path / "old", revision="16.1.4479499")
    with pytest.raises(ToolchainError, match="supported"):
        resolve(req(ndk=str(old)), env)
    config = resolve(req(ndk=str(old), force_ndk=True), env)
    assert str(config.ndk.revision) == "16.1.4479499"


def test_ndk_outside_tested_range_warns(env):
    config = resolve(req(), env)
    assert any("tested" in w for w in config.warnings)
    assert any("==19.2.5345600 or ==21.4.7075529" in w for w in config.warnings)


@pytest.mark.parametrize("revision", ["21.4.7075529", "19.2.5345600"])
def test_ndks_pytorch_tested_do_not_warn(env, tmp_path, revision):
    """The README's example (--ndk 21.4.7075529, v1.13.1's instrumented-test NDK) and the default (r19c)."""
    from dataclasses import replace as dc_replace

    from tests.fixtures.standin_ndk import make_standin_ndk

    ndk = make_standin_ndk(tmp_path / "sdk" / "ndk" / revision, revision=revision)
    environ = {k: v for k, v in env.environ.items() if k != "ANDROID_NDK"}
    config = resolve(req(ndk=revision, abis=("arm64-v8a",)),
                     dc_replace(env, environ={**environ, "ANDROID_HOME": str(tmp_path / "sdk")}))
    assert config.ndk.path == ndk
    assert not any("tested" in w for w in config.warnings), config.warnings


def test_ops_file_missing_and_malformed(env):
    with pytest.raises(UsageError, match="not found|does not exist|missing"):
        resolve(req(ops_file=env.cwd / "ops.yaml"), env)
    bad = env.cwd / "bad.yaml"
    bad.write_text("operators: {a: 1}\n")
    with pytest.raises(UsageError):
        resolve(req(ops_file=bad), env)


def test_ops_file_enables_selected_ops(env):
    ops = env.cwd / "ops.yaml"
    ops.write_text("- aten::conv2d\n- aten::relu\n")
    config = resolve(req(ops_file=ops), env)
    assert "selected_ops" in config.features and config.ops_file == ops.resolve()


def test_feature_the_target_lacks(env):
    with pytest.raises(UsageError, match="--metal is not available for android"):
        resolve(req(features=("metal",)), env)
    with pytest.raises(UsageError, match="--vulkan is not available for ios"):
        resolve(req(target="ios", features=("vulkan",)), env)


def test_feature_requires(env):
    with pytest.raises(UsageError, match="vulkan-fp16 needs vulkan"):
        resolve(req(features=("vulkan_fp16",), without=("vulkan",)), env)


def test_ios_on_linux_still_plans(env):
    config = resolve(req(target="ios"), env)
    assert [s.name for s in config.slices] == ["OS-arm64", "SIMULATOR-x86_64", "SIMULATOR-arm64"]
    assert any("macOS" in w for w in config.warnings)


def test_unknown_system_lib(env):
    with pytest.raises(UsageError, match="did you mean xnnpack"):
        resolve(req(system_libs=("xnnpak",)), env)


def test_system_lib_drops_submodule(env):
    config = resolve(req(target="host", system_libs=("xnnpack",)), env)
    assert "third_party/XNNPACK" not in config.submodules


def test_precedence_cli_env_config_file(env):
    from dataclasses import replace

    (env.cwd / "builder.toml").write_text('tag = "v1.13.1"\njobs = 3\n[android]\nabis = ["x86"]\n'
                                          '[defines]\nFOO = "file"\n')
    environ = {**env.environ, "MAX_JOBS": "5"}
    config = resolve(req(tag=None, defines=(("FOO", "cli"),)), replace(env, environ=environ))
    assert config.jobs == 5                      # env beats the config file
    assert [s.abi for s in config.slices] == ["x86"]   # config file beats the recipe
    assert dict(config.user_defines)["FOO"] == "cli"   # CLI beats the config file (last wins)


def test_config_file_unknown_key(env):
    (env.cwd / "builder.toml").write_text('abi = ["x86"]\n')
    with pytest.raises(UsageError, match="did you mean abis"):
        resolve(req(), env)


def test_cache_choice():
    from builder.toolchains.tools import find_launcher

    with pytest.raises(UsageError, match="did you mean sccache"):
        find_launcher("sccach", {})
    assert find_launcher("none", {}) is None
    assert find_launcher("auto", {"PATH": "/nonexistent"}) is None


def test_skip_optional_submodule_only(env):
    config = resolve(req(target="host", skip_submodules=("third_party/pocketfft",)), env)
    assert "third_party/pocketfft" not in config.submodules
    assert any("FFT" in w for w in config.warnings)
    with pytest.raises(UsageError, match="cannot build without it"):
        resolve(req(target="host", skip_submodules=("third_party/fmt",)), env)


def test_install_ndk_plans_the_install_first(env, tmp_path):
    from dataclasses import replace as dc_replace

    from builder.plan import plan

    environ = {k: v for k, v in env.environ.items() if k != "ANDROID_NDK"}
    environ["ANDROID_HOME"] = str(tmp_path / "sdk")
    config = resolve(req(abis=("x86",), ndk="r21e", install_ndk=True), dc_replace(env, environ=environ))
    assert config.ndk_install == "r21e" and config.ndk.path == tmp_path / "sdk" / "ndk" / "21.4.7075529"
    p = plan(config)
    assert p.steps[0].kind == "ndk" and "builder ndk install r21e" in p.steps[0].shell()
    assert not (tmp_path / "sdk").exists()


def test_vulkan_needs_glslc_before_anything_runs(env, tmp_path):
    from dataclasses import replace as dc_replace

    from tests.fixtures.standin_ndk import make_standin_ndk

    bare = make_standin_ndk(tmp_path / "ndk-bare", revision="20.0.5594570", glslc=False)
    bare_env = dc_replace(env, environ={**env.environ, "ANDROID_NDK": str(bare)})
    with pytest.raises(UsageError, match="glslc"):
        resolve(req(abis=("arm64-v8a",), features=("vulkan",)), bare_env)
    with pytest.raises(UsageError, match="glslc"):     # on by default for Android at v1.13.1
        resolve(req(abis=("arm64-v8a",)), bare_env)
    assert "vulkan" not in resolve(req(abis=("arm64-v8a",), without=("vulkan",)), bare_env).features
    ndk = make_standin_ndk(tmp_path / "ndk-glslc", revision="20.0.5594570", glslc=True)
    config = resolve(req(abis=("arm64-v8a",), features=("vulkan",), ndk=str(ndk)),
                     dc_replace(env, environ={**env.environ, "ANDROID_NDK": str(ndk)}))
    assert "vulkan" in config.features


# --- which NDK, and why (printed in the plan) -------------------------------------------------

def _sdk_with_tested_ndk(tmp_path):
    from tests.fixtures.standin_ndk import make_standin_ndk

    sdk = tmp_path / "sdk"
    make_standin_ndk(sdk / "ndk" / "21.4.7075529", revision="21.4.7075529")   # tested by v1.13.1's CI
    return sdk


def test_android_ndk_wins_over_android_home_and_the_plan_says_why(env, tmp_path):
    from dataclasses import replace as dc_replace

    from builder.plan import plan

    sdk = _sdk_with_tested_ndk(tmp_path)
    env = dc_replace(env, environ={**env.environ, "ANDROID_HOME": str(sdk)})
    config = resolve(req(abis=("arm64-v8a",)), env)
    assert config.ndk.path == Path(env.environ["ANDROID_NDK"]) and str(config.ndk.revision) == "20.0.5594570"
    assert config.ndk_reason == "from ANDROID_NDK (no --ndk); 1 other NDK found comes later in the search"
    p = plan(config)
    line = f"# NDK 20.0.5594570 (r20) at {env.environ['ANDROID_NDK']}, from ANDROID_NDK (no --ndk); "
    assert line in p.to_text()
    assert p.to_text().splitlines()[1].startswith("# NDK 20.0.5594570 (r20) at ")
    ndk = p.to_json()["ndk"]
    assert ndk["source"] == "ANDROID_NDK" and ndk["why"] == config.ndk_reason


def test_without_ndk_variables_the_sdk_folder_is_searched(env, tmp_path):
    from dataclasses import replace as dc_replace

    from builder.plan import plan

    sdk = _sdk_with_tested_ndk(tmp_path)
    environ = {k: v for k, v in env.environ.items() if k != "ANDROID_NDK"}
    config = resolve(req(abis=("arm64-v8a",)), dc_replace(env, environ={**environ, "ANDROID_HOME": str(sdk)}))
    assert config.ndk.path == sdk / "ndk" / "21.4.7075529" and not config.warnings
    assert "at " + str(sdk / "ndk" / "21.4.7075529") + ", from ANDROID_HOME/ndk: the only NDK found" in \
        plan(config).to_text()


def test_ndk_option_beats_android_ndk(env, tmp_path):
    from dataclasses import replace as dc_replace

    sdk = _sdk_with_tested_ndk(tmp_path)
    env = dc_replace(env, environ={**env.environ, "ANDROID_HOME": str(sdk)})
    config = resolve(req(abis=("arm64-v8a",), ndk="r21e"), env)
    assert config.ndk.path == sdk / "ndk" / "21.4.7075529"
    assert config.ndk_reason == "--ndk r21e, found in ANDROID_HOME/ndk"


def test_android_ndk_not_an_ndk_is_reported_not_skipped(env, tmp_path):
    from dataclasses import replace as dc_replace

    sdk = _sdk_with_tested_ndk(tmp_path)
    (tmp_path / "stale").mkdir()
    env = dc_replace(env, environ={**env.environ, "ANDROID_HOME": str(sdk), "ANDROID_NDK": str(tmp_path / "stale")})
    with pytest.raises(UsageError, match="ANDROID_NDK=.*stale is set, so it is the NDK to use, but it is not one"):
        resolve(req(abis=("arm64-v8a",)), env)


def test_builder_toml_ndk_comes_after_the_environment(env, tmp_path):
    """README: settings come from the command line, then the environment, then builder.toml."""
    from dataclasses import replace as dc_replace

    sdk = _sdk_with_tested_ndk(tmp_path)
    (env.cwd / "builder.toml").write_text('ndk = "21.4.7075529"\n')
    env = dc_replace(env, environ={**env.environ, "ANDROID_HOME": str(sdk)})
    config = resolve(req(abis=("arm64-v8a",)), env)
    assert config.ndk.source == "ANDROID_NDK"
    assert config.ndk_reason.endswith("; builder.toml's ndk = \"21.4.7075529\" comes after the environment")
    config = resolve(req(abis=("arm64-v8a",)),
                     dc_replace(env, environ={k: v for k, v in env.environ.items() if k != "ANDROID_NDK"}))
    assert config.ndk.path == sdk / "ndk" / "21.4.7075529"
    assert config.ndk_reason == "builder.toml's ndk = 21.4.7075529, found in ANDROID_HOME/ndk"
    assert resolve(req(abis=("arm64-v8a",), ndk="r21e"), env).ndk_reason == "--ndk r21e, found in ANDROID_HOME/ndk"


def test_install_ndk_says_why_and_respects_android_ndk(env, tmp_path):
    from dataclasses import replace as dc_replace

    environ = {k: v for k, v in env.environ.items() if k != "ANDROID_NDK"}
    environ["ANDROID_HOME"] = str(tmp_path / "sdk")
    config = resolve(req(abis=("x86",), install_ndk=True), dc_replace(env, environ=environ))
    assert config.ndk_install == "19.2.5345600" and config.ndk.path == tmp_path / "sdk" / "ndk" / "19.2.5345600"
    assert config.ndk_reason.startswith("v1.13.1's default NDK, not installed: --install-ndk installs it")
    # ANDROID_NDK set to a supported NDK: that one is used, nothing is installed
    config = resolve(req(abis=("x86",), install_ndk=True), dc_replace(env, environ={**environ, **env.environ}))
    assert config.ndk_install is None and config.ndk.source == "ANDROID_NDK"


def test_install_ndk_also_plans_android_jar_when_it_is_missing(env, tmp_path):
    from dataclasses import replace as dc_replace

    from builder.plan import plan

    environ = {k: v for k, v in env.environ.items()
               if k not in ("ANDROID_NDK", "ANDROID_HOME", "ANDROID_SDK_ROOT", "BUILDER_MAVEN_REPO")}
    environ["ANDROID_HOME"] = str(tmp_path / "sdk")
    bare = dc_replace(env, environ=environ, home=tmp_path / "elsewhere")
    with_ndk = dc_replace(bare, environ={**environ, "ANDROID_NDK": env.environ["ANDROID_NDK"]})
    with pytest.raises(UsageError, match="android.jar of API 28") as err:
        resolve(req(abis=("x86",)), with_ndk)
    assert "builder sdk install --tag v1.13.1" in str(err.value) and "--install-ndk downloads it" in str(err.value)
    config = resolve(req(abis=("x86",), ndk="r21e", install_ndk=True), bare)
    assert config.java is not None and config.java.install_api == 28
    assert config.java.android_jar == tmp_path / "sdk" / "platforms" / "android-28" / "android.jar"
    p = plan(config)
    assert [s.kind for s in p.steps[:3]] == ["ndk", "sdk", "maven"]
    assert p.steps[1].shell() == f"builder sdk install --api 28 --sdk {tmp_path / 'sdk'}"
    m2 = tmp_path / "elsewhere" / ".m2" / "repository"     # the jars are in no Maven folder of this home
    assert "download com.facebook.soloader:nativeloader:0.10.4 from https://repo1.maven.org/maven2/" in p.steps[2].shell()
    assert m2 / "com/facebook/soloader/nativeloader/0.10.4/nativeloader-0.10.4.jar" in config.java.jars
    assert not (tmp_path / "sdk").exists()
