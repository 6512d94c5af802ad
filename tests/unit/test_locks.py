"""builder.locks: one lock helper that says what it waits for, and gives up with a typed error."""
from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

import pytest
from filelock import FileLock

from builder.errors import UsageError
from builder.locks import LockTimeout, locked


def test_free_lock_is_taken_silently_and_released(tmp_path: Path, caplog: pytest.LogCaptureFixture):
    path = tmp_path / "sub" / "x.lock"
    with caplog.at_level(logging.DEBUG, logger="builder"), locked(path, waiting="nobody"):
        assert path.exists()
    assert caplog.records == []
    with FileLock(str(path)).acquire(timeout=0):
        pass


def test_busy_lock_says_what_it_waits_for_then_times_out(tmp_path: Path, caplog: pytest.LogCaptureFixture):
    path = tmp_path / "x.lock"
    with FileLock(str(path)), caplog.at_level(logging.INFO, logger="builder"), \
            pytest.raises(LockTimeout, match=r"timed out after 0\.1 s waiting for the other one") as err, \
            locked(path, waiting="the other one", timeout=0.1, level=logging.WARNING):
        pytest.fail("entered a busy lock")
    assert isinstance(err.value, UsageError) and err.value.hint
    assert [(r.levelno, r.getMessage()) for r in caplog.records] == [
        (logging.WARNING, f"waiting for the other one (lock {path})")]


def test_busy_lock_waits_until_it_is_free(tmp_path: Path):
    path = tmp_path / "x.lock"
    held, release = threading.Event(), threading.Event()
    released_at: list[float] = []

    def hold() -> None:  # another holder (another thread: filelock refuses a same-thread deadlock)
        with FileLock(str(path)):
            held.set()
            release.wait(5)
            released_at.append(time.monotonic())

    thread = threading.Thread(target=hold)
    thread.start()
    held.wait(5)
    threading.Timer(0.2, release.set).start()
    with locked(path, waiting="the holder"):
        assert released_at and time.monotonic() >= released_at[0]
    thread.join()
