"""TorchScript model -> (optimize_for_mobile) -> lite-interpreter file a release can load.

The installed torch writes its own bytecode version (torch 2.13: v8). When that is newer than the
target release reads (``ExportTarget.bytecode_max``: the recipe's [runtime], read from the release's
``caffe2/serialize/versions.h`` kMaxSupportedBytecodeVersion),
the file is backported with ``torch.jit.mobile._backport_for_mobile``.
Outputs are written to a temp file next to the destination and renamed into place.
"""
from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from builder import atomic
from builder.errors import UsageError, did_you_mean
from builder.models import _torch

log = logging.getLogger("builder")

# builder's backend names -> optimize_for_mobile(backend=...)
BACKENDS: dict[str, str] = {"cpu": "CPU", "vulkan": "Vulkan", "metal": "Metal"}


@dataclass(frozen=True)
class ExportTarget:
    """What the target release reads (recipe facts)."""

    bytecode_max: int
    backends: frozenset[str] = frozenset({"cpu"})
    bytecode_min: int = 4

    @classmethod
    def for_release(cls, recipe: Any, backends: frozenset[str] = frozenset({"cpu"})) -> ExportTarget:
        """The bytecode range a release's recipe says its runtime reads (4 where the recipe is silent)."""
        return cls(recipe.bytecode_max or 4, backends, recipe.bytecode_min or 4)


@dataclass(frozen=True)
class BytecodeLimits:
    """caffe2/serialize/versions.h of a release."""

    min_supported: int
    max_supported: int
    produced: int


@dataclass(frozen=True)
class ExportResult:
    output: Path
    bytecode_version: int          # of the file written
    torch_bytecode_version: int    # what the installed torch produced before any backport
    optimized: bool
    backend: str
    torch_version: str
    ops: tuple[str, ...]
    not_optimized: str = ""        # why optimize_for_mobile was left out when it was not asked for explicitly

    @property
    def backported(self) -> bool:
        return self.bytecode_version != self.torch_bytecode_version


def read_bytecode_limits(checkout: Path) -> BytecodeLimits:
    """Parse kMin/kMaxSupportedBytecodeVersion and kProducedBytecodeVersion from a checkout."""
    path = checkout / "caffe2/serialize/versions.h"
    if not path.is_file():
        raise UsageError(f"not a PyTorch checkout: {path} is missing")
    text = path.read_text(encoding="utf-8")

    def value(name: str) -> int:
        match = re.search(rf"\b{name}\s*=\s*(0x[0-9A-Fa-f]+|\d+)L?\b", text)
        if match is None:
            raise UsageError(f"{path}: {name} not found")
        return int(match.group(1), 0)

    return BytecodeLimits(value("kMinSupportedBytecodeVersion"), value("kMaxSupportedBytecodeVersion"),
                          value("kProducedBytecodeVersion"))


def bytecode_version(model: Path) -> int:
    """Bytecode version of a lite-interpreter file."""
    t = _torch.torch()
    try:
        with _torch.quiet():
            return int(t.jit.mobile._get_model_bytecode_version(str(model)))
    except Exception as exc:  # noqa: BLE001 - torch raises many types (RuntimeError, ValueError, C++ errors)
        raise UsageError(f"cannot read the bytecode version of {model}: {_torch.first_line(exc)}") from None


def export_model(model: Path | Any, output: Path, target: ExportTarget, *, optimize: bool | None = None,
                 backend: str = "cpu", example_inputs: Sequence[Any] | None = None) -> ExportResult:
    """Export a .pt file or an nn.Module / ScriptModule to a lite-interpreter file for ``target``.

    ``optimize``: True runs optimize_for_mobile (an error if this torch cannot), False never; None (the default)
    runs it where this torch can: a CPU export from a torch built without XNNPACK (e.g. the 2.13 CPU wheel) is
    written unoptimized and ``not_optimized`` says why. Other backends always need it."""
    _check_request(target, backend, optimize)
    t = _torch.torch()
    scripted = _script(model, example_inputs)
    not_optimized = ""
    if optimize is not False:
        try:
            scripted = _optimize(scripted, backend, t.__version__)
        except _NoXnnpack as exc:
            if optimize or backend != "cpu":
                raise
            not_optimized = f"torch {t.__version__} in this Python has no XNNPACK, which optimize_for_mobile needs"
            log.info("%s: exporting without optimize_for_mobile (%s)", output, exc)
    tmp = atomic.sibling_temp(output)
    older = tmp.with_name(tmp.name + "-backport")
    try:
        _save_lite(scripted, tmp, output)
        produced = bytecode_version(tmp)
        final = tmp
        if produced > target.bytecode_max:
            _backport(tmp, older, produced, target.bytecode_max, t.__version__)
            final = older
        version = bytecode_version(final)
        if version < target.bytecode_min:
            raise UsageError(f"torch {t.__version__} wrote bytecode v{version}, older than the target "
                             f"reads (v{target.bytecode_min}..v{target.bytecode_max})")
        ops = tuple(sorted(t.jit.mobile._export_operator_list(_torch.load_lite(final))))
        atomic.commit(final, output)
    finally:
        tmp.unlink(missing_ok=True)
        older.unlink(missing_ok=True)
    log.info("exported %s: bytecode v%d (torch %s wrote v%d)", output, version, t.__version__, produced)
    return ExportResult(output, version, produced, optimize is not False and not not_optimized, backend,
                        str(t.__version__), ops, not_optimized)


