"""builder.models.verify for real: compile the C++ runner, run models, compare with torch.

Two installs:
* $BUILDER_REAL_INSTALL: a real PyTorch (e.g. v1.13.1 host mobile) install with static libs;
  skipped when unset.
* the installed torch wheel's own folder (include/ + lib/libtorch_cpu.so): always there where torch is,
  so the runner, the tensor exchange and the error paths are exercised on every run.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import torch
import torch.jit.mobile

from builder import proc
from builder.errors import VerifyFailed
from builder.models import export, ops, verify
from builder.models import runner as runner_mod

pytestmark = [pytest.mark.integration,
              pytest.mark.filterwarnings("ignore::DeprecationWarning"),
              pytest.mark.filterwarnings("ignore::UserWarning"),
              pytest.mark.skipif(proc.which("c++") is None, reason="no C++ compiler")]

ROOT = Path(__file__).resolve().parents[2]
REAL_TREE = Path(os.environ.get("BUILDER_REAL_TREE", "/opt/realtorch/pytorch-1.13.1"))
V1_13_1 = export.ExportTarget(bytecode_max=9)


class ConvNet(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3)
        self.fc = torch.nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        y = torch.relu(self.conv(x))
        return self.fc(torch.nn.functional.adaptive_avg_pool2d(y, 1).flatten(1)), y


class UsesCustomOp(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.ops.builder_test.scale2(x) + 1


@pytest.fixture(scope="module")
def wheel_runner(tmp_path_factory) -> verify.Runner:
    install = runner_mod.find_install(Path(torch.__file__).parent)
    return runner_mod.compile_runner(install, tmp_path_factory.mktemp("runner"))


@pytest.fixture(scope="module")
def real_runner(tmp_path_factory) -> verify.Runner:
    if not os.environ.get(runner_mod.INSTALL_ENV):
        pytest.skip(f"no real PyTorch host install: set {runner_mod.INSTALL_ENV} to its install dir")
    return runner_mod.compile_runner(runner_mod.find_install(Path(os.environ[runner_mod.INSTALL_ENV])), tmp_path_factory.mktemp("real-runner"))


def _conv_ptl(tmp_path: Path) -> Path:
    torch.manual_seed(0)
    return export.export_model(ConvNet(), tmp_path / "conv.ptl", V1_13_1, optimize=False).output


def test_conv_net_matches_torch_on_the_wheel_build(tmp_path, wheel_runner):
    model = _conv_ptl(tmp_path)
    result = verify.verify_model(model, wheel_runner, verify.make_inputs([(1, 3, 8, 8)], seed=1), tmp_path / "w")
    assert result.outputs == ((1, 2), (1, 4, 6, 6))
    assert result.max_abs_error <= 1e-5 and result.forward_ms is not None
    again = runner_mod.compile_runner(wheel_runner.install, wheel_runner.path.parent)
    assert again.cached and again.path == wheel_runner.path


def test_trace_records_the_operators_the_root_operators_call(tmp_path, wheel_runner):
    from builder.models import ops

    model = _conv_ptl(tmp_path)
    traced = verify.trace_ops(wheel_runner, model, verify.make_inputs([(1, 3, 8, 8)], seed=1), tmp_path / "t")
    roots = ops.model_ops(model)
    assert "aten::convolution" in traced and "aten::conv2d" in traced     # conv2d calls convolution
    assert "aten::convolution" not in roots
    assert all("::" in name for name in traced)


def test_missing_operator_is_named_with_the_fix(tmp_path, wheel_runner):
    lib = torch.library.Library("builder_test", "DEF")  # exists in this Python, not in the C++ build
    lib.define("scale2(Tensor x) -> Tensor")
    lib.impl("scale2", lambda x: x * 2, "CPU")
    model = tmp_path / "custom.ptl"
    export.export_model(UsesCustomOp(), model, V1_13_1, optimize=False)
    with pytest.raises(VerifyFailed) as info:
        verify.verify_model(model, wheel_runner, (torch.ones(3),), tmp_path / "w")
    message = str(info.value)
    assert "builder_test::scale2" in message and "builder ops" in message and "--ops ops.yaml" in message


def test_mismatch_reports_max_errors(tmp_path, wheel_runner, monkeypatch):
    model = _conv_ptl(tmp_path)
    real = verify.reference_outputs
    monkeypatch.setattr(verify, "reference_outputs", lambda m, x: tuple(t + 0.5 for t in real(m, x)))
    with pytest.raises(VerifyFailed, match=r"outputs differ from torch: max abs error 0\.5"):
        verify.verify_model(model, wheel_runner, verify.make_inputs([(1, 3, 8, 8)]), tmp_path / "w")


@pytest.mark.real_pytorch
def test_real_install_runs_conv_and_mobilenet(tmp_path, real_runner):
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import mobilenet_model
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    summary = mobilenet_model.write_all(tmp_path / "mnv2", size=96, width=0.5, num_classes=10)
    assert int(summary["bytecode_version"]) <= 8  # type: ignore[call-overload]
    inputs = verify.load_inputs(Path(str(summary["inputs"])))
    result = verify.verify_model(Path(str(summary["ptl"])), real_runner, inputs, tmp_path / "w",
                                 verify.Tolerance(rtol=1e-3, atol=1e-4))
    assert result.outputs == ((1, 10),)
    conv = verify.verify_model(_conv_ptl(tmp_path), real_runner, verify.make_inputs([(1, 3, 8, 8)]), tmp_path / "w")
    assert conv.outputs == ((1, 2), (1, 4, 6, 6))


@pytest.mark.real_pytorch
@pytest.mark.skipif(not (REAL_TREE / "tools/code_analyzer/gen_oplist.py").is_file(), reason="no v1.13.1 tree")
def test_v1_13_1_codegen_accepts_both_formats(tmp_path):
    """The release's own scripts read what we write (run as CMake runs them, from the tree's root)."""
    torch.manual_seed(0)
    conv = tmp_path / "conv.pt"
    torch.jit.script(ConvNet()).save(str(conv))
    oplist = ops.collect_ops([conv])
    plain = ops.write_op_list(oplist, tmp_path / "plain.yaml")
    traced = ops.write_op_list(oplist, tmp_path / "traced.yaml", fmt="tracing")
    (tmp_path / "p").mkdir()
    (tmp_path / "t").mkdir()
    proc.run([sys.executable, "-m", "tools.lite_interpreter.gen_selected_mobile_ops_header",
              "--yaml_file_path", plain, "--output_file_path", tmp_path / "p"], cwd=REAL_TREE)
    header = (tmp_path / "p/selected_mobile_ops.h").read_text()
    assert "#define TORCH_OPERATOR_WHITELIST " + ";".join(oplist.names) + ";" in header
    proc.run([sys.executable, "-m", "tools.code_analyzer.gen_oplist", "--model_file_list_path", traced,
              "--output_dir", tmp_path / "t"], cwd=REAL_TREE)
    header = (tmp_path / "t/selected_mobile_ops.h").read_text()
    assert "#define TORCH_OPERATOR_WHITELIST " + ";".join(oplist.names) + ";" in header


def test_model_shortcut_verifies_each_model_after_a_host_build(tmp_path):
    """`builder host --model`'s verify step on an install (the torch wheel's, shared): a .pt is exported for the
    release first, then run and compared; the build's levers choose the link (none here: whole-archive)."""
    from builder.execute import run_verify
    from builder.recipes import load_recipe
    from builder.steps import VerifyStep

    torch.manual_seed(0)
    pt = tmp_path / "conv.pt"
    torch.jit.script(ConvNet().eval()).save(str(pt))
    step = VerifyStep(title="verify", install_dir=Path(torch.__file__).parent, models=(pt,), shapes="1x3x8x8",
                      link_mode="whole-archive", link_flags=(), work_dir=tmp_path / "cache" / "verify")
    (line,) = run_verify(step, load_recipe("v1.13.1"))
    assert line.startswith("verified conv.pt: 2 output(s) match torch")
