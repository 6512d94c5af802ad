"""Root operator lists of models, merged, validated against a release, written for SELECTED_OP_LIST.

Formats (read from the real PyTorch trees the recipes cite):

* ``plain``: a YAML list of operator names (``- aten::conv2d``). CMake passes it to
  ``tools/setup_helpers/generate_code.py --selected-op-list-path`` (which strips overloads) and to
  ``tools/lite_interpreter/gen_selected_mobile_ops_header.py`` (which keeps them: the
  ``TORCH_OPERATOR_WHITELIST`` check in ``aten/src/ATen/core/op_registration/op_allowlist.h`` compares
  exact names, so names must carry their overload, as ``torch.jit.export_opnames`` writes them).
* ``tracing``: the ``TRACING_BASED=ON`` YAML read by ``torchgen/selective_build/selector.py``
  (``SelectiveBuilder.from_yaml_dict``) and ``tools/code_analyzer/gen_oplist.py``:
  ``operators: {name: {is_root_operator, is_used_for_training, include_all_overloads, debug_info}}``.
  ``include_all_overloads`` must be false (gen_oplist refuses true unless
  ``--allow_include_all_overloads``, which CMake does not pass). A tracing build registers only the
  listed operators, so a list of *root* operators alone lacks the operators they call; we write it
  faithfully but warn.

Validation: an operator is known to a release when its name is in
``aten/src/ATen/native/native_functions.yaml`` or is registered by schema in the JIT/runtime sources
(``torch/csrc/jit/runtime/register_*.cpp``: ``aten::len.t``, ``aten::gt.int``, ``prim::*``;
``torch/csrc/jit/mobile/promoted_prim_ops.cpp``; ``TORCH_LIBRARY`` files under
``aten/src/ATen/native``: ``quantized::*``, ``prepacked::*``). When the checkout has no JIT runtime
sources, operators outside native_functions.yaml are accepted with a warning, except near misses of
known names (difflib ratio >= 0.85 to a known name whose base is unknown: ``aten::conv2dd``).
"""
from __future__ import annotations

import functools
import logging
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from builder import atomic
from builder.errors import UsageError, ValidationErrors, did_you_mean
from builder.hashing import sha256_file_or_missing, sha256_json
from builder.models import _torch

log = logging.getLogger("builder")

OpListFormat = Literal["plain", "tracing"]
FORMATS: tuple[str, ...] = ("plain", "tracing")

NATIVE_FUNCTIONS = Path("aten/src/ATen/native/native_functions.yaml")
_JIT_SOURCES = ("torch/csrc/jit/runtime/register_*.cpp", "torch/csrc/jit/runtime/register_*.h",
                "torch/csrc/jit/mobile/promoted_prim_ops.cpp")
_LIBRARY_ROOT = "aten/src/ATen/native"
_OP_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*::[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z0-9_]+)?$")
_FUNC = re.compile(r"^- func:\s*([A-Za-z0-9_.:]+)\(", re.MULTILINE)
# "ns::name.overload(" (a schema), "ns::name" (prim_op_fn_register), "ns::name." (macro prefix).
_LITERAL = re.compile(r'"([a-z_][a-z0-9_]*::[A-Za-z_][A-Za-z0-9_]*)(\.[A-Za-z0-9_]*)?([("])')
_MACRO = re.compile(r"\b[A-Z][A-Z0-9_]*\(\s*((?:aten|prim)::[A-Za-z_][A-Za-z0-9_]*)\s*,")


@dataclass(frozen=True)
class OpUse:
    """One operator and the models that need it."""

    name: str
    models: tuple[str, ...]
    root: bool = True        # False: called by other operators (found by tracing a run), not by the model


@dataclass(frozen=True)
class OpList:
    """Root operators of one or more models, sorted by name."""

    ops: tuple[OpUse, ...]
    models: tuple[str, ...]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(op.name for op in self.ops)

    def models_for(self, name: str) -> tuple[str, ...]:
        for op in self.ops:
            if op.name == name:
                return op.models
        return ()

    def merge(self, other: OpList) -> OpList:
        return merge_op_lists((self, other))

    def with_roots(self, names: Sequence[str], source: str = "--op") -> OpList:
        """This list plus ``names`` as root operators (what ``--op`` adds), their source named ``source``."""
        return self.merge(OpList.from_names(names, source)) if names else self

    @property
    def traced(self) -> tuple[str, ...]:
        """Operators that are only called by other operators."""
        return tuple(op.name for op in self.ops if not op.root)

    @staticmethod
    def from_names(names: Iterable[str], model: str, root: bool = True) -> OpList:
        return OpList(tuple(OpUse(n, (model,), root) for n in sorted(set(names))), (model,))


