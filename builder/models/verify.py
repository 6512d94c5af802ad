"""Prove a build runs a model: run the verify runner (builder.models.runner) on it and compare with torch.

Tensors travel in "builder tensor files" (text header + raw little-endian data; see runner/runner.cpp).
The reference is the installed torch running the same .ptl through ``_load_for_lite_interpreter``.
A runner is started the way ``Runner.launch`` says: natively, under qemu-user, or on a device over adb.
"""
from __future__ import annotations

import logging
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from builder import proc
from builder.errors import UsageError, VerifyFailed
from builder.models import _torch
from builder.models.runner import Runner

log = logging.getLogger("builder")

MAGIC = b"BUILDER-TENSORS 1"
_DTYPES = {"f32": "float32", "f64": "float64", "i32": "int32", "i64": "int64",
           "u8": "uint8", "i8": "int8", "bool": "bool"}
_MISSING_OP_PATTERNS = (
    re.compile(r"Following ops cannot be found: \[([^\]]*)\]"),
    re.compile(r"Could not find any similar ops to ([\w:.]+)"),
    re.compile(r"Unknown builtin op: ([\w:.]+)"),
    re.compile(r"Could not run '([\w:.]+)' with arguments from the '\w+' backend"),
    re.compile(r"Could not find schema for ([\w:.]+)"),
)


@dataclass(frozen=True)
class Tolerance:
    rtol: float = 1e-4
    atol: float = 1e-5


@dataclass(frozen=True)
class VerifyResult:
    model: Path
    runner: Path
    outputs: tuple[tuple[int, ...], ...]   # output shapes
    max_abs_error: float
    max_rel_error: float
    forward_ms: float | None
    torch_version: str


# --- the install and the runner ---------------------------------------------------------------


# --- tensors ----------------------------------------------------------------------------------


def parse_shapes(text: str) -> tuple[tuple[int, ...], ...]:
    """'1x3x224x224,1x10' -> ((1, 3, 224, 224), (1, 10))."""
    shapes = []
    for part in text.split(","):
        try:
            dims = tuple(int(d) for d in part.strip().lower().split("x"))
        except ValueError:
            raise UsageError(f"bad input shape {part.strip()!r}", hint="write e.g. 1x3x224x224,1x10") from None
        if not dims or any(d < 0 for d in dims):
            raise UsageError(f"bad input shape {part.strip()!r}", hint="write e.g. 1x3x224x224,1x10")
        shapes.append(dims)
    return tuple(shapes)


def make_inputs(shapes: Sequence[Sequence[int]], seed: int = 0) -> tuple[Any, ...]:
    """Float32 standard-normal inputs of the given shapes, reproducible from ``seed``."""
    t = _torch.torch()
    generator = t.Generator().manual_seed(seed)
    return tuple(t.randn(*shape, generator=generator) for shape in shapes)


def model_inputs(path: Path | None, shapes: str, seed: int = 0) -> tuple[Any, ...]:
    """The inputs the CLI's --inputs names, else random ones of --shapes (reproducible from ``seed``)."""
    return load_inputs(path) if path is not None else make_inputs(parse_shapes(shapes), seed)


def load_inputs(path: Path) -> tuple[Any, ...]:
    """Inputs from a builder tensor file or a torch.save'd tensor / list / tuple of tensors."""
    if not path.is_file():
        raise UsageError(f"input file not found: {path}")
    with open(path, "rb") as handle:
        if handle.read(len(MAGIC)) == MAGIC:
            return read_tensors(path)
    t = _torch.torch()
    try:
        data = t.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises many types (RuntimeError, ValueError, C++ errors)
        raise UsageError(f"cannot read inputs from {path}: {_torch.first_line(exc)}") from None
    items = (data,) if isinstance(data, t.Tensor) else data
    if not isinstance(items, (list, tuple)) or not all(isinstance(x, t.Tensor) for x in items):
        raise UsageError(f"{path} must hold a tensor or a list/tuple of tensors")
    return tuple(items)


