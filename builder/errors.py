"""Typed errors. Library code raises these; only the CLI turns them into exit codes."""
from __future__ import annotations

import difflib
from collections.abc import Iterable


class BuilderError(Exception):
    """Base class. ``exit_code`` is used by the CLI only."""

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message


class UsageError(BuilderError):
    """Bad input from the user: exit 2, no traceback."""

    exit_code = 2


class ValidationErrors(UsageError):
    """Several usage problems found at once (validation reports all of them)."""

    def __init__(self, problems: Iterable[UsageError]) -> None:
        self.problems = tuple(problems)
        super().__init__("; ".join(str(p) for p in self.problems))


class RecipeError(BuilderError):
    """A recipe file is malformed (a bug in builder's data, not the user's input)."""

    exit_code = 3


class ToolchainError(UsageError):
    """A needed tool (NDK, CMake, Ninja, compiler, Xcode) is missing or out of range."""


class SourceError(UsageError):
    """Checkout problems the user can fix: dirty tree, commit mismatch, unreachable repo."""


class BuildFailed(BuilderError):
    """A build step failed. Carries what a person needs to act."""

    exit_code = 4

    def __init__(self, message: str, *, step: str = "", command: str = "",
                 first_errors: tuple[str, ...] = (), log: str = "") -> None:
        super().__init__(message)
        self.step = step
        self.command = command
        self.first_errors = first_errors
        self.log = log


class PackageError(BuilderError):
    """Packaging refused: missing/malformed build folder, inconsistent ABIs."""

    exit_code = 5


class VerifyFailed(BuilderError):
    """A model does not run (or gives wrong numbers) on a build."""

    exit_code = 6


def did_you_mean(word: str, choices: Iterable[str], n: int = 3) -> str:
    """' (did you mean X?)' or '' — for one-line messages."""
    matches = difflib.get_close_matches(word, list(choices), n=n, cutoff=0.5)
    if not matches:
        return ""
    return " (did you mean " + " or ".join(matches) + "?)"
