"""The CLI's frame: the Typer app, the console, turning typed errors into one line and an exit code, signals.
The only place (with the command modules beside it) that prints or exits."""
from __future__ import annotations

import logging
import signal
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, Optional, TypeVar

import typer
from typing_extensions import ParamSpec

from ..errors import BuilderError, BuildFailed, ValidationErrors
from ..settings import Environment, Settings

app = typer.Typer(name="builder", add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Source builds of mobile PyTorch: pinned releases, Android/iOS/host, packages, manifests.")
recipes_app = typer.Typer(help="The releases builder knows.", no_args_is_help=True)
app.add_typer(recipes_app, name="recipes")
ndk_app = typer.Typer(help="Android NDKs: list, install.", no_args_is_help=True)
app.add_typer(ndk_app, name="ndk")
sdk_app = typer.Typer(help="Android SDK platforms (android.jar): install.", no_args_is_help=True)
app.add_typer(sdk_app, name="sdk")

if TYPE_CHECKING:
    from rich.console import Console

log = logging.getLogger("builder")
STATE = {"debug": False}
P = ParamSpec("P")
R = TypeVar("R")


def _console(stderr: bool = False) -> Console:
    from rich.console import Console

    return Console(stderr=stderr, highlight=False, soft_wrap=True)


def fail(exc: BaseException) -> NoReturn:
    """Turn a typed error into one or a few lines and the error's exit code."""
    err = _console(stderr=True)
    if isinstance(exc, ValidationErrors):
        err.print(f"[bold red]error:[/] {len(exc.problems)} problems:")
        for p in exc.problems:
            err.print(f"  - {p}", markup=False)
    elif isinstance(exc, BuildFailed):
        err.print(f"[bold red]build failed:[/] {exc.message}")
        err.print(f"  command: {exc.command}", markup=False)
        for line in exc.first_errors:
            err.print(f"  {line}", markup=False)
        if exc.log:
            err.print(f"  full log: {exc.log}", markup=False)
    else:
        err.print("[bold red]error:[/] ", end="")
        err.print(str(exc), markup=False)
    if STATE["debug"]:
        import traceback

        traceback.print_exception(exc)
    raise typer.Exit(getattr(exc, "exit_code", 1))


def guarded(fn: Callable[P, R]) -> Callable[P, R]:
    """Run a command body; typed errors become messages + exit codes (tracebacks only with --debug)."""
    import functools

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except BuilderError as exc:
            fail(exc)
        except OSError as exc:      # a full disk, a read-only or vanished folder, met while running: one line
            fail(_os_error(exc))
        except KeyboardInterrupt:
            _console(stderr=True).print("interrupted: nothing half-installed; run the same command to resume")
            raise typer.Exit(130) from None
        except Terminated:
            _console(stderr=True).print("terminated: nothing half-installed; run the same command to resume")
            raise typer.Exit(128 + signal.SIGTERM) from None
    return wrapper


def _os_error(exc: OSError) -> BuilderError:
    import errno

    from ..errors import UsageError

    where = f"{exc.filename}: " if exc.filename else ""
    hint = {errno.ENOSPC: "free disk space (or pass --out / set BUILDER_CACHE_DIR on a disk with room)",
            errno.EROFS: "pass a writable folder to --out", errno.EACCES: "check the permissions of that path"}
    return UsageError(f"{where}{exc.strerror or exc}", hint=hint.get(exc.errno or 0, "see the log (--debug)"))


class Terminated(BaseException):
    """SIGTERM (a CI timeout, `kill`, `docker stop`): unwinds like Ctrl-C, so the running command's process group
    is stopped too (proc.stream) instead of being left running without builder."""


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise Terminated()


def _trap_sigterm() -> None:
    import threading

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _on_sigterm)


def _print_version(value: bool) -> None:
    if value:
        import sys

        from .. import __version__

        sys.stdout.write(f"builder {__version__}\n")
        raise typer.Exit()


@app.callback()
def main(debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks and debug logs.")] = False,
         verbose: Annotated[bool, typer.Option("-v", "--verbose", help="More log lines.")] = False,
         version: Annotated[bool, typer.Option("--version", is_eager=True, callback=_print_version,
                                               help="Print builder's version and exit.")] = False) -> None:
    STATE["debug"] = debug
    _trap_sigterm()
    from rich.logging import RichHandler

    level = logging.DEBUG if debug else logging.INFO if verbose else logging.WARNING
    handler = RichHandler(console=_console(stderr=True), show_path=False, show_time=False)
    logging.basicConfig(level=level, handlers=[handler], format="%(message)s")
    log.setLevel(level)


# ------------------------------------------------------------------ the machine and the settings


def machine() -> Environment:
    """The machine this command runs on. The one place builder reads its own environment (os.environ): everything
    below the CLI gets it from here."""
    import os
    import platform

    return Environment(dict(os.environ), Path.home(), platform.system(), Path.cwd())


def settings(**given: Any) -> Settings:
    """A command's settings: what it was given, then the environment, then builder.toml (builder.settings)."""
    from ..settings import load

    return load(Settings(**given), machine())


# ------------------------------------------------------------------ shared option types

Tag = Annotated[Optional[str], typer.Option("--tag", help="PyTorch release tag (see `builder recipes list`; default: the one it marks default).")]
Abi = Annotated[Optional[list[str]], typer.Option("--abi", help="Android ABI (repeatable).")]
Define = Annotated[Optional[list[str]], typer.Option("-D", help="Extra CMake define KEY=VALUE (repeatable, last wins).")]


