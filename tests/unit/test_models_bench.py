"""builder.models.bench, bench_stats and bench_report without processes: statistics, the benchmark's output, inputs,
compile defines, the rows' arguments, the --json schema and the table."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from builder.errors import UsageError
from builder.models import bench as bm
from builder.models import bench_report as br
from builder.models import bench_stats as st
from builder.models.platform import HOST, Launch
from builder.models.runner import Install, Runner

# ------------------------------------------------------------------ statistics


def test_percentile_interpolates_between_closest_ranks_like_numpy():
    values = [5.0, 1.0, 4.0, 2.0, 3.0]
    assert st.percentile(values, 50) == 3.0
    assert st.percentile(values, 0) == 1.0 and st.percentile(values, 100) == 5.0
    assert st.percentile(values, 90) == pytest.approx(4.6)            # numpy.percentile(values, 90)
    assert st.percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.5
    assert st.percentile([7.0], 90) == 7.0
    with pytest.raises(ValueError):
        st.percentile([], 50)
    with pytest.raises(ValueError):
        st.percentile([1.0], 101)


def test_summary_of_iterations():
    s = st.summarize([10.0, 12.0, 11.0, 30.0, 10.5])
    assert (s.n, s.median, s.min, s.max) == (5, 11.0, 10.0, 30.0)
    assert s.mean == pytest.approx(14.7)
    assert s.p90 == pytest.approx(22.8)
    assert s.spread == pytest.approx((12.0 - 10.5) / 11.0)          # interquartile range over the median
    with pytest.raises(ValueError):
        st.summarize([])


def test_ratio_of_medians_with_the_range_of_per_round_ratios():
    base = [[10.0, 10.0, 10.0], [20.0, 20.0, 20.0]]                  # the machine slowed down in round 2
    row = [[8.0, 8.0, 8.0], [16.0, 16.0, 16.0]]                      # ... for both rows: each round says 0.8
    r = st.ratio(row, base)
    assert (r.low, r.high) == (pytest.approx(0.8), pytest.approx(0.8)) and r.verdict == "faster"
    assert st.ratio(base, row).verdict == "slower"
    mixed = st.ratio([[9.0], [22.0]], [[10.0], [20.0]])              # one round faster, one slower
    assert mixed.low < 1 < mixed.high and mixed.verdict == "no clear difference"
    assert st.ratio([[10.1]], [[10.0]]).verdict == "no clear difference"   # within the noise band


# ------------------------------------------------------------------ the benchmark's output

OUTPUT = """Starting benchmark.
Running warmup runs.
Main runs.
PyTorchObserver {"type": "NET", "unit": "us", "metric": "latency", "value": "23967"}
PyTorchObserver {"type": "NET", "unit": "us", "metric": "latency", "value": "15944.5"}
PyTorchObserver {"type": "NET", "unit": "ms", "metric": "latency", "value": "2"}
PyTorchObserver {"type": "OP", "unit": "us", "metric": "latency", "value": "7"}
PyTorchObserver {not json}
Main run finished. Microseconds per iter: 19970.3. Iters per second: 50.0744
"""


def test_iteration_times_from_report_pep_lines():
    assert st.iteration_times_us(OUTPUT.splitlines()) == (23967.0, 15944.5, 2000.0)
    assert st.iteration_times_us(["Main run finished."]) == ()


def test_load_time_is_when_starting_benchmark_arrived():
    assert st.loaded_after([(0.01, "x"), (0.42, "Starting benchmark."), (0.5, "Main runs.")]) == 0.42
    assert st.loaded_after([(0.01, "terminate called")]) is None


HELP = "\n".join([   # c10's --help (trailing spaces as it prints them)
    "Run speed benchmark for pytorch model.", "Example usage:",
    "./speed_benchmark_torch --model=<model_file> --use_bundled_input=0 --warmup=5 --iter=20", "Arguments: ",
    "    vulkan: (bool, default false) Whether to use Vulkan backend (GPU).",
    "    iter: (int, default 10) The number of iterations to run.",
    "    pthreadpool_size: (int, default 0) Override the default thread pool size.",
    "    caffe2_threadpool_android_cap: (int, default true) ",
    '    model: (std::string, default "") The given torch script model to benchmark.', ""])


def test_flags_from_help():
    assert st.flags_from_help(HELP) == {"vulkan", "iter", "pthreadpool_size", "caffe2_threadpool_android_cap", "model"}


# ------------------------------------------------------------------ inputs


def test_inputs_in_the_benchmarks_syntax():
    i = bm.inputs_from("1x3x224x224,1x10", "float", None, False)
    assert (i.dims, i.types, i.all_4d) == ("1,3,224,224;1,10", "float;float", False)
    assert i.args() == ("--input_dims=1,3,224,224;1,10", "--input_type=float;float",
                        "--input_memory_format=contiguous_format;contiguous_format")
    four = bm.inputs_from("1x3x8x8", "uint8_t", None, False)
    assert four.all_4d and four.args(channels_last=True)[-1] == "--input_memory_format=channels_last"
    assert bm.inputs_from(None, "float", None, False).dims == "1,3,224,224"
    assert bm.inputs_from(None, "float", 0, False).args() == ("--use_bundled_input=0",)
    assert bm.inputs_from(None, "float", None, True).args() == ("--no_inputs=true",)


@pytest.mark.parametrize("args, text", [(("1x0", "float", None, False), "bad input shape"),
                                        (("1xa", "float", None, False), "bad input shape"),
                                        (("1x3", "half", None, False), "uint8_t"),
                                        (("1x3", "float", 0, False), "one of"),
                                        ((None, "float", -1, False), "0 or more")])
def test_bad_inputs_are_usage_errors(args, text):
    with pytest.raises(UsageError, match=text):
        bm.inputs_from(*args)


# ------------------------------------------------------------------ compile defines


def _entry(target: str, defines: str, file: str = "x.cpp") -> dict[str, str]:
    return {"directory": "/b", "file": file,
            "command": f"/usr/bin/c++ {defines} -I/x -o caffe2/CMakeFiles/{target}.dir/{file}.o -c {file}"}


def test_build_defines_are_those_every_library_shares(tmp_path):
    entries = [_entry("torch_cpu", "-DAT_PER_OPERATOR_HEADERS -DBUILD_LITE_INTERPRETER -DC10_MOBILE -DNDEBUG "
                                   "-DCAFFE2_BUILD_MAIN_LIB"),
               _entry("torch_cpu", "-DOTHER"),
               _entry("c10", "-DC10_MOBILE -DBUILD_LITE_INTERPRETER -DNDEBUG -DC10_BUILD_MAIN_LIB")]
    (tmp_path / "compile_commands.json").write_text(json.dumps(entries))
    assert bm.build_defines(tmp_path) == ("-DBUILD_LITE_INTERPRETER", "-DC10_MOBILE", "-DNDEBUG")


def test_build_defines_fall_back_to_nothing(tmp_path):
    assert bm.build_defines(tmp_path) == ()
    (tmp_path / "compile_commands.json").write_text("{cut")
    assert bm.build_defines(tmp_path) == ()
    (tmp_path / "compile_commands.json").write_text(json.dumps([_entry("torch_cpu", "-DA")]))
    assert bm.build_defines(tmp_path) == ()


def _install(tmp_path: Path) -> Path:
    install = tmp_path / "build" / "install"
    (install / "include/torch/csrc/jit/mobile").mkdir(parents=True)
    (install / "include/torch/csrc/jit/mobile/import.h").write_text("")
    (install / "lib").mkdir()
    (install / "lib/libtorch_cpu.a").write_bytes(b"!<arch>\n")
    return install


def test_subject_takes_the_benchmark_from_the_checkout_the_build_was_configured_from(tmp_path):
    install = _install(tmp_path)
    checkout = tmp_path / "src"
    (checkout / "binaries").mkdir(parents=True)
    (checkout / "binaries/speed_benchmark_torch.cc").write_text("int main() {}\n")
    (install.parent / "CMakeCache.txt").write_text(f"CMAKE_HOME_DIRECTORY:INTERNAL={checkout}\n"
                                                   "BUILD_LITE_INTERPRETER:BOOL=ON\n")
    subject = bm.subject_for_build(install.parent, "full")
    assert subject.source == checkout / "binaries/speed_benchmark_torch.cc"
    assert subject.lite and subject.defines == ("-DBUILD_LITE_INTERPRETER",) and subject.std == "c++17"
    (install.parent / "CMakeCache.txt").write_text(f"CMAKE_HOME_DIRECTORY:INTERNAL={tmp_path}/gone\n")
    with pytest.raises(UsageError, match="has no binaries/speed_benchmark_torch.cc"):
        bm.subject_for_build(install.parent)
    (install.parent / "CMakeCache.txt").unlink()
    with pytest.raises(UsageError, match="--source"):
        bm.subject_for_build(install)
    assert bm.subject_for_build(install, source=checkout).source.name == "speed_benchmark_torch.cc"


def test_cxx_standard_from_torch_config(tmp_path):
    install = _install(tmp_path)
    config = install / "share/cmake/Torch/TorchConfig.cmake"
    config.parent.mkdir(parents=True)
    config.write_text("set_property(TARGET torch PROPERTY\n    CXX_STANDARD 20\n)\n")
    assert bm.subject_for_torch(install, "2.13.0", tmp_path / "s.cc").std == "c++20"


# ------------------------------------------------------------------ rows: arguments, problems, JSON


def _row(tmp_path: Path, *, flags=frozenset({"pthreadpool_size", "use_caching_allocator"}),
         launch: Launch | None = None, **config) -> bm.Row:
    install = Install(tmp_path, (tmp_path / "include",), tmp_path / "lib", "static", ())
    subject = bm.Subject("full", install, tmp_path / "speed_benchmark_torch.cc", True, HOST)
    runner = Runner(tmp_path / "speed_benchmark_torch-1", install, ("c++",), True, launch=launch or Launch())
    return bm.Row(bm.Config(subject, tmp_path / "m.ptl", **config), bm.Program(runner, flags, 1 << 20))


def test_arguments_of_a_run(tmp_path):
    inputs = bm.inputs_from("1x3x8x8", "float", None, False)
    row = _row(tmp_path, caching_allocator=True, threads=2)
    args = bm.bench_args(row.config, row.program, inputs, 3, 7)
    assert args[0] == f"--model={tmp_path / 'm.ptl'}" and "--warmup=3" in args and "--iter=7" in args
    assert "--report_pep=true" in args and "--use_caching_allocator=true" in args and "--pthreadpool_size=2" in args
    assert bm.thread_env(row.config) == {"OMP_NUM_THREADS": "2", "MKL_NUM_THREADS": "2"}
    no_pool = _row(tmp_path, flags=frozenset(), threads=2)
    assert not any(a.startswith("--pthreadpool") for a in bm.bench_args(no_pool.config, no_pool.program, inputs, 0, 1))
    assert row.config.label == "full, caching allocator, 2 threads"


def test_what_a_program_cannot_do_is_reported_together(tmp_path):
    row = _row(tmp_path, flags=frozenset(), caching_allocator=True, channels_last=True)
    problems = bm.check_config(row.config, row.program, bm.inputs_from("1x10", "float", None, False))
    assert len(problems) == 3 and "--use_caching_allocator" in problems[0] and "4-D" in problems[-1]


def test_device_commands_push_and_run_with_taskset(tmp_path):
    row = _row(tmp_path, threads=4)
    cmds = bm.device_commands(row, bm.inputs_from("1x3x8x8", "float", None, False), 5, 20, cpus="f0")
    assert cmds[0] == "adb shell mkdir -p /data/local/tmp/builder-verify"
    assert cmds[1].startswith("adb push ") and cmds[2].endswith("m.ptl /data/local/tmp/builder-verify/")
    assert cmds[-1].startswith("adb shell 'OMP_NUM_THREADS=4 MKL_NUM_THREADS=4 taskset f0 /data/local/tmp/")
    assert "--model=/data/local/tmp/builder-verify/m.ptl" in cmds[-1] and "--pthreadpool_size=4" in cmds[-1]


def _measured(row: bm.Row, rounds: list[list[float]], load: float = 0.25, rss: int = 2048) -> bm.Row:
    from dataclasses import replace

    return replace(row, rounds=tuple(bm.Run(tuple(r), load, rss) for r in rounds))


def test_json_schema(tmp_path):
    base = _measured(_row(tmp_path), [[10.0, 11.0], [12.0, 10.0]])
    alloc = _measured(_row(tmp_path, caching_allocator=True), [[8.0, 9.0], [9.0, 8.0]], rss=4096)
    qemu = _measured(_row(tmp_path, launch=Launch(("/usr/bin/qemu-aarch64-static", "-L", "/usr/aarch64-linux-gnu"),
                                                  where="emulated")), [[500.0]])
    result = br.Result((base, alloc, qemu), bm.inputs_from("1x3x8x8", "float", None, False),
                       bm.BenchSettings(1, 2, 2), ("a note",))
    doc = json.loads(json.dumps(br.to_json(result)))
    assert doc["schema"] == "builder-bench/1" and set(doc) == {"schema", "warmup", "iterations", "rounds", "cpus",
                                                                "inputs", "rows", "notes"}
    assert doc["inputs"] == {"dims": "1,3,8,8", "types": "float", "bundled": None, "none": False}
    first, second, emulated = doc["rows"]
    assert set(first) == {"label", "build", "kind", "lite", "model", "variant", "caching_allocator", "threads",
                          "channels_last", "program", "source", "ran_on", "timed", "latency_ms", "ratio", "load_ms",
                          "peak_rss_kib", "stripped_bytes", "iterations_ms", "note"}
    assert set(first["latency_ms"]) == {"n", "median", "mean", "p90", "min", "max", "spread"}
    assert first["latency_ms"]["median"] == 10.5 and first["ratio"]["median"] == 1.0
    assert second["ratio"]["verdict"] == "faster" and second["peak_rss_kib"] == 4096 and second["load_ms"] == 250.0
    assert emulated["timed"] is False and emulated["latency_ms"] is None and emulated["ratio"] is None
    assert emulated["load_ms"] is None and emulated["peak_rss_kib"] is None and emulated["iterations_ms"] is None
    assert doc["notes"] == ["a note"]
    cells = br.table_cells(result)
    assert len(cells) == 3 and all(len(c) == len(br.HEADERS) for c in cells)
    assert cells[0][6] == "-" and cells[1][6].startswith("0.81") and cells[2][1] == "smoke ok, untimed"
    assert br.verdicts(result) == ["full, caching allocator: faster than full (0.810x the median; each round "
                                   "0.77-0.81x)"]


def test_operators_the_benchmark_program_needs_are_named_with_the_fix(tmp_path):
    from builder import proc
    from builder.errors import VerifyFailed

    row = _row(tmp_path)
    failed = proc.Result(("speed_benchmark_torch",), 1, "", "Could not run 'aten::ones' with arguments from the 'CPU' "
                         "backend. This could be because the operator doesn't exist for this backend")
    with pytest.raises(VerifyFailed) as err:
        bm._parsed(row, failed, [], None, 3)
    text = str(err.value)
    assert "the benchmark program makes its inputs with aten::ones" in text
    assert "--model MODEL --op aten::ones --op aten::fill_.Scalar --op aten::empty.memory_format" in text
    model_op = proc.Result(("speed_benchmark_torch",), 1, "", "Unknown builtin op: aten::conv2d")
    with pytest.raises(VerifyFailed, match="m.ptl needs operator"):
        bm._parsed(row, model_op, [], None, 3)