def write_tensors(path: Path, tensors: Sequence[Any]) -> None:
    if sys.byteorder != "little":
        raise UsageError("builder tensor files are little-endian; this host is not")
    tags = {v: k for k, v in _DTYPES.items()}
    with open(path, "wb") as out:
        out.write(MAGIC + b"\n" + f"{len(tensors)}\n".encode())
        for tensor in tensors:
            tag = tags.get(str(tensor.dtype).replace("torch.", ""))
            if tag is None:
                raise UsageError(f"input dtype {tensor.dtype} not supported (use {', '.join(_DTYPES.values())})")
            data = tensor.detach().contiguous().cpu()
            out.write(f"{tag} {data.dim()} {' '.join(str(s) for s in data.shape)}".rstrip().encode() + b"\n")
            out.write(bytes(data.clone().untyped_storage()))  # host order; hosts are little-endian


def read_tensors(path: Path) -> tuple[Any, ...]:
    t = _torch.torch()
    blob = path.read_bytes()
    lines, pos = _header_line(blob, 0)
    if lines != MAGIC.decode():
        raise UsageError(f"{path}: not a builder tensor file")
    count_text, pos = _header_line(blob, pos)
    tensors = []
    for _ in range(int(count_text)):
        header, pos = _header_line(blob, pos)
        tag, _ndim, *sizes = header.split()
        dtype = getattr(t, _DTYPES[tag])
        shape = tuple(int(s) for s in sizes)
        size = t.empty(0, dtype=dtype).element_size() * _numel(shape)
        chunk = bytearray(blob[pos:pos + size])
        if len(chunk) != size:
            raise UsageError(f"{path}: truncated tensor data")
        pos += size
        tensors.append(t.frombuffer(chunk, dtype=dtype).reshape(shape) if size else t.empty(shape, dtype=dtype))
    return tuple(tensors)


def _header_line(blob: bytes, pos: int) -> tuple[str, int]:
    end = blob.find(b"\n", pos)
    if end < 0:
        raise UsageError("truncated builder tensor file")
    return blob[pos:end].decode("ascii"), end + 1


def _numel(shape: Sequence[int]) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


# --- running and comparing --------------------------------------------------------------------


def missing_ops(text: str) -> tuple[str, ...]:
    """Operator names libtorch reports missing in a runner's error text."""
    found: list[str] = []
    for pattern in _MISSING_OP_PATTERNS:
        for match in pattern.finditer(text):
            for name in match.group(1).split(","):
                name = name.strip().rstrip(".")
                if name and name not in found:
                    found.append(name)
    return tuple(found)


def run_runner(runner: Runner, model: Path, inputs: Sequence[Any], work_dir: Path,
               timeout: float = 600, trace: Path | None = None) -> tuple[tuple[Any, ...], float | None]:
    """Run the compiled runner; return its outputs and forward time (ms). With ``trace``, the runner also
    writes there the dispatcher operators the model called (load and forward)."""
    work_dir.mkdir(parents=True, exist_ok=True)
    in_path, out_path = work_dir / f"{model.stem}.inputs.bt", work_dir / f"{model.stem}.outputs.bt"
    write_tensors(in_path, inputs)
    out_path.unlink(missing_ok=True)
    if runner.launch.needs_device:
        return _run_on_device(runner, model, in_path, out_path, timeout, trace)
    argv: list[str | Path] = [*runner.launch.prefix, runner.path, model, in_path, out_path,
                              *([trace] if trace is not None else [])]
    try:
        result = proc.run(argv, check=False, timeout=timeout)
    except proc.TimedOut:
        raise VerifyFailed(f"the runner did not finish {model.name} within {timeout:g} s") from None
    if result.returncode != 0:
        raise _runner_failure(model, result.stderr or result.stdout, result.returncode)
    match = re.search(r"forward_ms=([0-9.eE+-]+)", result.stdout)
    return read_tensors(out_path), (float(match.group(1)) if match else None)


