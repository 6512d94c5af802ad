"""Stopping builder stops what it started: SIGTERM (CI timeout, kill, docker stop) and Ctrl-C reach the streamed
command's whole process group, not only builder (found: a killed `builder host` left cmake/ninja running)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import builder

# builder's CLI edge around a streamed command whose child starts a grandchild (like ninja -> compiler).
SCRIPT = textwrap.dedent("""
    import sys
    import typer
    from builder import cli, proc

    GRANDCHILD = "import subprocess; p = subprocess.Popen(['sleep', '300']); print(p.pid, flush=True); p.wait()"

    @cli.guarded
    def body():
        proc.stream([sys.executable, "-c", GRANDCHILD], on_line=lambda line: print(line, flush=True))

    cli._trap_sigterm()
    try:
        body()
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
""")


def _sigint_default() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_signal_to_builder_stops_the_streamed_process_tree(tmp_path, sig, code):
    script = tmp_path / "run.py"
    script.write_text(SCRIPT)
    repo = str(Path(builder.__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [repo, os.environ.get("PYTHONPATH")]))}
    # Started as from a terminal: SIGINT at its default, which a background job (`cmd &` in a script, as CI may
    # start the tests) inherits as ignored, and then Python never raises KeyboardInterrupt.
    runner = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, env=env, preexec_fn=_sigint_default)
    grandchild = None
    try:
        assert runner.stdout is not None
        grandchild = int(runner.stdout.readline())
        assert _alive(grandchild)
        runner.send_signal(sig)  # builder's pid only, as `kill` or a CI runner would
        _out, err = runner.communicate(timeout=30)
        assert runner.returncode == code, err
        assert ("terminated" if sig == signal.SIGTERM else "interrupted") in err
        deadline = time.monotonic() + 10
        while _alive(grandchild) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _alive(grandchild), "the grandchild outlived builder"
    finally:
        runner.kill()
        if grandchild is not None and _alive(grandchild):
            os.kill(grandchild, signal.SIGKILL)
