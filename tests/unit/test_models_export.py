"""builder.models.export: lite-interpreter files a release can load, backport, optimize_for_mobile errors."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
import torch.jit.mobile

from builder.errors import UsageError
from builder.models import export
from tests.fixtures.nets import ConvNet

pytestmark = [pytest.mark.filterwarnings("ignore::DeprecationWarning"),
              pytest.mark.filterwarnings("ignore::UserWarning")]

REAL_TREE = Path(os.environ.get("BUILDER_REAL_TREE", "/opt/realtorch/pytorch-1.13.1"))
V1_13_1 = export.ExportTarget(bytecode_max=9, backends=frozenset({"cpu", "vulkan", "metal"}), bytecode_min=4)


def v1_13_1_max() -> int:
    """The loader's limit read from the real tree when present, else the recipe's value."""
    if (REAL_TREE / "caffe2/serialize/versions.h").is_file():
        return export.read_bytecode_limits(REAL_TREE).max_supported
    return V1_13_1.bytecode_max


def test_export_module_loads_in_the_lite_interpreter_within_v1_13_1(tmp_path):
    torch.manual_seed(0)
    module = ConvNet().eval()
    out = tmp_path / "out" / "conv.ptl"
    result = export.export_model(module, out, V1_13_1, optimize=False)
    assert result.output == out and out.is_file()
    assert [p.name for p in out.parent.iterdir()] == ["conv.ptl"]  # temp files renamed / removed
    assert result.bytecode_version == torch.jit.mobile._get_model_bytecode_version(str(out))
    assert 4 <= result.bytecode_version <= v1_13_1_max()
    assert not result.optimized and result.torch_version == torch.__version__
    lite = torch.jit.mobile._load_for_lite_interpreter(str(out))
    x = torch.rand(1, 3, 8, 8)
    torch.testing.assert_close(lite(x), module(x))
    assert set(result.ops) == set(torch.jit.export_opnames(torch.jit.script(module)))


def test_export_from_a_pt_file_and_traced_module(tmp_path):
    module = ConvNet().eval()
    pt = tmp_path / "conv.pt"
    torch.jit.script(module).save(str(pt))
    assert export.export_model(pt, tmp_path / "a.ptl", V1_13_1, optimize=False).output.is_file()
    traced = export.export_model(module, tmp_path / "b.ptl", V1_13_1, optimize=False,
                                 example_inputs=(torch.rand(1, 3, 8, 8),))
    assert "aten::conv2d" in traced.ops or "aten::_convolution" in traced.ops
    with pytest.raises(UsageError, match="already a lite-interpreter file"):
        export.export_model(tmp_path / "a.ptl", tmp_path / "c.ptl", V1_13_1, optimize=False)


def test_backport_to_an_older_release(tmp_path):
    target = export.ExportTarget(bytecode_max=7)
    result = export.export_model(ConvNet(), tmp_path / "v7.ptl", target, optimize=False)
    assert result.bytecode_version == 7 and result.backported
    assert result.torch_bytecode_version > 7
    assert export.bytecode_version(tmp_path / "v7.ptl") == 7
    torch.jit.mobile._load_for_lite_interpreter(str(tmp_path / "v7.ptl"))


def test_backport_impossible_is_a_clear_usage_error(tmp_path):
    target = export.ExportTarget(bytecode_max=3, bytecode_min=3)
    with pytest.raises(UsageError, match=r"cannot backport bytecode v\d+ to v3") as info:
        export.export_model(ConvNet(), tmp_path / "v3.ptl", target, optimize=False)
    assert "\n" not in str(info.value)
    assert list(tmp_path.iterdir()) == []


def _has_xnnpack() -> bool:
    import warnings

    from torch.utils.mobile_optimizer import optimize_for_mobile

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            optimize_for_mobile(torch.jit.script(ConvNet().eval()))
        except RuntimeError:
            return False
    return True


@pytest.mark.skipif(_has_xnnpack(), reason="this torch has XNNPACK: optimize_for_mobile works")
def test_optimize_without_xnnpack_is_one_line_offering_no_optimize(tmp_path):
    with pytest.raises(UsageError) as info:
        export.export_model(ConvNet(), tmp_path / "o.ptl", V1_13_1, optimize=True)
    message = str(info.value)
    assert "XNNPACK" in message and "--no-optimize" in message and "\n" not in message
    assert "Traceback" not in message and "INTERNAL ASSERT" not in message
    assert list(tmp_path.iterdir()) == []


def test_xnnpack_error_path_when_forced(tmp_path, monkeypatch):
    import torch.utils.mobile_optimizer as mo

    def broken(*args, **kwargs):
        raise RuntimeError('false INTERNAL ASSERT FAILED at "xnnpack_rewrite.cpp":506\n'
                           "Mobile optimization only available with XNNPACK at the moment.")

    monkeypatch.setattr(mo, "optimize_for_mobile", broken)
    with pytest.raises(UsageError, match="needs XNNPACK.*--no-optimize"):
        export.export_model(ConvNet(), tmp_path / "o.ptl", V1_13_1, optimize=True)
    # not asked for explicitly: the file is written unoptimized and the result says why
    result = export.export_model(ConvNet(), tmp_path / "o.ptl", V1_13_1)
    assert result.output.is_file() and not result.optimized and "XNNPACK" in result.not_optimized
    with pytest.raises(UsageError, match="needs XNNPACK"):          # other backends always need optimize_for_mobile
        export.export_model(ConvNet(), tmp_path / "v.ptl", V1_13_1, backend="vulkan")


def test_other_optimize_failures_are_one_line(tmp_path, monkeypatch):
    import torch.utils.mobile_optimizer as mo

    monkeypatch.setattr(mo, "optimize_for_mobile", lambda *a, **k: (_ for _ in ()).throw(
        RuntimeError("\nUnknown custom class type vulkan.LayernormPackedContext.\n  graph(...)")))
    with pytest.raises(UsageError, match=r"backend=Vulkan\) needs a torch built with Vulkan") as info:
        export.export_model(ConvNet(), tmp_path / "o.ptl", V1_13_1, backend="vulkan")
    assert "\n" not in str(info.value)


def test_backend_checks(tmp_path):
    with pytest.raises(UsageError, match="did you mean vulkan"):
        export.export_model(ConvNet(), tmp_path / "o.ptl", V1_13_1, backend="vulkn")
    with pytest.raises(UsageError, match="no metal backend"):
        export.export_model(ConvNet(), tmp_path / "o.ptl", export.ExportTarget(9), backend="metal")
    with pytest.raises(UsageError, match="drop --no-optimize"):
        export.export_model(ConvNet(), tmp_path / "o.ptl", V1_13_1, backend="vulkan", optimize=False)
    with pytest.raises(UsageError, match="cannot export a dict"):
        export.export_model({}, tmp_path / "o.ptl", V1_13_1, optimize=False)


def test_read_bytecode_limits(tmp_path):
    header = tmp_path / "caffe2/serialize/versions.h"
    header.parent.mkdir(parents=True)
    header.write_text("constexpr uint64_t kProducedBytecodeVersion = 0x8L;\n"
                      "constexpr uint64_t kMinSupportedBytecodeVersion = 0x4L;\n"
                      "constexpr uint64_t kMaxSupportedBytecodeVersion = 0x9L;\n")
    assert export.read_bytecode_limits(tmp_path) == export.BytecodeLimits(4, 9, 8)
    with pytest.raises(UsageError, match="not a PyTorch checkout"):
        export.read_bytecode_limits(tmp_path / "nowhere")


@pytest.mark.real_pytorch
@pytest.mark.skipif(not (REAL_TREE / "caffe2/serialize/versions.h").is_file(), reason="no v1.13.1 tree")
def test_real_v1_13_1_limits():
    assert export.read_bytecode_limits(REAL_TREE) == export.BytecodeLimits(4, 9, 8)


def test_unexpected_optimize_failure_is_one_line(tmp_path, monkeypatch):
    import torch.utils.mobile_optimizer as mo

    def broken(*args, **kwargs):
        raise RuntimeError("\nsomething odd happened:\n  graph(%x)\n")

    monkeypatch.setattr(mo, "optimize_for_mobile", broken)
    with pytest.raises(UsageError, match=r"backend=CPU\) failed in torch .*: something odd happened; "
                                         r"export without it: --no-optimize$") as info:
        export.export_model(ConvNet(), tmp_path / "o.ptl", V1_13_1)
    assert "\n" not in str(info.value)