def _run_on_device(runner: Runner, model: Path, in_path: Path, out_path: Path, timeout: float,
                   trace: Path | None) -> tuple[tuple[Any, ...], float | None]:
    """adb push the runner, model and inputs; run; pull the outputs (and the trace)."""
    from builder.models.platform import DEVICE_DIR

    adb = runner.launch.prefix[0]
    remote = [f"{DEVICE_DIR}/{p.name}" for p in (runner.path, model, in_path, out_path)]
    if trace is not None:
        remote.append(f"{DEVICE_DIR}/{trace.name}")
    proc.run([adb, "shell", "mkdir", "-p", DEVICE_DIR], check=True)
    for local in (runner.path, model, in_path):
        proc.run([adb, "push", local, f"{DEVICE_DIR}/"], check=True, timeout=timeout)
    result = proc.run([adb, "shell", f"chmod 755 {remote[0]} && cd {DEVICE_DIR} && {' '.join(remote)}"],
                      check=False, timeout=timeout)
    if result.returncode != 0 or "error" in result.stdout.lower() and "forward_ms" not in result.stdout:
        raise _runner_failure(model, result.stderr or result.stdout, result.returncode or 1)
    proc.run([adb, "pull", remote[3], out_path], check=True, timeout=timeout)
    if trace is not None:
        proc.run([adb, "pull", remote[4], trace], check=True, timeout=timeout)
    match = re.search(r"forward_ms=([0-9.eE+-]+)", result.stdout)
    return read_tensors(out_path), (float(match.group(1)) if match else None)


def check_traceable(install_root: Path, tag: str) -> None:
    """Refuse to trace on a build made with an op list (its CMakeCache.txt beside the install says so): a plain
    list turns on static dispatch (cmake/Codegen.cmake: "You have to run tracing-based selective build with dynamic
    dispatch. Switching to STATIC_DISPATCH_BACKEND=CPU"), so operators call each other's kernels directly, past the
    dispatcher and its RecordFunction, and a trace sees only the model's own operators; a traced list registers
    only what it lists. Either way the trace would be short without failing. A folder with no CMakeCache.txt (an
    install copied elsewhere) cannot be checked and is trusted."""
    from .platform import read_cmake_cache

    cache_file = install_root.parent / "CMakeCache.txt"
    if not cache_file.is_file():
        return
    selected = read_cmake_cache(cache_file).get("SELECTED_OP_LIST", "").strip()
    if selected:
        raise UsageError(f"--trace needs a full build of the release: {cache_file.parent} was built with an op list "
                         f"(SELECTED_OP_LIST={selected}), whose operators call each other past the dispatcher, so a "
                         "trace there sees only the model's own operators",
                         hint=f"build one without --ops/--model, e.g. builder host --tag {tag}, and pass that")


def trace_ops(runner: Runner, model: Path, inputs: Sequence[Any], work_dir: Path,
              timeout: float = 600) -> frozenset[str]:
    """The operators ``model`` calls on this build (a full one: a selective build cannot call what it lacks),
    recorded by the runner's RecordFunction callback while loading and running forward."""
    if _torch.model_kind(model) != "lite":
        raise UsageError(f"{model} is not a lite-interpreter file; export it first: builder export {model}")
    trace = work_dir / f"{model.stem}.traced-ops.txt"
    trace.unlink(missing_ok=True)
    run_runner(runner, model, inputs, work_dir, timeout, trace=trace)
    names = frozenset(line.strip() for line in trace.read_text(encoding="utf-8").splitlines() if line.strip())
    log.info("%s: %d operator(s) called while loading and running it", model, len(names))
    return names


