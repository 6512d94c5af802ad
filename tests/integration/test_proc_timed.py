"""proc.run_timed for real: stdout lines with their arrival times, stderr kept, the process's own peak RSS (not the
parent's, which Linux carries into ru_maxrss across fork/exec), a timeout that kills the process group."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

from builder import proc

pytestmark = pytest.mark.integration

CHILD = ("import sys, time\n"
         "print('loaded', flush=True)\n"
         "time.sleep(0.3)\n"
         "x = bytearray(160 << 20); x[::4096] = b'1' * len(x[::4096])\n"
         "time.sleep(0.1)\n"
         "print('done'); sys.stderr.write('to stderr'); sys.exit(3)\n")


@pytest.mark.skipif(not Path("/proc/self/status").is_file(), reason="needs /proc")
def test_lines_times_and_peak_rss_of_the_process_itself():
    ballast = bytearray(400 << 20)                      # this process is large; the child must not look so
    ballast[::4096] = b"1" * len(ballast[::4096])
    timed = proc.run_timed([sys.executable, "-c", CHILD])
    assert timed.result.returncode == 3 and timed.result.stderr == "to stderr"
    assert [text for _, text in timed.lines] == ["loaded", "done"] and timed.result.stdout == "loaded\ndone\n"
    (t_loaded, _), (t_done, _) = timed.lines
    assert 0 < t_loaded < t_done <= timed.wall_s and t_done - t_loaded >= 0.3
    assert timed.max_rss_kib is not None and 160 << 10 < timed.max_rss_kib < 380 << 10
    del ballast


def test_timeout_kills_and_raises():
    with pytest.raises(proc.TimedOut):
        proc.run_timed([sys.executable, "-c", "import time; time.sleep(30)"], timeout=0.5)