@dataclass(frozen=True)
class KnownOps:
    """The operators a release defines, read from its source tree."""

    native: frozenset[str]            # aten::name and aten::name.overload from native_functions.yaml
    registered: frozenset[str]        # exact names registered by schema in JIT / library sources
    any_overload: frozenset[str]      # base names whose overloads are macro-generated (aten::gt -> .int ...)
    has_jit_sources: bool

    @functools.cached_property
    def bases(self) -> frozenset[str]:
        return frozenset(base_name(n) for n in self.native | self.registered) | self.any_overload

    @functools.cached_property
    def jit_bases(self) -> frozenset[str]:
        return frozenset(base_name(n) for n in self.registered) | self.any_overload

    def contains(self, op: str) -> bool:
        if op in self.native or op in self.registered or base_name(op) in self.any_overload:
            return True
        return "." not in op and op in self.bases

    def all_names(self) -> frozenset[str]:
        return self.native | self.registered | self.bases


def base_name(op: str) -> str:
    """'aten::add.Tensor' -> 'aten::add'."""
    ns, _, rest = op.partition("::")
    return f"{ns}::{rest.split('.', 1)[0]}"


# --- collecting ------------------------------------------------------------------------------


def model_ops(model: Path) -> frozenset[str]:
    """Root operators of one model: export_opnames for TorchScript, _export_operator_list for lite."""
    kind = _torch.model_kind(model)
    t = _torch.torch()
    with _torch.quiet():
        if kind == "lite":
            return frozenset(t.jit.mobile._export_operator_list(_torch.load_lite(model)))
        return frozenset(t.jit.export_opnames(_torch.load_torchscript(model)))


def module_ops(module: object) -> frozenset[str]:
    """Root operators of a ScriptModule (or an nn.Module, scripted here)."""
    t = _torch.torch()
    with _torch.quiet():
        scripted = module if isinstance(module, t.jit.ScriptModule) else t.jit.script(module)
        return frozenset(t.jit.export_opnames(scripted))


def collect_ops(models: Sequence[Path]) -> OpList:
    """The union of the models' root operators, each with the models needing it."""
    if not models:
        raise UsageError("no model given: pass one or more .pt / .ptl files")
    lists = [OpList.from_names(model_ops(m), str(m)) for m in models]
    return merge_op_lists(lists)


def merge_op_lists(lists: Iterable[OpList]) -> OpList:
    users: dict[str, list[str]] = {}
    roots: set[str] = set()
    models: list[str] = []
    for oplist in lists:
        models.extend(m for m in oplist.models if m not in models)
        for op in oplist.ops:
            bucket = users.setdefault(op.name, [])
            bucket.extend(m for m in op.models if m not in bucket)
            if op.root:
                roots.add(op.name)
    return OpList(tuple(OpUse(n, tuple(users[n]), n in roots) for n in sorted(users)), tuple(models))


# --- the release's operators ------------------------------------------------------------------


def load_known_ops(checkout: Path) -> KnownOps:
    """Operators defined by the PyTorch source tree at ``checkout``."""
    yaml_path = checkout / NATIVE_FUNCTIONS
    if not yaml_path.is_file():
        raise UsageError(f"not a PyTorch checkout: {yaml_path} is missing")
    return _load_known_ops(checkout.resolve(), yaml_path.stat().st_mtime_ns)


@functools.lru_cache(maxsize=8)
def _load_known_ops(checkout: Path, _mtime: int) -> KnownOps:
    native = frozenset(_native_names((checkout / NATIVE_FUNCTIONS).read_text(encoding="utf-8")))
    jit_files = [p for pattern in _JIT_SOURCES for p in sorted(checkout.glob(pattern))]
    registered: set[str] = set()
    any_overload: set[str] = set()
    for path in [*jit_files, *_library_files(checkout / _LIBRARY_ROOT)]:
        exact, prefixes = registered_names(path.read_text(encoding="utf-8", errors="replace"))
        registered |= exact
        any_overload |= prefixes
    log.debug("%s: %d native, %d registered, %d macro-generated operator names", checkout,
              len(native), len(registered), len(any_overload))
    return KnownOps(native, frozenset(registered), frozenset(any_overload), bool(jit_files))


def _native_names(text: str) -> Iterator[str]:
    for func in _FUNC.findall(text):
        yield func if "::" in func else f"aten::{func}"


def _library_files(root: Path) -> Iterator[Path]:
    if not root.is_dir():
        return
    for path in sorted(root.rglob("*.cpp")):
        if "Register" in path.name or path.name.endswith("library.cpp") or path.name == "RNN.cpp":
            yield path


def registered_names(source: str) -> tuple[set[str], set[str]]:
    """(exact names, any-overload base names) registered in one C++ source file."""
    exact: set[str] = set()
    prefixes: set[str] = set()
    for name, overload, end in _LITERAL.findall(source):
        if overload == ".":  # "aten::__contains__." key_type "(...": the overload comes from a macro
            prefixes.add(name)
        elif end == "(" or not overload:
            exact.add(name + overload)
    prefixes.update(_MACRO.findall(source))
    return exact, prefixes