def _save_lite(scripted: Any, tmp: Path, output: Path) -> None:
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        with _torch.quiet():
            scripted._save_for_lite_interpreter(str(tmp))
    except OSError as exc:
        raise UsageError(f"cannot write {output}: {exc.strerror or exc}") from None
    except RuntimeError as exc:
        raise UsageError(f"cannot save {output} for the lite interpreter: {_torch.first_line(exc)}") from None


def _check_request(target: ExportTarget, backend: str, optimize: bool | None) -> None:
    if backend not in BACKENDS:
        raise UsageError(f"unknown backend {backend!r}{did_you_mean(backend, BACKENDS)}")
    if backend not in target.backends:
        have = ", ".join(sorted(target.backends)) or "none"
        raise UsageError(f"the target release has no {backend} backend (it has: {have})")
    if backend != "cpu" and optimize is False:
        raise UsageError(f"--backend {backend} works through optimize_for_mobile; drop --no-optimize")
    if target.bytecode_max < target.bytecode_min:
        raise UsageError(f"bytecode range is empty: max {target.bytecode_max} < min {target.bytecode_min}")


def _script(model: Path | Any, example_inputs: Sequence[Any] | None) -> Any:
    t = _torch.torch()
    if isinstance(model, (str, Path)):
        path = Path(model)
        if _torch.model_kind(path) == "lite":
            raise UsageError(f"{path} is already a lite-interpreter file; export needs the TorchScript (.pt) model")
        return _torch.load_torchscript(path)
    if isinstance(model, t.jit.ScriptModule):
        return model
    if not isinstance(model, t.nn.Module):
        raise UsageError(f"cannot export a {type(model).__name__}: pass a .pt file or a torch.nn.Module")
    model = model.eval()
    try:
        with _torch.quiet():
            if example_inputs is not None:
                return t.jit.trace(model, tuple(example_inputs))
            return t.jit.script(model)
    except Exception as exc:  # noqa: BLE001 - torch raises many types (RuntimeError, ValueError, C++ errors)
        how = "traced" if example_inputs is not None else "scripted (give example inputs to trace it)"
        raise UsageError(f"the model cannot be {how}: {_torch.first_line(exc)}") from None


class _NoXnnpack(UsageError):
    """optimize_for_mobile cannot run: this torch was built without XNNPACK."""


def _optimize(scripted: Any, backend: str, torch_version: str) -> Any:
    from torch.utils.mobile_optimizer import optimize_for_mobile

    try:
        with _torch.quiet():
            return optimize_for_mobile(scripted, backend=BACKENDS[backend])
    except Exception as exc:  # noqa: BLE001 - torch raises many types (RuntimeError, ValueError, C++ errors)
        text = str(exc)
        if "XNNPACK" in text:
            raise _NoXnnpack(f"optimize_for_mobile needs XNNPACK, which torch {torch_version} in this "
                             "Python was built without; export without it: --no-optimize") from None
        if f"custom class type {backend}." in text or f"op for {backend}_prepack::" in text:
            raise UsageError(f"optimize_for_mobile(backend={BACKENDS[backend]}) needs a torch built with "
                             f"{BACKENDS[backend]}, and torch {torch_version} in this Python is not; "
                             "export without it: --no-optimize") from None
        raise UsageError(f"optimize_for_mobile(backend={BACKENDS[backend]}) failed in torch {torch_version}: "
                         f"{_torch.first_line(exc)}; export without it: --no-optimize") from None


def _backport(src: Path, dst: Path, produced: int, wanted: int, torch_version: str) -> None:
    t = _torch.torch()
    reason = ""
    try:
        with _torch.quiet():
            ok = bool(t.jit.mobile._backport_for_mobile(str(src), str(dst), wanted))
    except Exception as exc:  # noqa: BLE001 - torch raises many types (RuntimeError, ValueError, C++ errors)
        ok, reason = False, ": " + _torch.first_line(exc)
    if not ok or not dst.is_file():
        raise UsageError(f"cannot backport bytecode v{produced} to v{wanted} with torch {torch_version}{reason}",
                         hint=f"the target reads bytecode v{wanted} at most; export with a torch that writes it")
    log.info("backported bytecode v%d -> v%d", produced, wanted)