def _runner_failure(model: Path, text: str, code: int) -> VerifyFailed:
    missing = missing_ops(text)
    if missing:
        return VerifyFailed(f"{model.name} needs operator(s) missing from the build: {', '.join(missing)}",
                            hint=f"fix: builder ops {model} -o ops.yaml, then rebuild with --ops ops.yaml")
    lines = [line for line in text.strip().splitlines() if line.strip()]
    detail = lines[0] if lines else f"exit code {code}"
    return VerifyFailed(f"the runner failed on {model.name}: {detail[:400]}")


def reference_outputs(model: Path, inputs: Sequence[Any]) -> tuple[Any, ...]:
    """The installed torch's lite interpreter running the same file."""
    t = _torch.torch()
    try:
        with _torch.quiet():
            module = t.jit.mobile._load_for_lite_interpreter(str(model), map_location="cpu")
            result = module(*[x.clone() for x in inputs])
    except Exception as exc:  # noqa: BLE001 - torch raises many types (RuntimeError, ValueError, C++ errors)
        raise VerifyFailed(f"torch {t.__version__} (the reference) cannot run {model.name} on these inputs: "
                           f"{_torch.first_line(exc)}") from None
    return flatten_tensors(result)


def flatten_tensors(value: Any) -> tuple[Any, ...]:
    t = _torch.torch()
    if isinstance(value, t.Tensor):
        return (value,)
    if isinstance(value, (list, tuple)):
        return tuple(x for item in value for x in flatten_tensors(item))
    raise VerifyFailed(f"model output holds a {type(value).__name__}, not tensors")


def compare(actual: Sequence[Any], expected: Sequence[Any], tol: Tolerance) -> tuple[float, float]:
    """(max abs error, max rel error); VerifyFailed when they differ beyond ``tol``."""
    t = _torch.torch()
    if len(actual) != len(expected):
        raise VerifyFailed(f"the build returned {len(actual)} output tensor(s), torch {len(expected)}")
    max_abs = max_rel = 0.0
    ok = True
    for i, (a, e) in enumerate(zip(actual, expected)):
        if tuple(a.shape) != tuple(e.shape) or a.dtype != e.dtype:
            raise VerifyFailed(f"output {i}: the build gave {a.dtype} {tuple(a.shape)}, "
                               f"torch {e.dtype} {tuple(e.shape)}")
        a64, e64 = a.detach().to(t.float64), e.detach().to(t.float64)
        diff = (a64 - e64).abs()
        if diff.numel():
            max_abs = max(max_abs, float(diff.max()))
            nonzero = e64.abs() > 0
            if bool(nonzero.any()):
                max_rel = max(max_rel, float((diff[nonzero] / e64.abs()[nonzero]).max()))
        ok = ok and bool(t.allclose(a64, e64, rtol=tol.rtol, atol=tol.atol, equal_nan=True))
    if not ok:
        raise VerifyFailed(f"outputs differ from torch: max abs error {max_abs:.3g}, max rel error "
                           f"{max_rel:.3g} (rtol {tol.rtol:g}, atol {tol.atol:g})")
    return max_abs, max_rel


def verify_model(model: Path, runner: Runner, inputs: Sequence[Any], work_dir: Path,
                 tolerance: Tolerance = Tolerance(), timeout: float = 600) -> VerifyResult:
    """Run ``model`` on the build (runner) and in torch; VerifyFailed unless they agree."""
    if _torch.model_kind(model) != "lite":
        raise UsageError(f"{model} is not a lite-interpreter file; export it first: builder export {model}")
    actual, forward_ms = run_runner(runner, model, inputs, work_dir, timeout)
    expected = reference_outputs(model, inputs)
    max_abs, max_rel = compare(actual, expected, tolerance)
    shapes = tuple(tuple(int(d) for d in a.shape) for a in actual)
    log.info("%s: %d output(s) match torch (max abs %.3g, max rel %.3g)", model, len(shapes), max_abs, max_rel)
    return VerifyResult(model, runner.path, shapes, max_abs, max_rel, forward_ms,
                        str(_torch.torch().__version__))