# --- validation -------------------------------------------------------------------------------


def check_names(names: Iterable[str], what: str) -> tuple[str, ...]:
    """Syntax check: each name is 'namespace::name[.overload]'."""
    bad = [n for n in names if not isinstance(n, str) or not _OP_NAME.match(n)]
    if bad:
        raise UsageError(f"{what}: not an operator name: {bad[0]!r}",
                         hint="write namespace::name[.overload], e.g. aten::conv2d")
    return tuple(names)


def validate_ops(names: Iterable[str], known: KnownOps,
                 custom_ops: Iterable[str] = ()) -> tuple[str, ...]:
    """Check every operator against the release; return warnings, raise on unknown operators."""
    custom = set(check_names(tuple(custom_ops), "--custom-op"))
    problems: list[UsageError] = []
    warnings: list[str] = []
    unverified: list[str] = []
    bare: list[str] = []
    for op in names:
        if op in custom:
            continue
        if known.contains(op):
            if "." not in op and op not in known.native | known.registered and op in known.jit_bases:
                bare.append(op)
            continue
        if not known.has_jit_sources and not _near_miss(op, known):
            unverified.append(op)
            continue
        problems.append(UsageError(f"unknown operator {op}{did_you_mean(op, known.all_names())}",
                                   hint="declare your own operators with --custom-op"))
    if unverified:
        warnings.append("accepted without checking (the checkout has no torch/csrc/jit/runtime "
                        "sources to check JIT built-ins against): " + ", ".join(unverified))
    if bare:
        warnings.append("no overload name on " + ", ".join(bare) + ": the release selects JIT built-ins by "
                        "exact name (op_allowlist.h), so overloads such as aten::len.t are left out; "
                        "write names as `builder ops` does")
    if len(problems) == 1:
        raise problems[0]
    if problems:
        raise ValidationErrors(problems)
    for message in warnings:
        log.warning("%s", message)
    return tuple(warnings)


def _near_miss(op: str, known: KnownOps) -> bool:
    """A likely misspelling: close to a known name, and not an unknown overload of a known base."""
    import difflib

    if base_name(op) in known.bases:
        return False
    return bool(difflib.get_close_matches(op, list(known.all_names()), n=1, cutoff=0.85))


def tracing_supported(checkout: Path) -> bool:
    """Whether the release has the tracing-based selective build (tools/code_analyzer/gen_oplist.py)."""
    return (checkout / "tools/code_analyzer/gen_oplist.py").is_file() and \
        (checkout / "torchgen/selective_build/selector.py").is_file()


# --- writing and reading ----------------------------------------------------------------------


def format_op_list(oplist: OpList, fmt: OpListFormat = "plain") -> str:
    """The text of an op list in the plain or tracing-based SELECTED_OP_LIST format."""
    if fmt == "plain":
        return _format_plain(oplist)
    if fmt == "tracing":
        return _format_tracing(oplist)
    raise UsageError(f"unknown op-list format {fmt!r}{did_you_mean(str(fmt), FORMATS)}")


def _format_plain(oplist: OpList) -> str:
    lines = ["# Root operators for SELECTED_OP_LIST (plain list), written by builder.",
             "# Models: " + (", ".join(oplist.models) or "(none)")]
    width = max((len(op.name) for op in oplist.ops), default=0)
    for op in oplist.ops:
        lines.append(f"- {op.name.ljust(width)}  # {', '.join(op.models)}")
    return "\n".join(lines) + "\n"


def _format_tracing(oplist: OpList) -> str:
    import yaml

    operators = {op.name: {"debug_info": list(op.models), "include_all_overloads": False,
                           "is_root_operator": op.root, "is_used_for_training": False}
                 for op in oplist.ops}
    data = {"include_all_non_op_selectives": True, "include_all_operators": False,
            "operators": operators}
    if oplist.traced:
        header = (f"# Tracing-based SELECTED_OP_LIST (TRACING_BASED=ON), written by builder: "
                  f"{len(oplist.ops) - len(oplist.traced)} root operators and {len(oplist.traced)} they call "
                  f"(traced on a full build).\n")
    else:
        header = ("# Tracing-based SELECTED_OP_LIST (TRACING_BASED=ON), written by builder from root operators.\n"
                  "# A tracing build registers only listed operators: add the operators these call.\n")
    return header + str(yaml.safe_dump(data, default_flow_style=False, sort_keys=True))


def write_op_list(oplist: OpList, output: Path, fmt: OpListFormat = "plain") -> Path:
    """Write atomically (temp file, then rename)."""
    text = format_op_list(oplist, fmt)
    if fmt == "tracing" and not oplist.traced:
        log.warning("the tracing-based list holds root operators only; a TRACING_BASED build also "
                    "needs the operators they call, or it fails at run time")
    return _write_atomically(output, text)


