"""Unit tests never start processes: an audit hook (sys.addaudithook) refuses every way Python starts one
(subprocess.Popen, os.posix_spawn, os.fork, os.exec*, os.spawn*, os.system), whoever calls it: builder, a library,
a module imported during the test. It cannot be bypassed by importing a module that holds its own reference to
subprocess (as patching subprocess's functions could)."""
from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from packaging.version import Version

from builder.config import Environment
from builder.toolchains import tools


class ProcessForbidden(BaseException):
    """Raised in a unit test that starts a process. A BaseException, so no ``except Exception`` swallows it."""


PROCESS_EVENTS = frozenset({"subprocess.Popen", "os.posix_spawn", "os.fork", "os.forkpty", "os.exec", "os.spawn",
                            "os.system", "pty.spawn"})


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if _GUARD["on"] and event in PROCESS_EVENTS:
        raise ProcessForbidden(f"unit tests may not start processes: {event} {args[:2]!r}")


def _forbidden(*args: Any, **kwargs: Any) -> None:
    raise ProcessForbidden(f"unit tests may not start processes: {args[:1]}")


# Audit hooks cannot be removed: one is installed per interpreter (even if this file is imported twice, under two
# names) and switched on for each unit test.
_GUARD: dict[str, bool] = getattr(sys, "_builder_process_guard", None) or {"on": False}
if not hasattr(sys, "_builder_process_guard"):
    sys._builder_process_guard = _GUARD  # type: ignore[attr-defined]
    sys.addaudithook(_audit)


@pytest.fixture(autouse=True)
def no_processes() -> Iterator[None]:
    _GUARD["on"] = True
    try:
        yield
    finally:
        _GUARD["on"] = False


FAKE_CMAKE = tools.Tool("cmake", Path("/opt/fake/cmake"), Version("3.27.9"))
FAKE_NINJA = tools.Tool("ninja", Path("/opt/fake/ninja"), Version("1.11.1"))


@pytest.fixture
def fake_tools(monkeypatch):
    """CMake/Ninja discovery without running them (program search runs `--version`)."""
    monkeypatch.setattr(tools, "find_cmake", lambda spec, **kw: FAKE_CMAKE)
    monkeypatch.setattr(tools, "find_ninja", lambda spec=None, **kw: FAKE_NINJA)
    monkeypatch.setattr(tools, "compiler_identity", lambda environ, **kw: "c++ (fake) 12.0 (/usr/bin/c++)")
    monkeypatch.setattr(tools, "find_launcher", lambda choice, environ=None: None if choice in (None, "auto", "none")
                        else Path(f"/usr/bin/{choice}"))
    return FAKE_CMAKE, FAKE_NINJA


@pytest.fixture
def ndk_dir(tmp_path):
    from tests.fixtures.standin_ndk import make_standin_ndk

    return make_standin_ndk(tmp_path / "ndk" / "20.0.5594570", revision="20.0.5594570")


@pytest.fixture
def env(tmp_path, ndk_dir, fake_tools):
    """An Environment with a stand-in NDK (files only) at ANDROID_NDK, the AAR's Java inputs as placeholder files
    (tests/fixtures/standin_android.make_java_layout_files) and a private cache."""
    from tests.fixtures.standin_android import make_java_layout_files

    home = tmp_path / "home"
    home.mkdir()
    work = tmp_path / "work"
    work.mkdir()
    java = make_java_layout_files(home)
    return Environment(environ={"ANDROID_NDK": str(ndk_dir), "BUILDER_CACHE_DIR": str(tmp_path / "cache"),
                                "PATH": "/nonexistent", **java},
                       home=home, host_os="Linux", cwd=work)


@pytest.fixture
def cli_env(env, monkeypatch):
    """``env`` made the process's own environment and working folder (for CliRunner invocations)."""
    for key, value in env.environ.items():
        monkeypatch.setenv(key, value)
    monkeypatch.chdir(env.cwd)
    return env
