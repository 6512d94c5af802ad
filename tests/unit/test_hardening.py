"""Issue 18: states builder writes are complete or repaired, errors are one line and name a fix that exists."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from builder import execute


def test_cmake_load_cache_error_is_in_the_failure_summary(tmp_path: Path) -> None:
    failure = execute.failure("build host", ("cmake", "--build", "b"), 1,
                              ["Error: could not find CMAKE_GENERATOR in Cache"], tmp_path / "log")
    assert failure.first_errors == ("Error: could not find CMAKE_GENERATOR in Cache",)


def test_cut_cmake_cache_is_deleted_and_a_complete_one_kept(tmp_path: Path) -> None:
    cache = tmp_path / "CMakeCache.txt"
    whole = "# This is the CMakeCache file.\n//doc\nCMAKE_BUILD_TYPE:STRING=Release\nCMAKE_GENERATOR:INTERNAL=Ninja\n"
    cache.write_text(whole)
    execute._repair_cmake_cache(tmp_path)
    assert cache.read_text() == whole
    cache.write_text(whole[:60])                       # cut inside an entry
    execute._repair_cmake_cache(tmp_path)
    assert not cache.exists()


def test_empty_builder_cache_dir_is_unset(tmp_path: Path) -> None:
    from builder.settings import Environment, Settings, load

    env = Environment({"BUILDER_CACHE_DIR": ""}, tmp_path, "Linux", tmp_path)
    cache = load(Settings(), env).cache_dir
    assert cache is not None and cache.is_absolute() and cache != Path()


def test_full_jit_on_the_command_line_beats_lite_in_builder_toml(env: Any) -> None:
    from builder.config import BuildRequest, resolve

    (env.cwd / "builder.toml").write_text("lite = true\n")
    assert resolve(BuildRequest(target="host", tag="v1.13.1"), env).lite
    assert not resolve(BuildRequest(target="host", tag="v1.13.1", lite=False), env).lite


def test_android_ndk_beats_newer_ndks_in_android_home(env: Any, tmp_path: Path) -> None:
    from dataclasses import replace

    from builder.config import BuildRequest, resolve
    from tests.fixtures.standin_ndk import make_standin_ndk

    sdk = tmp_path / "sdk"
    make_standin_ndk(sdk / "ndk" / "21.4.7075529", revision="21.4.7075529")
    both = replace(env, environ={**env.environ, "ANDROID_HOME": str(sdk)})
    config = resolve(BuildRequest(target="android", tag="v1.13.1", abis=("x86",), aar=False), both)
    assert config.ndk is not None and config.ndk.path == Path(env.environ["ANDROID_NDK"])


def test_install_ndk_does_not_change_the_build_key_after_installing(env: Any, tmp_path: Path) -> None:
    from dataclasses import replace

    from builder.config import BuildRequest, resolve
    from builder.plan import for_installed_ndk, plan
    from tests.fixtures.standin_ndk import make_standin_ndk

    sdk = tmp_path / "sdk"
    environ = {k: v for k, v in env.environ.items() if k != "ANDROID_NDK"}
    fresh = replace(env, environ={**environ, "ANDROID_HOME": str(sdk)})
    request = BuildRequest(target="android", tag="v1.13.1", abis=("x86",), ndk="21.4.7075529", install_ndk=True,
                           aar=False)
    first = plan(resolve(request, fresh))
    assert first.config.ndk_install == "21.4.7075529"
    make_standin_ndk(sdk / "ndk" / "21.4.7075529", revision="21.4.7075529")   # what the ndk step installs
    built = for_installed_ndk(first)
    nxt = plan(resolve(request, fresh))                                        # the next run finds it installed
    assert nxt.config.ndk_install is None
    assert [s.key for s in built.slices] == [s.key for s in nxt.slices]
    assert [s.key for s in first.slices] != [s.key for s in nxt.slices]       # what the fix is for


def test_host_sdk_name_carries_the_configuration(env: Any) -> None:
    from builder.config import BuildRequest, resolve
    from builder.plan import plan
    from builder.steps import HostSdkStep

    one = plan(resolve(BuildRequest(target="host", tag="v1.13.1"), env))
    two = plan(resolve(BuildRequest(target="host", tag="v1.13.1", defines=(("USE_XNNPACK", "OFF"),)), env))
    paths = {one.artifact(one.slices[0]), two.artifact(two.slices[0])}
    assert len(paths) == 2 and all(p.name.endswith(".tar.gz") and "v1.13.1" in p.name for p in paths)
    assert str(one.artifact(one.slices[0])) in next(s.title for s in one.steps if isinstance(s, HostSdkStep))
    assert one.to_json()["slices"][0]["artifact"] == str(one.artifact(one.slices[0]))


def test_sdk_and_manifest_that_disagree_are_not_up_to_date(tmp_path: Path) -> None:
    from builder.package import archive
    from builder.package.manifest import ManifestInputs, build_manifest, manifest_path, write_manifest

    sdk = tmp_path / "libtorch-host-v1-abc.tar.gz"
    archive.write_tar_gz(sdk, [archive.file_entry("libtorch/lib/a.txt", b"one")], source_date_epoch=0)
    write_manifest(build_manifest(ManifestInputs(tag="v1", commit="c" * 40), sdk, details={"key": "k"}),
                   manifest_path(sdk))
    assert execute._up_to_date(sdk, "k") and not execute._up_to_date(sdk, "other")
    # killed between writing another SDK there and its manifest
    archive.write_tar_gz(sdk, [archive.file_entry("libtorch/lib/a.txt", b"two")], source_date_epoch=0)
    assert not execute._up_to_date(sdk, "k")


def test_plain_progress_lines_at_a_steady_interval_without_events() -> None:
    import io
    import threading

    from builder.cli.progress import PlainProgress, interval_from
    from builder.execute import Event

    class Log(io.StringIO):
        def __init__(self) -> None:
            super().__init__()
            self.flushed = threading.Event()
            self.lines = 0

        def flush(self) -> None:
            self.lines += 1
            if self.lines >= 4:
                self.flushed.set()

    log = Log()
    with PlainProgress(log, interval=0.05) as progress:
        progress.on_event(Event("step", "host", "build host"))
        progress.on_event(Event("progress", "host", "build host", 10, 40))
        assert log.flushed.wait(10)      # no more events: the timer keeps writing
    lines = log.getvalue().splitlines()
    assert lines[0].endswith("] host: build host")
    assert "host: build host [10/40] 25% ETA" in lines[-1]
    assert interval_from({"BUILDER_PROGRESS_INTERVAL": "0.2"}) == 0.2 and interval_from({}) == 15.0