def _write_atomically(output: Path, text: str) -> Path:
    """Temp file beside ``output``, then rename: a reader never sees half a list."""
    return atomic.write_text(output, text)


def read_op_list(path: Path, expect: OpListFormat | None = None) -> OpList:
    """Read a hand-written (or builder-written) plain or tracing op list; one-line UsageError if bad.

    ``expect``: the format the build needs (plain unless TRACING_BASED); a file in the other one is refused.
    """
    return load_op_list(path, expect)[0]


MAX_OP_LIST_BYTES = 64 << 20          # PyTorch's whole tracing list of every operator is a few MB


def load_op_list(path: Path, expect: OpListFormat | None = None) -> tuple[OpList, OpListFormat]:
    """:func:`read_op_list`, and the format the file is in (plain or tracing)."""
    import yaml

    if not path.is_file():
        raise UsageError(f"op list not found: {path}")
    try:
        if path.stat().st_size > MAX_OP_LIST_BYTES:
            raise UsageError(f"{path} is {path.stat().st_size >> 20} MiB: not an op list "
                             f"(at most {MAX_OP_LIST_BYTES >> 20} MiB)", hint="check --ops")
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError, RecursionError) as exc:   # RecursionError: a 100,000-deep list
        where = getattr(exc, "problem_mark", None)
        line = f" (line {where.line + 1})" if where is not None else ""
        raise UsageError(f"{path} is not valid YAML{line}", hint="check --ops") from None
    except OSError as exc:
        raise UsageError(f"cannot read op list {path}: {exc.strerror}", hint="check --ops") from None
    found: OpListFormat = "plain"
    called: set[str] = set()
    if isinstance(data, Mapping) and isinstance(data.get("operators"), Mapping):
        called = {name for name, info in data["operators"].items()
                  if isinstance(info, Mapping) and info.get("is_root_operator") is False}
        data, found = list(data["operators"]), "tracing"
    if expect is not None and data is not None and found != expect:
        raise UsageError(f"{path} is a {found} op list, but this build needs a {expect} one",
                         hint=f"write it with: builder ops MODEL -o FILE --format {expect}")
    if not isinstance(data, list) or not all(isinstance(x, str) for x in data):
        raise UsageError(f"{path} must be a YAML list of operator names",
                         hint="one per line, like '- aten::conv2d'")
    check_names(data, str(path))
    oplist = merge_op_lists([OpList.from_names([n for n in data if n not in called], str(path)),
                             OpList.from_names(called, str(path), root=False)])
    return oplist, found


def ops_file_for(models: Sequence[Path], cache: Path, extra: Sequence[str] = ()) -> Path:
    """``--model`` on a build command: the models' root operators (and ``--op``'s) as a plain op list in the cache,
    named by what the build reads from it (the operators), not by its comments, which name the models as they were
    spelled: the same model by a relative or an absolute path, from any folder, is the same file and build folder."""
    return _cached_list(collect_ops(models).with_roots(extra), "plain", cache)


def ops_file_with(path: Path, extra: Sequence[str], cache: Path) -> Path:
    """``--ops FILE --op NAME`` on a build command: the file's list plus the operators as roots, in the file's
    format, written to the cache (the user's file is not touched)."""
    oplist, fmt = load_op_list(path)
    return _cached_list(oplist.with_roots(extra), fmt, cache)


def _cached_list(oplist: OpList, fmt: OpListFormat, cache: Path) -> Path:
    text = format_op_list(oplist, fmt)
    digest = _digest_of(oplist) if fmt == "plain" else sha256_json({"format": fmt, "text": text})
    path = cache / "ops" / f"{digest[:16]}.yaml"
    return path if path.is_file() else _write_atomically(path, text)


def _digest_of(oplist: OpList) -> str:
    return sha256_json({"format": "plain", "ops": sorted(oplist.names)})


def op_list_digest(path: Path) -> str:
    """A digest of what a build reads from an op list file: the operators (and, in a tracing-based list, their
    flags), without comments or ``debug_info`` (model paths). A file that does not parse: its bytes."""
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError, UnicodeDecodeError, RecursionError):
        return sha256_file_or_missing(path)
    if isinstance(data, list) and all(isinstance(x, str) for x in data):
        return sha256_json({"format": "plain", "ops": sorted(set(data))})
    if isinstance(data, Mapping) and isinstance(data.get("operators"), Mapping):
        ops = {name: {k: v for k, v in info.items() if k != "debug_info"} if isinstance(info, Mapping) else info
               for name, info in data["operators"].items()}
        return sha256_json({"format": "tracing", **{k: v for k, v in data.items() if k != "operators"},
                            "operators": ops})
    return sha256_file_or_missing(path)
