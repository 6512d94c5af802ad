"""The JDK's tools (javac, java, jar): ``JAVA_HOME/bin`` first, then ``PATH``. One lookup for every command.

Pure apart from looking at files: the caller passes the machine's environment.
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from builder import proc
from builder.errors import ToolchainError

INSTALL_HINT = "install a JDK (e.g. apt-get install default-jdk-headless; 17 works) or set JAVA_HOME"


def find_jdk_tool(name: str, environ: Mapping[str, str]) -> Path | None:
    """``name`` (javac, java, ...) from ``JAVA_HOME/bin``, else from ``PATH``; None when neither has it."""
    home = environ.get("JAVA_HOME")
    if home and (Path(home) / "bin" / name).is_file():
        return Path(home) / "bin" / name
    found = proc.which(name, path=environ.get("PATH", os.defpath))
    return Path(found) if found else None


def require_jdk_tool(name: str, environ: Mapping[str, str], why: str) -> Path:
    """Like :func:`find_jdk_tool`; a ToolchainError naming ``why`` when it is missing."""
    found = find_jdk_tool(name, environ)
    if found is None:
        raise ToolchainError(f"{name} not found ({why})", hint=INSTALL_HINT)
    return found
