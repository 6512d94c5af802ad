"""CLI edge: one-line messages, exit code 2, no traceback, for bad input (in-process, no processes)."""
from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from builder.cli import app

runner = CliRunner()



@pytest.mark.parametrize("args, fragment", [
    (["android", "--tag", "v1.13.2"], "did you mean v1.13.1"),
    (["android", "--abi", "arm64"], "did you mean arm64-v8a"),
    (["android", "--abi", "x86", "--abi", "x86"], "given twice"),
    (["android", "--metal"], "not available for android"),
    (["ios", "--vulkan"], "not available for ios"),
    (["android", "--ops", "missing.yaml"], "missing.yaml"),
    (["android", "--tag", "v1.2.0", "--vulkan"], "v1.2.0 has no vulkan"),
    (["host", "--tag", "v1.7.1", "--lite"], "v1.7.1 has no lite interpreter"),
    (["android", "--ndk", "r25c"], "not installed"),
    (["android", "-D", "NOEQUALS"], "expected KEY=VALUE"),
])
def test_bad_input_is_one_message_exit_2(cli_env, args, fragment):
    res = runner.invoke(app, [*args, "--dry-run"])
    assert res.exit_code == 2, res.output
    assert fragment in res.output
    assert "Traceback" not in res.output


def test_unknown_option_is_exit_2(cli_env):
    res = runner.invoke(app, ["android", "--frobnicate"])
    assert res.exit_code == 2 and "No such option" in res.output


def test_ios_build_refused_on_linux_but_plan_works(cli_env):
    assert runner.invoke(app, ["ios", "--dry-run"]).exit_code == 0
    res = runner.invoke(app, ["ios"])
    assert res.exit_code == 2 and "macOS" in res.output


def test_dry_run_json(cli_env):
    import json

    res = runner.invoke(app, ["android", "--abi", "arm64-v8a", "--json"])
    assert res.exit_code == 0
    assert json.loads(res.stdout)["slices"][0]["name"] == "arm64-v8a"


def test_recipes_list_json(cli_env):
    import json

    res = runner.invoke(app, ["recipes", "list", "--json"])
    rows = {r["tag"]: r for r in json.loads(res.stdout)}
    assert {"v1.2.0", "v1.13.1", "v2.1.2", "v2.6.0"} <= set(rows)
    assert (rows["v2.6.0"]["facts"], rows["v2.1.2"]["facts"]) == ("real_tree", "reconstructed")
    assert [t for t, r in rows.items() if r["default"]] == ["v1.13.1"]


def test_recipes_list_and_show_say_where_the_facts_come_from(cli_env):
    listing = runner.invoke(app, ["recipes", "list"], env={"COLUMNS": "200"})
    assert listing.exit_code == 0 and "real tree" in listing.output and "RECONSTRUCTED" in listing.output
    shown = runner.invoke(app, ["recipes", "show", "v2.6.0"], env={"COLUMNS": "200"})
    assert "facts: read from the real tree (Debian trixie" in shown.output
    assert "facts: RECONSTRUCTED" in runner.invoke(app, ["recipes", "show", "v2.1.2"]).output


def test_model_shortcut_puts_the_models_operators_in_the_plan(cli_env):
    import json

    import torch
    import yaml

    class Net(torch.nn.Module):
        def forward(self, x):
            return torch.relu(x) + 1

    torch.jit.script(Net()).save(str(cli_env.cwd / "net.pt"))
    res = runner.invoke(app, ["host", "--model", "net.pt", "--json"])
    assert res.exit_code == 0, res.output
    ops_path = json.loads(res.stdout)["slices"][0]["defines"]["SELECTED_OP_LIST"]
    assert set(yaml.safe_load(Path(ops_path).read_text())) == set(torch.jit.export_opnames(torch.jit.script(Net())))
    again = runner.invoke(app, ["host", "--model", "net.pt", "--json"])
    assert json.loads(again.stdout)["slices"][0]["defines"]["SELECTED_OP_LIST"] == ops_path   # same key


