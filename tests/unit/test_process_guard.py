"""The unit-test guard refuses every way of starting a process, including references taken before the test ran."""
from __future__ import annotations

import contextlib
import os
import subprocess

import pytest

from builder import proc
from tests.unit.conftest import ProcessForbidden

CAPTURED_POPEN = subprocess.Popen      # as a module that imported subprocess's names at import time holds them


def test_popen_through_an_earlier_reference_is_refused():
    with pytest.raises(ProcessForbidden, match="subprocess.Popen"):
        CAPTURED_POPEN(["/nonexistent/true"])


def test_builder_process_helper_is_refused():
    with pytest.raises(ProcessForbidden):
        proc.run(["/nonexistent/true"])
    with pytest.raises(ProcessForbidden):
        proc.stream(["/nonexistent/true"])


def _fork() -> None:
    if os.fork() == 0:      # only if the guard failed: the child leaves at once
        os._exit(0)


# Programs that do not exist: were the guard to fail, these raise something else (the test fails) rather than
# replacing or duplicating the test process.
@pytest.mark.parametrize("start", [
    _fork,
    lambda: os.posix_spawn("/nonexistent/true", ["true"], {}),
    lambda: os.execv("/nonexistent/true", ["true"]),
    lambda: os.system("/nonexistent/true"),
    lambda: os.spawnv(os.P_WAIT, "/nonexistent/true", ["true"]),
], ids=["fork", "posix_spawn", "execv", "system", "spawnv"])
def test_os_level_starts_are_refused(start):
    with pytest.raises(ProcessForbidden):
        start()


def test_not_swallowed_by_except_exception():
    def careless() -> None:
        with contextlib.suppress(Exception):          # what the guard must survive
            subprocess.run(["/nonexistent/true"], check=False)

    with pytest.raises(ProcessForbidden):
        careless()
