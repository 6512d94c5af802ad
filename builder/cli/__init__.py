"""The command line: argv -> settings -> resolve -> plan -> (print | execute). The only package that imports Typer,
prints, or exits. Heavy modules (git, torch) are imported inside commands, so `--help` is fast.

app.py is the frame (app, errors -> exit codes, signals); build.py, models.py, package.py and tools.py hold the
commands and register them on ``app`` when imported here.
"""
from __future__ import annotations

from . import bench, build, models, package, tools  # noqa: F401 - registers the commands
from .app import Terminated, _console, _trap_sigterm, app, fail, guarded

__all__ = ["Terminated", "_console", "_trap_sigterm", "app", "fail", "guarded"]

if __name__ == "__main__":  # pragma: no cover
    app()
