"""Unit tests never start processes: subprocess is replaced by a function that fails the test."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from packaging.version import Version

from builder.config import Environment
from builder.toolchains import tools


class ProcessForbidden(AssertionError):
    pass


def _forbidden(*args, **kwargs):
    raise ProcessForbidden(f"unit tests may not start processes: {args[:1]}")


@pytest.fixture(autouse=True)
def no_processes(monkeypatch):
    for name in ("Popen", "run", "call", "check_call", "check_output"):
        monkeypatch.setattr(subprocess, name, _forbidden)
    monkeypatch.setattr(os, "system", _forbidden)
    for name in ("execv", "execve", "execvp", "execvpe", "spawnv", "spawnve", "posix_spawn", "posix_spawnp"):
        if hasattr(os, name):
            monkeypatch.setattr(os, name, _forbidden)


FAKE_CMAKE = tools.Tool("cmake", Path("/opt/fake/cmake"), Version("3.27.9"))
FAKE_NINJA = tools.Tool("ninja", Path("/opt/fake/ninja"), Version("1.11.1"))


@pytest.fixture
def fake_tools(monkeypatch):
    """CMake/Ninja discovery without running them (program search runs `--version`)."""
    monkeypatch.setattr(tools, "find_cmake", lambda spec: FAKE_CMAKE)
    monkeypatch.setattr(tools, "find_ninja", lambda spec=None: FAKE_NINJA)
    monkeypatch.setattr(tools, "compiler_identity", lambda environ: "c++ (fake) 12.0 (/usr/bin/c++)")
    monkeypatch.setattr(tools, "find_launcher", lambda choice, environ=None: None if choice in (None, "auto", "none")
                        else Path(f"/usr/bin/{choice}"))
    return FAKE_CMAKE, FAKE_NINJA


@pytest.fixture
def ndk_dir(tmp_path):
    from tests.fixtures.standin_ndk import make_standin_ndk

    return make_standin_ndk(tmp_path / "ndk" / "20.0.5594570", revision="20.0.5594570")


@pytest.fixture
def env(tmp_path, ndk_dir, fake_tools):
    """An Environment with a stand-in NDK (files only) at ANDROID_NDK and a private cache."""
    home = tmp_path / "home"
    home.mkdir()
    work = tmp_path / "work"
    work.mkdir()
    return Environment(environ={"ANDROID_NDK": str(ndk_dir), "BUILDER_CACHE_DIR": str(tmp_path / "cache"),
                                "PATH": "/nonexistent"},
                       home=home, host_os="Linux", cwd=work)
