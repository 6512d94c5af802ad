"""builder.models.ops: op lists of real (small) models, merging, formats, validation against a release."""
from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest
import torch
import torch.jit.mobile
import yaml

from builder.errors import UsageError, ValidationErrors
from builder.models import ops
from tests.fixtures.nets import ConvNet

REAL_TREE = Path(os.environ.get("BUILDER_REAL_TREE", "/opt/realtorch/pytorch-1.13.1"))
pytestmark = [pytest.mark.filterwarnings("ignore::DeprecationWarning"),
              pytest.mark.filterwarnings("ignore::UserWarning")]
needs_real_tree = pytest.mark.skipif(not (REAL_TREE / ops.NATIVE_FUNCTIONS).is_file(),
                                     reason=f"no PyTorch v1.13.1 tree at {REAL_TREE} (set BUILDER_REAL_TREE)")


class LSTMNet(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lstm = torch.nn.LSTM(4, 8, batch_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.lstm(x)
        return out


def scripted(name: str) -> torch.jit.ScriptModule:
    torch.manual_seed(0)
    if name == "conv":
        return torch.jit.script(ConvNet().eval())
    if name == "lstm":
        return torch.jit.script(LSTMNet().eval())
    return torch.jit.script(torch.ao.nn.quantized.dynamic.Linear(4, 3))


def save(module: torch.jit.ScriptModule, path: Path, lite: bool = False) -> Path:
    if lite:
        module._save_for_lite_interpreter(str(path))
    else:
        module.save(str(path))
    return path


def make_release(root: Path, *, jit_sources: bool = True) -> Path:
    """A tiny stand-in PyTorch tree: native_functions.yaml and (optionally) a register_prim_ops.cpp."""
    native = root / ops.NATIVE_FUNCTIONS
    native.parent.mkdir(parents=True)
    funcs = ["conv2d(Tensor input, Tensor weight) -> Tensor", "conv3d(Tensor input) -> Tensor",
             "relu(Tensor self) -> Tensor", "linear(Tensor input, Tensor weight) -> Tensor",
             "flatten.using_ints(Tensor(a) self, int start_dim=0) -> Tensor(a)",
             "adaptive_avg_pool2d(Tensor self, SymInt[2] output_size) -> Tensor",
             "gt.Tensor(Tensor self, Tensor other) -> Tensor", "size.int(Tensor self, int dim) -> int"]
    native.write_text("".join(f"- func: {f}\n  variants: function\n\n" for f in funcs)
                      + "#- func: commented_out(Tensor self) -> Tensor\n")
    if jit_sources:
        prim = root / "torch/csrc/jit/runtime/register_prim_ops.cpp"
        prim.parent.mkdir(parents=True)
        prim.write_text('OperatorGeneratorArgs(\n    TORCH_SELECTIVE_SCHEMA("aten::len.t(t[] a) -> int"),\n'
                        '    TORCH_SELECTIVE_SCHEMA("aten::size(Tensor self) -> int[]"),\n'
                        '    TORCH_SELECTIVE_SCHEMA("prim::TupleUnpack(Any tup) -> ..."),\n'
                        "    DEFINE_COMPARISON_OP(aten::gt, a > b),\n")
        lib = root / "aten/src/ATen/native/quantized/library.cpp"
        lib.parent.mkdir(parents=True)
        lib.write_text('m.def(TORCH_SELECTIVE_SCHEMA("quantized::linear_dynamic(Tensor X) -> Tensor Y"));\n')
    return root


@pytest.mark.parametrize("name", ["conv", "lstm", "qlinear"])
def test_op_list_equals_export_opnames_for_pt_and_ptl(tmp_path, name):
    module = scripted(name)
    expected = frozenset(torch.jit.export_opnames(module))
    assert ops.model_ops(save(module, tmp_path / "m.pt")) == expected
    assert ops.model_ops(save(module, tmp_path / "m.ptl", lite=True)) == expected
    assert ops.module_ops(module) == expected
    if name == "qlinear":
        assert "quantized::linear_dynamic" in expected


def test_merging_two_models_is_the_union_with_users(tmp_path):
    conv = save(scripted("conv"), tmp_path / "conv.pt")
    lstm = save(scripted("lstm"), tmp_path / "lstm.ptl", lite=True)
    merged = ops.collect_ops([conv, lstm])
    assert set(merged.names) == ops.model_ops(conv) | ops.model_ops(lstm)
    assert list(merged.names) == sorted(merged.names)
    assert merged.models == (str(conv), str(lstm))
    assert merged.models_for("aten::conv2d") == (str(conv),)
    assert merged.models_for("aten::size") == (str(conv), str(lstm))
    again = ops.OpList.from_names(["aten::relu"], "a").merge(ops.OpList.from_names(["aten::relu", "x::y"], "b"))
    assert again.ops == (ops.OpUse("aten::relu", ("a", "b")), ops.OpUse("x::y", ("b",)))


def test_collect_errors_are_one_line(tmp_path):
    with pytest.raises(UsageError, match="no model given"):
        ops.collect_ops([])
    with pytest.raises(UsageError, match="model file not found"):
        ops.model_ops(tmp_path / "missing.pt")
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a model")
    with pytest.raises(UsageError, match="not a TorchScript"):
        ops.model_ops(junk)


def test_plain_format_is_a_yaml_list_with_models_in_comments(tmp_path):
    oplist = ops.collect_ops([save(scripted("conv"), tmp_path / "conv.pt")])
    out = ops.write_op_list(oplist, tmp_path / "out" / "ops.yaml")
    text = out.read_text()
    assert yaml.safe_load(text) == list(oplist.names)
    assert "- aten::conv2d" in text and f"# {tmp_path / 'conv.pt'}" in text
    assert [p.name for p in out.parent.iterdir()] == ["ops.yaml"]  # no temp file left
    assert ops.read_op_list(out).names == oplist.names


def test_tracing_format_matches_the_selective_build_schema(tmp_path, caplog):
    from torchgen.selective_build.selector import SelectiveBuilder

    oplist = ops.collect_ops([save(scripted("conv"), tmp_path / "conv.pt")])
    with caplog.at_level(logging.WARNING, logger="builder"):
        out = ops.write_op_list(oplist, tmp_path / "traced.yaml", fmt="tracing")
    assert "root operators only" in caplog.text
    data = yaml.safe_load(out.read_text())
    assert set(data) == {"include_all_non_op_selectives", "include_all_operators", "operators"}
    assert set(data["operators"]) == set(oplist.names)
    for info in data["operators"].values():
        assert info["include_all_overloads"] is False and info["is_root_operator"] is True
    selector = SelectiveBuilder.from_yaml_dict(data)
    assert selector.is_operator_selected("aten::flatten.using_ints")
    assert not selector.is_operator_selected("aten::flatten.DimnameList")
    assert ops.read_op_list(out).names == oplist.names
    with pytest.raises(UsageError, match="did you mean tracing"):
        ops.format_op_list(oplist, "tracng")  # type: ignore[arg-type]


def test_misspelled_operator_in_a_hand_written_list_gets_a_close_match(tmp_path):
    release = make_release(tmp_path / "pytorch")
    hand = tmp_path / "ops.yaml"
    hand.write_text("- aten::conv2dd\n- aten::relu\n- aten::len.t\n")
    known = ops.load_known_ops(release)
    with pytest.raises(UsageError) as info:
        ops.validate_ops(ops.read_op_list(hand).names, known)
    assert "unknown operator aten::conv2dd" in str(info.value)
    assert "did you mean aten::conv2d" in str(info.value)
    assert "\n" not in str(info.value)


def test_all_unknown_operators_are_reported_at_once(tmp_path):
    known = ops.load_known_ops(make_release(tmp_path / "pytorch"))
    with pytest.raises(ValidationErrors) as info:
        ops.validate_ops(["aten::relu", "aten::reluu", "aten::len.tt"], known)
    assert [p.message.split(" (")[0] for p in info.value.problems] == [
        "unknown operator aten::reluu", "unknown operator aten::len.tt"]


def test_jit_builtins_and_custom_ops_are_accepted(tmp_path):
    known = ops.load_known_ops(make_release(tmp_path / "pytorch"))
    conv_ops = ops.module_ops(scripted("conv"))  # includes aten::len.t, aten::gt.int, aten::size
    assert ops.validate_ops(conv_ops, known) == ()
    assert ops.validate_ops(["quantized::linear_dynamic", "prim::TupleUnpack", "aten::size.int"], known) == ()
    assert ops.validate_ops(["my_ns::fancy"], known, custom_ops=["my_ns::fancy"]) == ()
    with pytest.raises(UsageError, match="unknown operator my_ns::fancy"):
        ops.validate_ops(["my_ns::fancy"], known)
    with pytest.raises(UsageError, match="not an operator name"):
        ops.validate_ops([], known, custom_ops=["fancy"])


def test_without_jit_sources_builtins_pass_with_a_warning_but_near_misses_fail(tmp_path, caplog):
    known = ops.load_known_ops(make_release(tmp_path / "pytorch", jit_sources=False))
    assert not known.has_jit_sources
    with caplog.at_level(logging.WARNING, logger="builder"):
        warnings = ops.validate_ops(["aten::len.t", "aten::gt.int", "aten::relu"], known)
    assert len(warnings) == 1 and "aten::len.t, aten::gt.int" in warnings[0]
    assert "accepted without checking" in caplog.text
    with pytest.raises(UsageError, match="did you mean aten::conv2d"):
        ops.validate_ops(["aten::conv2dd"], known)


@pytest.mark.parametrize("content, message", [
    ("{a: 1}", "must be a YAML list of operator names"),
    ("- 1\n- 2\n", "must be a YAML list of operator names"),
    ("- aten::relu\n- [oops\n", "is not valid YAML"),
    ("- conv2d\n", "not an operator name: 'conv2d'"),
    ("", "must be a YAML list"),
])
def test_read_op_list_rejects_bad_files_in_one_line(tmp_path, content, message):
    path = tmp_path / "ops.yaml"
    path.write_text(content)
    with pytest.raises(UsageError, match=message) as info:
        ops.read_op_list(path)
    assert "\n" not in str(info.value)
    with pytest.raises(UsageError, match="op list not found"):
        ops.read_op_list(tmp_path / "nope.yaml")


def test_registered_names_reads_schemas_prefixes_and_macros():
    source = ('TORCH_SELECTIVE_SCHEMA(\n "aten::__contains__.int_list(int[] l) -> bool"),\n'
              'TORCH_SELECTIVE_SCHEMA("aten::__contains__." key_type "(Dict(" ...\n'
              'mobile::prim_op_fn_register("prim::TupleIndex", tupleIndex),\n'
              'DEFINE_INT_OP(aten::gcd, gcd(a, b)),\nTORCH_CHECK(false, "aten::foo is not supported")\n')
    exact, prefixes = ops.registered_names(source)
    assert exact == {"aten::__contains__.int_list", "prim::TupleIndex"}
    assert prefixes == {"aten::__contains__", "aten::gcd"}


@pytest.mark.real_pytorch
@needs_real_tree
def test_real_v1_13_1_knows_every_operator_of_the_test_models():
    known = ops.load_known_ops(REAL_TREE)
    assert known.has_jit_sources and len(known.native) > 2000
    for name in ("conv", "lstm", "qlinear"):
        assert ops.validate_ops(ops.module_ops(scripted(name)), known) == (), name
    with pytest.raises(UsageError, match="did you mean aten::conv2d"):
        ops.validate_ops(["aten::conv2dd"], known)
    assert ops.tracing_supported(REAL_TREE)


def test_read_op_list_can_insist_on_a_format(tmp_path):
    oplist = ops.OpList.from_names(["aten::relu"], "m.pt")
    plain = ops.write_op_list(oplist, tmp_path / "plain.yaml")
    traced = ops.write_op_list(oplist, tmp_path / "traced.yaml", fmt="tracing")
    assert ops.read_op_list(plain, expect="plain").names == ("aten::relu",)
    assert ops.read_op_list(traced, expect="tracing").names == ("aten::relu",)
    with pytest.raises(UsageError, match="is a tracing op list, but this build needs a plain one"):
        ops.read_op_list(traced, expect="plain")
    with pytest.raises(UsageError, match="is a plain op list, but this build needs a tracing one"):
        ops.read_op_list(plain, expect="tracing")


def test_bare_names_of_jit_builtins_get_a_warning(tmp_path):
    known = ops.load_known_ops(make_release(tmp_path / "pytorch"))
    warnings = ops.validate_ops(["aten::len", "aten::gt", "aten::relu", "aten::conv2d"], known)
    assert len(warnings) == 1 and warnings[0].startswith("no overload name on aten::len, aten::gt:")


def test_traced_operators_are_written_as_called_and_read_back(tmp_path, caplog):
    from torchgen.selective_build.selector import SelectiveBuilder

    roots = ops.OpList.from_names(["aten::conv2d", "aten::relu"], "m.ptl")
    called = ops.OpList.from_names(["aten::convolution", "aten::relu", "aten::_convolution"], "m.ptl", root=False)
    merged = ops.merge_op_lists([roots, called])
    assert merged.traced == ("aten::_convolution", "aten::convolution")   # relu stays a root operator
    with caplog.at_level(logging.WARNING, logger="builder"):
        out = ops.write_op_list(merged, tmp_path / "traced.yaml", fmt="tracing")
    assert "root operators only" not in caplog.text
    text = out.read_text()
    assert "2 root operators and 2 they call" in text
    data = yaml.safe_load(text)
    assert data["operators"]["aten::convolution"]["is_root_operator"] is False
    assert data["operators"]["aten::conv2d"]["is_root_operator"] is True
    assert SelectiveBuilder.from_yaml_dict(data).is_operator_selected("aten::_convolution")
    back = ops.read_op_list(out)
    assert back.names == merged.names and back.traced == merged.traced
    assert ops.load_op_list(out)[1] == "tracing"
    plain = ops.write_op_list(roots, tmp_path / "plain.yaml")
    assert ops.load_op_list(plain)[1] == "plain"
    (tmp_path / "bad.yaml").write_text("{")
    with pytest.raises(UsageError, match="not valid YAML"):      # no format: the build reports why
        ops.load_op_list(tmp_path / "bad.yaml")


def test_op_list_digest_is_what_the_build_reads(tmp_path):
    """Comments and debug_info (model paths) do not count; the operators and their flags do."""
    from builder.models.ops import op_list_digest

    a, b, c = tmp_path / "a.yaml", tmp_path / "b.yaml", tmp_path / "c.yaml"
    a.write_text("# Models: /abs/model.pt\n- aten::relu  # /abs/model.pt\n- aten::add.Tensor\n")
    b.write_text("- aten::add.Tensor  # model/model.pt\n- aten::relu\n")
    c.write_text("- aten::relu\n")
    assert op_list_digest(a) == op_list_digest(b) != op_list_digest(c)
    t1, t2 = tmp_path / "t1.yaml", tmp_path / "t2.yaml"
    op = {"include_all_overloads": False, "is_root_operator": True, "is_used_for_training": False}
    t1.write_text(yaml.safe_dump({"operators": {"aten::relu": {**op, "debug_info": ["/x/m.pt"]}}}))
    t2.write_text(yaml.safe_dump({"operators": {"aten::relu": {**op, "debug_info": ["m.pt"]}}}))
    assert op_list_digest(t1) == op_list_digest(t2)
    t2.write_text(yaml.safe_dump({"operators": {"aten::relu": {**op, "include_all_overloads": True}}}))
    assert op_list_digest(t1) != op_list_digest(t2)


def test_ops_command_adds_operators_named_with_op(cli_env, tmp_path):
    from typer.testing import CliRunner

    from builder.cli import app

    model = save(scripted("conv"), tmp_path / "conv.pt")
    res = CliRunner().invoke(app, ["ops", str(model), "--op", "aten::ones", "--op", "aten::fill_.Scalar",
                                   "-o", str(tmp_path / "ops.yaml")])
    assert res.exit_code == 0, res.output
    names = yaml.safe_load((tmp_path / "ops.yaml").read_text())
    assert {"aten::conv2d", "aten::ones", "aten::fill_.Scalar"} <= set(names)
    bad = CliRunner().invoke(app, ["ops", str(model), "--op", "ones"])
    assert bad.exit_code == 2 and "--op: not an operator name: 'ones'" in bad.output and "Traceback" not in bad.output
