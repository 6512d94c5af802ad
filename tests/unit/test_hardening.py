"""Issue 18: states builder writes are complete or repaired, errors are one line and name a fix that exists."""
from __future__ import annotations

from pathlib import Path

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
