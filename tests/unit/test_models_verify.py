"""builder.models.verify without processes: tensor files, link lines, error parsing, comparison."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from builder.errors import UsageError, VerifyFailed
from builder.models import runner as runner_mod
from builder.models import verify

# The texts libtorch v1.13.1 prints (torch/csrc/jit/mobile/function.cpp, jit/frontend/schema_matching.cpp).
LOAD_ERROR = ("builder-runner: load failed: Following ops cannot be found: [aten::hardswish_]. Please check if "
              "the operator library is included in the build. If built with selected ops, check if these ops "
              "are in the list. If you are a Meta employee, please see fburl.com/missing_ops for a fix. Or post "
              "it in https://discuss.pytorch.org/c/mobile/ ()")


def make_install(root: Path, libs: tuple[str, ...], *, abi: str | None = None) -> Path:
    (root / "include/torch/csrc/jit/mobile").mkdir(parents=True)
    (root / "include/torch/csrc/jit/mobile/import.h").write_text("// stand-in\n")
    (root / "lib").mkdir()
    for lib in libs:
        (root / "lib" / lib).write_bytes(b"")
    if abi is not None:
        config = root / "share/cmake/Torch/TorchConfig.cmake"
        config.parent.mkdir(parents=True)
        config.write_text(f'if(NOT ON)\n  set(TORCH_CXX_FLAGS "-D_GLIBCXX_USE_CXX11_ABI={abi}")\nendif()\n')
    return root


def test_tensor_files_round_trip_every_dtype(tmp_path):
    tensors = (torch.randn(2, 3), torch.arange(6, dtype=torch.int64).reshape(3, 2), torch.tensor(2.5),
               torch.tensor([True, False]), torch.zeros(0, 4), torch.arange(4, dtype=torch.float64)[::2],
               torch.tensor([1, -2], dtype=torch.int8), torch.tensor([7], dtype=torch.uint8),
               torch.tensor([3], dtype=torch.int32))
    path = tmp_path / "t.bt"
    verify.write_tensors(path, tensors)
    assert path.read_bytes().startswith(b"BUILDER-TENSORS 1\n9\nf32 2 2 3\n")
    back = verify.read_tensors(path)
    assert len(back) == len(tensors)
    for a, b in zip(back, tensors):
        assert a.dtype == b.dtype and a.shape == b.shape and torch.equal(a, b)
    assert all(torch.equal(a, b) for a, b in zip(verify.load_inputs(path), tensors))


def test_unsupported_dtype_and_bad_files(tmp_path):
    with pytest.raises(UsageError, match="input dtype torch.complex64 not supported"):
        verify.write_tensors(tmp_path / "c.bt", [torch.zeros(2, dtype=torch.complex64)])
    bad = tmp_path / "bad.bt"
    bad.write_bytes(b"BUILDER-TENSORS 1\n1\nf32 1 4\n\x00\x00")
    with pytest.raises(UsageError, match="truncated tensor data"):
        verify.read_tensors(bad)


def test_inputs_from_torch_save_and_from_shapes(tmp_path):
    x, y = torch.randn(1, 3), torch.randn(2)
    torch.save([x, y], tmp_path / "in.pt")
    assert all(torch.equal(a, b) for a, b in zip(verify.load_inputs(tmp_path / "in.pt"), (x, y)))
    torch.save(x, tmp_path / "one.pt")
    assert torch.equal(verify.load_inputs(tmp_path / "one.pt")[0], x)
    torch.save({"a": x}, tmp_path / "dict.pt")
    with pytest.raises(UsageError, match="must hold a tensor or a list/tuple of tensors"):
        verify.load_inputs(tmp_path / "dict.pt")
    with pytest.raises(UsageError, match="input file not found"):
        verify.load_inputs(tmp_path / "none.pt")
    shapes = verify.parse_shapes("1x3x8x8, 4")
    assert shapes == ((1, 3, 8, 8), (4,))
    a, b = verify.make_inputs(shapes, seed=3), verify.make_inputs(shapes, seed=3)
    assert all(torch.equal(p, q) for p, q in zip(a, b)) and a[0].dtype == torch.float32
    for bad in ("1x3xa", "", "1x-2"):
        with pytest.raises(UsageError, match="bad input shape"):
            verify.parse_shapes(bad)


def test_missing_ops_are_read_from_libtorch_messages():
    assert verify.missing_ops(LOAD_ERROR) == ("aten::hardswish_",)
    assert verify.missing_ops("Following ops cannot be found: [aten::a.b, quantized::c]. Please") == (
        "aten::a.b", "quantized::c")
    assert verify.missing_ops("Unknown builtin op: aten::xyz.\nCould not find any similar ops to aten::xyz. "
                              "This op may not exist") == ("aten::xyz",)
    assert verify.missing_ops("Could not run 'aten::empty.memory_format' with arguments from the 'CPU' "
                              "backend.") == ("aten::empty.memory_format",)
    assert verify.missing_ops("shape mismatch") == ()


def test_runner_failure_names_the_op_and_the_fix(tmp_path):
    error = verify._runner_failure(tmp_path / "m.ptl", LOAD_ERROR, 3)
    assert isinstance(error, VerifyFailed) and error.exit_code == 6
    assert "aten::hardswish_" in str(error)
    assert f"builder ops {tmp_path / 'm.ptl'} -o ops.yaml" in str(error) and "--ops ops.yaml" in str(error)
    other = verify._runner_failure(tmp_path / "m.ptl", "builder-runner: forward failed: boom\nmore", 4)
    assert str(other) == "the runner failed on m.ptl: builder-runner: forward failed: boom"


def test_compare_reports_max_errors():
    a = (torch.tensor([1.0, 2.0, 4.0]),)
    assert verify.compare(a, (a[0].clone(),), verify.Tolerance()) == (0.0, 0.0)
    with pytest.raises(VerifyFailed, match=r"max abs error 0\.5, max rel error 0\.125 \(rtol 0\.0001"):
        verify.compare((torch.tensor([1.0, 2.0, 4.5]),), a, verify.Tolerance())
    assert verify.compare((torch.tensor([1.0, 2.0, 4.001]),), a, verify.Tolerance(rtol=1e-3, atol=0))[0] > 0
    with pytest.raises(VerifyFailed, match="returned 2 output tensor"):
        verify.compare(a + a, a, verify.Tolerance())
    with pytest.raises(VerifyFailed, match=r"output 0: the build gave torch.float32 \(3,\), torch torch.float32 \(1, 3\)"):
        verify.compare(a, (a[0].reshape(1, 3),), verify.Tolerance())


def test_flatten_nested_outputs():
    x, y = torch.zeros(1), torch.ones(2)
    assert verify.flatten_tensors((x, [y, (x,)])) == (x, y, x)
    with pytest.raises(VerifyFailed, match="holds a int"):
        verify.flatten_tensors((x, 3))


def test_static_install_link_line(tmp_path):
    libs = ("libtorch_cpu.a", "libtorch.a", "libc10.a", "libXNNPACK.a", "libpthreadpool.a", "libcpuinfo.a",
            "libclog.a", "libpytorch_qnnpack.a")
    install = runner_mod.find_install(make_install(tmp_path / "inst", libs, abi="1"))
    assert install.linkage == "static" and install.cxx_flags == ("-D_GLIBCXX_USE_CXX11_ABI=1",)
    args = runner_mod.link_args(install, ["-lextra"])
    lib = tmp_path / "inst/lib"
    whole = args[args.index("-Wl,--whole-archive") + 1:args.index("-Wl,--no-whole-archive")]
    assert whole == (str(lib / "libtorch_cpu.a"), str(lib / "libtorch.a"))
    group = args[args.index("-Wl,--start-group") + 1:args.index("-Wl,--end-group")]
    assert set(group) == {str(lib / n) for n in libs[2:]} | {"-lextra"}
    assert args[-3:] == ("-lpthread", "-ldl", "-lm")


def test_shared_install_link_line_and_errors(tmp_path, monkeypatch):
    install = runner_mod.find_install(make_install(tmp_path / "inst", ("libtorch_cpu.so", "libtorch.so", "libc10.so")))
    assert install.linkage == "shared" and install.cxx_flags == ()
    args = runner_mod.link_args(install)
    assert "-ltorch_cpu" in args and f"-Wl,-rpath,{tmp_path / 'inst/lib'}" in args
    with pytest.raises(UsageError, match="pass --build DIR or set BUILDER_REAL_INSTALL"):
        runner_mod.find_install(None)
    assert runner_mod.find_install(tmp_path / "inst").root == tmp_path / "inst"
    with pytest.raises(UsageError, match="import.h is missing"):
        runner_mod.find_install(tmp_path)
    empty = make_install(tmp_path / "empty", ())
    with pytest.raises(UsageError, match="no libtorch_cpu.a or libtorch_cpu.so"):
        runner_mod.find_install(empty)


def test_compile_runner_dry_run_starts_nothing(tmp_path, caplog):
    import logging

    install = runner_mod.find_install(make_install(tmp_path / "inst", ("libtorch_cpu.a", "libc10.a")))
    with caplog.at_level(logging.DEBUG, logger="builder"):
        runner = runner_mod.compile_runner(install, tmp_path / "work", cxx="/usr/bin/c++", dry_run=True)
    assert runner.command[0] == "/usr/bin/c++" and str(runner_mod.RUNNER_SOURCE) in runner.command
    assert "-Wl,--whole-archive" in runner.command and not runner.cached
    assert "runner.cpp" in caplog.text


def test_runner_source_is_shipped_and_cxx14_clean():
    text = runner_mod.RUNNER_SOURCE.read_text()
    assert "torch::jit::_load_for_mobile" in text and "BUILDER-TENSORS 1" in text
    for newer in ("std::optional", "std::string_view", "if constexpr", "[[nodiscard]]", "std::filesystem"):
        assert newer not in text


def test_trace_refuses_a_build_made_with_an_op_list(tmp_path):
    build = tmp_path / "build"
    (build / "install").mkdir(parents=True)
    verify.check_traceable(build / "install", "v2.6.0")             # no CMakeCache.txt: cannot tell, trusted
    (build / "CMakeCache.txt").write_text("SELECTED_OP_LIST:STRING=\nTRACING_BASED:BOOL=OFF\n")
    verify.check_traceable(build / "install", "v2.6.0")             # a full build
    (build / "CMakeCache.txt").write_text("SELECTED_OP_LIST:STRING=/x/ops.yaml\nTRACING_BASED:BOOL=OFF\n")
    with pytest.raises(UsageError, match=r"--trace needs a full build.*SELECTED_OP_LIST=/x/ops.yaml") as info:
        verify.check_traceable(build / "install", "v2.6.0")
    assert "builder host --tag v2.6.0" in (info.value.hint or "")
