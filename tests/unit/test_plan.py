"""plan(): pure, exact argv; defines typed and rendered once; build folders keyed by their inputs."""
from __future__ import annotations

import json

from builder.config import BuildRequest, resolve
from builder.plan import plan, render_define


def make(env, **kw):
    kw.setdefault("target", "android")
    kw.setdefault("tag", "v1.13.1")
    return plan(resolve(BuildRequest(**kw), env))


def test_render_define():
    assert render_define("A", True) == "-DA=ON"
    assert render_define("A", False) == "-DA=OFF"
    assert render_define("A", "x y") == "-DA=x y"


def test_android_aar_steps_follow_libtorch(env):
    """Per ABI: the JNI project's view, its configure/build/install, stripped libraries; then classes.jar, the AAR,
    the Maven folder and the manifests (issue 16)."""
    p = make(env, abis=("arm64-v8a", "x86"))
    kinds = [s.kind for s in p.steps]
    per_abi = ["jni", "configure", "build", "install", "package"]
    first_jni = kinds.index("jni")
    assert kinds[first_jni:first_jni + 10] == per_abi * 2
    assert kinds[-4:] == ["java", "package", "package", "package"]
    jni_conf = [s for s in p.steps if s.kind == "configure"][2]
    argv = list(jni_conf.argv())
    assert argv[2].endswith("jni/view/android/pytorch_android") and "-DANDROID_STL=c++_shared" in argv
    assert "-DANDROID_ABI=arm64-v8a" in argv and "-DUSE_VULKAN=ON" not in argv
    aar = p.steps[-3]
    assert aar.dest.name.startswith("pytorch_android_lite-1.13.1-builder.") and aar.dest.suffix == ".aar"
    assert aar.spec.jni_lib == "libpytorch_jni_lite.so" and aar.spec.runtime_libs == ("libfbjni.so",)
    full = make(env, abis=("arm64-v8a",), lite=False)
    java = next(s for s in full.steps if s.kind == "java")
    assert "org/pytorch/LiteModuleLoader.java" in java.exclude and full.steps[-3].spec.jni_lib == "libpytorch_jni.so"
    assert make(env, abis=("x86",), aar=False).steps[-1].kind == "package"


def test_android_plan_steps(env):
    p = make(env, abis=("arm64-v8a", "x86"), aar=False)
    kinds = [s.kind for s in p.steps]
    assert kinds[0] == "source" and kinds[-4:] == ["configure", "build", "install", "package"]
    assert kinds.count("configure") == 2
    conf = next(s for s in p.steps if s.kind == "configure")
    argv = list(conf.argv())
    assert argv[:2] == ["/opt/fake/cmake", "-S"] and "-G" in argv and argv[argv.index("-G") + 1] == "Ninja"
    assert "-DANDROID_ABI=arm64-v8a" in argv
    assert f"-DCMAKE_TOOLCHAIN_FILE={env.environ['ANDROID_NDK']}/build/cmake/android.toolchain.cmake" in argv
    assert "-DANDROID_TOOLCHAIN=clang" in argv and "-DBUILD_LITE_INTERPRETER=ON" in argv
    assert "-DANDROID_NATIVE_API_LEVEL=21" in argv and "-DCMAKE_BUILD_TYPE=Release" in argv
    assert conf.project.env["ANDROID_NDK"] == env.environ["ANDROID_NDK"]


def test_user_define_last_wins(env):
    p = make(env, abis=("x86",), defines=(("BUILD_LITE_INTERPRETER", "OFF"), ("X", "1"), ("X", "2")))
    sp = p.slices[0]
    assert sp.defines["BUILD_LITE_INTERPRETER"] == "OFF" and sp.defines["X"] == "2"


def test_key_changes_with_a_define_only(env):
    a = make(env, abis=("x86",)).slices[0]
    b = make(env, abis=("x86",)).slices[0]
    c = make(env, abis=("x86",), defines=(("USE_XNNPACK", "OFF"),)).slices[0]
    assert a.key == b.key and a.build_dir == b.build_dir
    assert c.key != a.key and c.build_dir != a.build_dir


