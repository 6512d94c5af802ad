"""builder.jni: the JNI project's source view and defines (no processes)."""
from __future__ import annotations

import os
from pathlib import Path

from builder import jni
from builder.recipe_jni import JniSpec

SPEC = JniSpec(project="android/pytorch_android", defines={"ANDROID_STL": "c++_shared",
                                                           "USE_LITE_INTERPRETER_PROFILER": False},
               full_defines={"BUILD_LITE_INTERPRETER": False}, libs_dir="src/main/jniLibs/{abi}",
               include_dir="src/main/cpp/libtorch_include/{abi}", library_lite="pytorch_jni_lite",
               library_full="pytorch_jni", extra_libraries=("fbjni",))


def _tree(root: Path) -> Path:
    files = {"android/pytorch_android/CMakeLists.txt": "project(x)\n",
             "android/pytorch_android/src/main/cpp/pytorch_jni_lite.cpp": "",
             "android/pytorch_android/src/main/cpp/cmake_macros.h.in": "#cmakedefine X\n",
             "android/pytorch_android/src/main/cpp/cmake_macros.h": "stale, generated upstream\n",
             "android/pytorch_android/src/main/java/org/pytorch/Tensor.java": "",
             "android/libs/fbjni/CMakeLists.txt": "", "cmake/VulkanDependencies.cmake": "", "README.md": ""}
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


def test_view_links_this_abis_install_and_never_writes_into_the_tree(tmp_path):
    tree, install = _tree(tmp_path / "tree"), tmp_path / "install"
    project = jni.stage_view(tree, SPEC, "arm64-v8a", install, tmp_path / "b" / "jni" / "view")
    cpp = project / "src/main/cpp"
    assert os.readlink(cpp / "libtorch_include/arm64-v8a") == str(install / "include")
    assert os.readlink(project / "src/main/jniLibs/arm64-v8a") == str(install / "lib")
    assert (project / "CMakeLists.txt").resolve() == tree / "android/pytorch_android/CMakeLists.txt"
    assert not cpp.is_symlink() and not (cpp / "cmake_macros.h").exists()   # configure_file writes it in the view
    assert (cpp / "pytorch_jni_lite.cpp").is_symlink()
    view = project.parent.parent
    assert (view / "android/libs/fbjni").resolve() == tree / "android/libs/fbjni"     # ../libs/fbjni
    assert (view / "cmake").resolve() == tree / "cmake"                               # ../../cmake
    assert not (tree / "android/pytorch_android/src/main/jniLibs").exists()


def test_view_is_rebuilt_whole_for_another_install(tmp_path):
    tree = _tree(tmp_path / "tree")
    view = tmp_path / "jni" / "view"
    jni.stage_view(tree, SPEC, "x86_64", tmp_path / "one", view)
    project = jni.stage_view(tree, SPEC, "x86_64", tmp_path / "two", view)
    assert os.readlink(project / "src/main/jniLibs/x86_64") == str(tmp_path / "two" / "lib")
    assert not view.with_name("view.partial").exists()


def test_defines_follow_build_gradle_and_keep_the_slices_toolchain():
    slice_defines = {"CMAKE_TOOLCHAIN_FILE": "/ndk/build/cmake/android.toolchain.cmake", "ANDROID_ABI": "arm64-v8a",
                     "USE_VULKAN": True, "SELECTED_OP_LIST": "/ops.yaml", "CMAKE_BUILD_TYPE": "Release"}
    toolchain = jni.toolchain_defines(slice_defines)
    assert "USE_VULKAN" not in toolchain and "SELECTED_OP_LIST" not in toolchain
    lite = jni.jni_defines(SPEC, lite=True, abi_defines=toolchain, install_dir=Path("/i"))
    assert lite["ANDROID_STL"] == "c++_shared" and "BUILD_LITE_INTERPRETER" not in lite
    assert lite["CMAKE_INSTALL_PREFIX"] == "/i" and lite["ANDROID_ABI"] == "arm64-v8a"
    full = jni.jni_defines(SPEC, lite=False, abi_defines=toolchain, install_dir=Path("/i"))
    assert full["BUILD_LITE_INTERPRETER"] is False


def test_the_same_view_is_kept_with_what_configure_wrote_into_it(tmp_path):
    tree = _tree(tmp_path / "tree")
    view = tmp_path / "jni" / "view"
    project = jni.stage_view(tree, SPEC, "arm64-v8a", tmp_path / "i", view)
    (project / "src/main/cpp/cmake_macros.h").write_text("#define X 1\n")    # configure_file's output
    again = jni.stage_view(tree, SPEC, "arm64-v8a", tmp_path / "i", view)
    assert (again / "src/main/cpp/cmake_macros.h").read_text() == "#define X 1\n"
    other = jni.stage_view(tree, SPEC, "arm64-v8a", tmp_path / "other", view)
    assert not (other / "src/main/cpp/cmake_macros.h").exists()      # another install: a new view
