"""builder.settings: one source chain (command line > environment > builder.toml > recipe > defaults) for every
command, every problem at once with did-you-mean, and where each value came from."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from builder.config import resolve
from builder.errors import UsageError, ValidationErrors
from builder.settings import Environment, Settings, layer, load


def machine(tmp_path: Path, **environ: str) -> Environment:
    return Environment(environ=environ, home=tmp_path, host_os="Linux", cwd=tmp_path)


def test_each_source_in_order_and_where_it_came_from(tmp_path):
    (tmp_path / "builder.toml").write_text('tag = "v1.12.1"\nmirror = "file:///toml/"\njobs = 3\n'
                                           'cache = "none"\n[android]\nabis = ["x86"]\n')
    env = machine(tmp_path, MAX_JOBS="5", BUILDER_MIRROR="file:///env/")
    s = load(Settings(target="android", mirror="file:///cli/"), env)
    assert (s.mirror, s.jobs, s.tag, s.abis, s.cache) == ("file:///cli/", 5, "v1.12.1", ("x86",), "none")
    assert s.origin["mirror"] == "command line" and s.origin["jobs"] == "MAX_JOBS"
    assert s.origin["tag"] == "builder.toml" and s.origin["abis"] == "builder.toml [android]"


def test_a_false_flag_on_the_command_line_beats_the_file(tmp_path):
    """--full-jit (lite=False) was treated as "not given" and builder.toml's lite = true won."""
    (tmp_path / "builder.toml").write_text("lite = true\n")
    assert load(Settings(target="host", lite=False), machine(tmp_path)).lite is False
    assert load(Settings(target="host"), machine(tmp_path)).lite is True


def test_defines_from_the_file_come_before_the_command_lines(tmp_path):
    (tmp_path / "builder.toml").write_text('[defines]\nFOO = "file"\nBAR = true\n')
    s = load(Settings(target="host", defines=(("FOO", "cli"),)), machine(tmp_path))
    assert s.defines == (("FOO", "file"), ("BAR", "ON"), ("FOO", "cli"))     # last wins: the command line


def test_another_targets_table_is_not_read(tmp_path):
    (tmp_path / "builder.toml").write_text('[ios]\narches = ["arm64"]\n[android]\nabis = ["x86"]\n')
    s = load(Settings(target="android"), machine(tmp_path))
    assert s.arches == () and s.abis == ("x86",)


def test_every_problem_at_once_with_did_you_mean(tmp_path):
    (tmp_path / "builder.toml").write_text('abi = ["x86"]\njobs = "many"\nrecipes_dir = "/r"\n'
                                           '[andriod]\nabis = ["x86"]\n[host]\nlite = "yes"\n')
    problems: list[UsageError] = []
    layer(Settings(target="host"), machine(tmp_path, MAX_JOBS="lots", SOURCE_DATE_EPOCH="yesterday"), problems)
    text = "\n".join(str(p) for p in problems)
    assert len(problems) == 7, text
    for fragment in ("MAX_JOBS='lots' must be a whole number", "SOURCE_DATE_EPOCH='yesterday' must be a whole",
                     "unknown key 'abi' (did you mean abis?)", "'jobs' must be a whole number",
                     "unknown key 'recipes_dir'", "an environment variable",
                     "unknown table [andriod] (did you mean android?)", "builder.toml [host]: 'lite' must be true"):
        assert fragment in text


def test_machine_wide_settings_for_every_command(tmp_path):
    env = machine(tmp_path, BUILDER_CACHE_DIR=str(tmp_path / "c"), SOURCE_DATE_EPOCH="1700000000",
                  BUILDER_REAL_INSTALL=str(tmp_path / "i"))
    s = load(Settings(), env)
    assert (s.cache_dir, s.source_date_epoch, s.real_install) == (tmp_path / "c", 1700000000, tmp_path / "i")
    (tmp_path / "builder.toml").write_text(f'cache_dir = "{tmp_path / "t"}"\n')
    assert load(Settings(), machine(tmp_path)).cache_dir == tmp_path / "t"
    assert load(Settings(), replace(machine(tmp_path), cwd=tmp_path / "elsewhere")).origin["cache_dir"] == "default"


def test_missing_config_file_given_with_config_is_a_problem(tmp_path):
    with pytest.raises(UsageError, match="config file .* not found"):
        load(Settings(config_file=tmp_path / "nope.toml"), machine(tmp_path))


def test_resolve_reports_setting_problems_with_the_others(env):
    (env.cwd / "builder.toml").write_text("jobs = -1\n")
    with pytest.raises(ValidationErrors) as err:
        resolve(Settings(target="android", abis=("arm64",)), env)
    text = str(err.value)
    assert "'jobs' must not be negative" in text and "unknown ABI 'arm64'" in text


def test_builder_toml_ndk_is_marked_as_such(tmp_path):
    (tmp_path / "builder.toml").write_text('ndk = "r21e"\n')
    assert load(Settings(target="android"), machine(tmp_path)).ndk_from == "builder.toml"
    assert load(Settings(target="android", ndk="r21e"), machine(tmp_path)).ndk_from == "--ndk"
