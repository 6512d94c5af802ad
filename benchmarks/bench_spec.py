"""What the real-PyTorch benchmark (benchmarks/real_pytorch.py) measures and with which settings, shared by its
runner (real_pytorch.py, bench_run.py, bench_mobile.py, bench_sizes.py) and its report (bench_report.py): the
phases and what each needs, the folders under ROOT, the Debian packages and submodules, the targets, and the
small pure helpers both sides use (time and size formatting, builder's own build time read from a phase log).
No side effects on import."""
from __future__ import annotations

import re
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
DEFAULT_ROOT = Path("~/.cache/builder-bench").expanduser()
DEFAULT_DOC = REPO / "docs" / "benchmarks.md"
TAG = "v1.13.1"
FORMAT = 1

# build_mobile right after builder_full's no-op: the two cold builds whose ratio is a target run back to back, on
# the same quiet machine, before the lighter phases. paired last: builder_full's and build_mobile.sh's cold builds
# again, started together so both see the same machine; it decides the ratio target (this VM drifts more than 5%
# between two runs an hour apart: docs/real_pytorch_notes.md 5.1).
PHASES = ("mirror", "model", "builder_full", "noop", "build_mobile", "trace", "builder_ops", "builder_ops_warm",
          "removed_op", "sizes", "submodules", "paired", "builder_plain")
# Not run unless named in --phases (or --phases all): PyTorch's plain selective build (--ops with the root
# operators, no levers), a third cold build, for the size table's middle row.
OPTIONAL_PHASES = ("builder_plain",)
NEEDS: dict[str, tuple[str, ...]] = {
    "mirror": (), "model": (), "builder_full": ("mirror",), "noop": ("builder_full",),
    "trace": ("model", "builder_full"), "builder_ops": ("trace",), "builder_ops_warm": ("builder_ops",),
    "removed_op": ("builder_ops_warm",), "build_mobile": ("builder_full",),
    "sizes": ("model", "builder_full", "builder_ops_warm"), "submodules": ("builder_full",),
    "builder_plain": ("model", "builder_full"), "paired": ("mirror", "builder_full"),
}
REMOVED_OP = "aten::adaptive_avg_pool2d"

# Folders under ROOT of the paired phase's two builds.
PAIRED_DIRS = ("out-paired", "builder-cache-paired", "ccache-paired-builder", "bm-src-paired", "bm-build-paired",
               "ccache-paired-bm")
# Folders under ROOT that --fresh wipes (never mirror/ or downloads/).
BENCH_DIRS = ("logs", "plans", "model", "out-full", "out-ops", "out-removed", "out-plain", "ccache-builder",
              "ccache-bm", "builder-cache", "bm-src", "bm-build", "sizes", *PAIRED_DIRS)
SYSTEM_LIBS = {"xnnpack": "libxnnpack-dev", "cpuinfo": "libcpuinfo-dev", "pthreadpool": "libpthreadpool-dev"}
# Link flags for the shared Debian libraries a --system-lib build's static libtorch_cpu.a needs.
SYSTEM_LINK = {"xnnpack": "-lXNNPACK", "cpuinfo": "-lcpuinfo", "pthreadpool": "-lpthreadpool"}
PACKAGES = (*SYSTEM_LIBS.values(), "ccache")
SKIP_SUBMODULES = ("third_party/pocketfft",)
TORCH_VERSION = "2.13.0"
INPUT_SIZE = 224
NOOP_TARGET_S = 3.0
WARM_TARGET = 0.15
BM_TOLERANCE = 0.05
ISSUE8_TARGET = 0.6
# Environment that changes what builder or build_mobile.sh does; removed so the command line says it all.
BUILDER_ENV_DROP = ("SELECTED_OP_LIST", "MAX_JOBS", "BUILDER_MIRROR", "CCACHE_BASEDIR", "BUILDER_REAL_INSTALL")
BM_ENV_DROP = ("SELECTED_OP_LIST", "TRACING_BASED", "USE_LIGHTWEIGHT_DISPATCH", "VERBOSE", "BUILD_ROOT",
               "CCACHE_BASEDIR", "CMAKE_ARGS")
# Also compared between the two CMakeCache.txt files: the tools each configure found.
CACHE_TOOL_KEYS = ("CMAKE_COMMAND", "CMAKE_C_COMPILER", "CMAKE_CXX_COMPILER", "CMAKE_GENERATOR")


# ============================================================================ builder's log
BUILT_RE = re.compile(r"built -> .*\(([\d.]+) s\)\s*$", re.M)


def builder_build_seconds(log_path: Path) -> float | None:
    """builder's own configure + build + install time of the slice ("host: built -> ... (N s)" in its output):
    the part build_mobile.sh also does (builder's total adds its checkout and the SDK tarball + manifest)."""
    try:
        hits = BUILT_RE.findall(log_path.read_text(errors="replace"))
    except OSError:
        return None
    return float(hits[-1]) if hits else None


# ============================================================================ formatting
def fmt_s(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.1f} s" if seconds >= 10 else f"{seconds:.2f} s"
    m, s = divmod(round(seconds), 60)
    if m >= 120:
        h, m = divmod(m, 60)
        return f"{seconds:,.0f} s ({h} h {m:02d} min)"
    return f"{seconds:,.0f} s ({m} min {s:02d} s)"


def mib(n: int | None) -> str:
    if n is None:
        return "-"
    return f"{n / 2**20:,.1f} MiB" if abs(n) >= 2**20 else f"{n / 2**10:,.1f} KiB"


def pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def short(text: str | None) -> str:
    if not text:
        return "not run"
    return "pass" if text == "pass" else "FAIL"