def test_op_adds_operators_to_the_model_list_and_to_an_ops_file(cli_env):
    import json

    import torch
    import yaml

    class Net(torch.nn.Module):
        def forward(self, x):
            return torch.relu(x)

    torch.jit.script(Net()).save(str(cli_env.cwd / "net.pt"))
    res = runner.invoke(app, ["host", "--model", "net.pt", "--op", "aten::ones", "--op", "aten::fill_.Scalar", "--json"])
    assert res.exit_code == 0, res.output
    listed = set(yaml.safe_load(Path(json.loads(res.stdout)["slices"][0]["defines"]["SELECTED_OP_LIST"]).read_text()))
    assert {"aten::relu", "aten::ones", "aten::fill_.Scalar"} <= listed
    (cli_env.cwd / "ops.yaml").write_text("- aten::relu\n")
    res = runner.invoke(app, ["host", "--ops", "ops.yaml", "--op", "aten::ones", "--json"])
    assert res.exit_code == 0, res.output
    cached = Path(json.loads(res.stdout)["slices"][0]["defines"]["SELECTED_OP_LIST"])
    assert set(yaml.safe_load(cached.read_text())) == {"aten::relu", "aten::ones"}
    assert (cli_env.cwd / "ops.yaml").read_text() == "- aten::relu\n"          # the user's file is not touched


def test_op_alone_or_misspelled_is_one_message(cli_env):
    res = runner.invoke(app, ["host", "--op", "aten::ones", "--dry-run"])
    assert res.exit_code == 2 and "pass --model or --ops too" in res.output and "Traceback" not in res.output
    (cli_env.cwd / "ops.yaml").write_text("- aten::relu\n")
    res = runner.invoke(app, ["host", "--ops", "ops.yaml", "--op", "ones", "--dry-run"])
    assert res.exit_code == 2 and "--op: not an operator name: 'ones'" in res.output


def test_model_and_ops_together_are_refused(cli_env):
    (cli_env.cwd / "ops.yaml").write_text("- aten::relu\n")
    res = runner.invoke(app, ["host", "--model", "net.pt", "--ops", "ops.yaml", "--dry-run"])
    assert res.exit_code == 2 and "--model and --ops" in res.output


def test_model_missing_is_one_message(cli_env):
    res = runner.invoke(app, ["host", "--model", "nope.pt", "--dry-run"])
    assert res.exit_code == 2 and "model not found: nope.pt" in res.output and "Traceback" not in res.output


def test_per_target_help_shows_only_that_targets_options():
    """issue 18 item 6: `builder host --help` does not list --abi / --platform; android's does not list --platform."""
    host = runner.invoke(app, ["host", "--help"], terminal_width=200).output
    android = runner.invoke(app, ["android", "--help"], terminal_width=200).output
    ios = runner.invoke(app, ["ios", "--help"], terminal_width=200).output
    assert "--abi" not in host and "--platform" not in host and "--aar" not in host and "--lite" in host
    assert "--abi" in android and "--aar" in android and "--platform" not in android and "--metal" not in android
    assert "--platform" in ios and "--abi" not in ios and "--vulkan" not in ios


def test_ndk_list_in_words(cli_env):
    """issue 18 item 6: sizes in GiB, checksums described, 'no' instead of None."""
    out = runner.invoke(app, ["ndk", "list"], terminal_width=200).output
    assert "r21e" in out and "GiB" in out and "Google" in out      # (the table wraps at the runner's width)
    assert "None" not in out and "True" not in out


def test_recipes_show_is_readable_for_every_release(cli_env):
    """issue 18 item 6: a text summary by default (--json keeps everything)."""
    from builder.recipes import available_tags

    for tag in available_tags():
        res = runner.invoke(app, ["recipes", "show", tag], terminal_width=200)
        assert res.exit_code == 0 and res.output.startswith(f"{tag}: commit"), (tag, res.output[-500:])
        assert "targets:" in res.output and "size levers" in res.output
    assert runner.invoke(app, ["recipes", "show", "v1.13.1", "--json"]).output.lstrip().startswith("{")


def test_export_default_optimizes_where_this_torch_can_and_says_when_not(cli_env, monkeypatch):
    import torch
    import torch.utils.mobile_optimizer as mo

    def no_xnnpack(*args, **kwargs):
        raise RuntimeError("Mobile optimization only available with XNNPACK at the moment.")

    monkeypatch.setattr(mo, "optimize_for_mobile", no_xnnpack)       # what the torch 2.13 CPU wheel does
    torch.jit.script(torch.nn.ReLU()).save(str(cli_env.cwd / "relu.pt"))
    res = runner.invoke(app, ["export", "relu.pt", "-o", "relu.ptl", "--tag", "v2.6.0"], env={"COLUMNS": "300"})
    assert res.exit_code == 0, res.output
    assert "for v2.6.0" in res.output and "not optimized: torch" in res.output and "XNNPACK" in res.output
    assert (cli_env.cwd / "relu.ptl").is_file()
    res = runner.invoke(app, ["export", "relu.pt", "-o", "o.ptl", "--tag", "v2.6.0", "--optimize"])
    assert res.exit_code == 2 and "--no-optimize" in res.output and not (cli_env.cwd / "o.ptl").exists()
