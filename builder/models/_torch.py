"""Lazy access to the installed torch, shared by ops, export and verify.

Nothing here imports torch at module import time; ``torch()`` does it on first use.
"""
from __future__ import annotations

import contextlib
import logging
import warnings
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

from builder.errors import UsageError

log = logging.getLogger("builder")

ModelKind = Literal["torchscript", "lite"]


def torch() -> Any:
    """The installed torch module with torch.jit.mobile loaded (UsageError when missing)."""
    try:
        import torch as _torch
        import torch.jit.mobile
    except ImportError as exc:
        raise UsageError(f"this command needs PyTorch in the Python running builder: {exc}",
                         hint="pip install torch") from None
    return _torch


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Silence torch's lite-interpreter deprecation warnings (they are not the user's problem)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", UserWarning)
        yield


MAX_INFLATION = 64 << 20


def model_kind(path: Path) -> ModelKind:
    """'lite' for a lite-interpreter file (bytecode.pkl or flatbuffer), 'torchscript' otherwise."""
    if not path.is_file():
        raise UsageError(f"model file not found: {path}")
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
        names = [i.filename for i in infos]
        inflated = sum(i.file_size for i in infos)
        if inflated > 2 * path.stat().st_size + MAX_INFLATION:   # torch stores model entries uncompressed
            raise UsageError(f"{path} would inflate to {inflated >> 20} MiB from {path.stat().st_size >> 20} MiB: "
                             "not a model torch wrote (a zip bomb?)", hint="pass a model saved by torch")
        if any(n.endswith("/bytecode.pkl") or n == "bytecode.pkl" for n in names):
            return "lite"
        if any(n.endswith("/data.pkl") or n == "data.pkl" for n in names):
            return "torchscript"
        raise UsageError(f"{path} is a zip file but not a TorchScript or lite-interpreter model")
    with open(path, "rb") as handle:
        head = handle.read(8)
    if head[4:8] == b"PTMF":  # flatbuffer mobile format
        return "lite"
    raise UsageError(f"{path} is not a TorchScript (.pt) or lite-interpreter (.ptl) model")


def first_line(exc: BaseException) -> str:
    """The first meaningful line of a (often multi-line, C++-flavoured) torch error."""
    for line in str(exc).splitlines():
        line = line.strip().rstrip(":").strip()
        if line:
            return line[:300]
    return type(exc).__name__


def load_torchscript(path: Path) -> Any:
    t = torch()
    try:
        with quiet():
            return t.jit.load(str(path), map_location="cpu")
    except Exception as exc:  # noqa: BLE001 - torch raises many types (RuntimeError, ValueError, C++ errors)
        raise UsageError(f"cannot load TorchScript model {path}: {first_line(exc)}") from None


def load_lite(path: Path) -> Any:
    t = torch()
    try:
        with quiet():
            return t.jit.mobile._load_for_lite_interpreter(str(path), map_location="cpu")
    except Exception as exc:  # noqa: BLE001 - torch raises many types (RuntimeError, ValueError, C++ errors)
        raise UsageError(f"cannot load lite-interpreter model {path}: {first_line(exc)}") from None
