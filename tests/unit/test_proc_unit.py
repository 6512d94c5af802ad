"""builder.proc's pure parts: how commands print (exactly as they run), dry runs, failure messages."""
from __future__ import annotations

import logging
from pathlib import Path

from builder import proc
from builder.proc import Command, ProcessFailed, Result, TimedOut


def test_render_quotes_and_shows_env_and_folder():
    assert proc.quote(["a b", "c"]) == "'a b' c"
    line = proc.render(["cmake", "-DX=a b"], Path("/w d"), {"B": "2", "A": "x y"})
    assert line == "cd '/w d' && env A='x y' B=2 cmake '-DX=a b'"
    assert proc.render(["ninja"]) == "ninja"


def test_command_prints_its_note_as_a_shell_comment():
    cmd = Command(("git", "init", "-q"), {"LC_ALL": "C"}, None, "if the mirror is missing")
    assert cmd.shell() == "env LC_ALL=C git init -q  # if the mirror is missing"
    assert Command(("ls",)).shell() == "ls"
    assert cmd.to_json() == {"argv": ["git", "init", "-q"], "env": {"LC_ALL": "C"}, "cwd": None,
                             "note": "if the mirror is missing"}


def test_dry_run_logs_and_starts_nothing(caplog):
    with caplog.at_level(logging.DEBUG, logger="builder"):
        result = proc.run(["/nonexistent/tool", "--flag"], env={"K": "v"}, dry_run=True)
    assert result == Result(("/nonexistent/tool", "--flag"), 0)
    assert "$ env K=v /nonexistent/tool --flag" in caplog.text


def test_failure_and_timeout_messages():
    failed = ProcessFailed(Result(("git", "fetch"), 128, "", "one\ntwo\nfatal: no\n"))
    assert str(failed).startswith("command failed (128): git fetch\n") and str(failed).endswith("fatal: no")
    assert failed.result.returncode == 128
    assert str(TimedOut(["adb", "shell", "x"], 2.5)) == "adb shell x did not finish within 2.5 s"