def test_key_changes_with_op_list_content(env):
    ops = env.cwd / "ops.yaml"
    ops.write_text("- aten::relu\n")
    a = make(env, target="host", ops_file=ops).slices[0]
    ops.write_text("- aten::relu\n- aten::conv2d\n")
    b = make(env, target="host", ops_file=ops).slices[0]
    assert a.key != b.key
    assert b.defines["SELECTED_OP_LIST"] == str(ops.resolve())


def test_host_plan_has_mobile_env_and_extras(env):
    p = make(env, target="host")
    conf = next(s for s in p.steps if s.kind == "configure")
    assert conf.project.env["BUILD_PYTORCH_MOBILE_WITH_HOST_TOOLCHAIN"] == "1"
    assert "-DUSE_KINETO=OFF" in conf.argv() and "-DUSE_LITE_INTERPRETER_PROFILER=OFF" in conf.argv()


def test_ios_slices(env):
    p = make(env, target="ios", platforms=("SIMULATOR",), arches=("x86_64",))
    conf = next(s for s in p.steps if s.kind == "configure")
    assert "-DIOS_PLATFORM=SIMULATOR" in conf.argv() and "-DIOS_ARCH=x86_64" in conf.argv()
    assert any(a.endswith("/cmake/iOS.cmake") for a in conf.argv() if a.startswith("-DCMAKE_TOOLCHAIN_FILE="))
    assert "-DCMAKE_BUILD_TYPE=MinSizeRel" in conf.argv()


def test_16k_pages(env):
    p = make(env, abis=("arm64-v8a",), page_size_16k=True)
    assert p.slices[0].defines["CMAKE_SHARED_LINKER_FLAGS"] == "-Wl,-z,max-page-size=16384"


def test_json_and_text_agree(env):
    p = make(env, abis=("arm64-v8a",))
    data = json.loads(json.dumps(p.to_json()))
    text = p.to_text()
    assert [s["argv"] for s in data["steps"] if s["kind"] == "configure"][0][0] == "/opt/fake/cmake"
    for step in p.steps:
        if step.argv():
            assert step.shell() in text


def test_plan_is_pure(env, tmp_path):
    before = sorted(tmp_path.rglob("*"))
    make(env, abis=("arm64-v8a",))
    assert sorted(tmp_path.rglob("*")) == before


def test_policy_minimum_only_with_cmake4(env, monkeypatch):
    from packaging.version import Version

    from builder.toolchains import tools

    p = make(env, abis=("x86",))
    assert "CMAKE_POLICY_VERSION_MINIMUM" not in p.slices[0].defines
    monkeypatch.setattr(tools, "find_cmake", lambda spec, **kw: tools.Tool("cmake", tools.Path("/c"), Version("4.1.0")))
    p = make(env, abis=("x86",))
    assert p.slices[0].defines["CMAKE_POLICY_VERSION_MINIMUM"] == "3.5"


def test_ccache_shares_entries_across_build_folders_without_changing_the_key(env, monkeypatch):
    from pathlib import Path

    from builder.toolchains import tools

    plain = make(env, target="host").slices[0]
    monkeypatch.setattr(tools, "find_launcher", lambda choice, environ=None: Path("/usr/bin/ccache"))
    cached = make(env, target="host", cache="ccache").slices[0]
    assert cached.env["CCACHE_BASEDIR"] == str(cached.build_dir) and cached.env["CCACHE_NOHASHDIR"] == "1"
    assert "CCACHE_BASEDIR" not in plain.env


def test_key_changes_with_the_host_compiler(env, monkeypatch):
    from builder.toolchains import tools

    a = make(env, target="host").slices[0]
    monkeypatch.setattr(tools, "compiler_identity", lambda environ, **kw: "c++ (other) 13.1 (/usr/bin/c++)")
    b = make(env, target="host").slices[0]
    assert a.key != b.key


def test_tree_key_is_what_all_slices_share(env):
    """intree compares the tree's last configuration by this key: the ABIs of one build share it, a define that
    changes the generated sources changes it, and per-slice values (ABI, install folder) do not enter it."""
    two = make(env, abis=("arm64-v8a", "x86"))
    assert len({s.key for s in two.slices}) == 2
    assert two.tree_key == make(env, abis=("arm64-v8a", "x86")).tree_key
    assert two.tree_key != make(env, abis=("arm64-v8a", "x86"), defines=(("USE_XNNPACK", "OFF"),)).tree_key
    assert two.tree_key == make(env, abis=("x86", "arm64-v8a")).tree_key
