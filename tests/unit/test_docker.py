"""builder.docker: the docker/podman run argv (pure), engine choice, and the CLI's printed command."""
from __future__ import annotations

import shlex
from pathlib import Path

import pytest
from typer.testing import CliRunner

from builder.cli import app
from builder.docker import (
    PASSTHROUGH_ENV,
    RunRequest,
    choose_engine,
    exit_message,
    host_paths,
    run_command,
)
from builder.errors import UsageError


def _run(tmp_path: Path, *args: str, **kw) -> tuple[str, ...]:
    req = RunRequest(image="builder-android:dev", workdir=tmp_path / "work", builder_args=args, **kw)
    return run_command(req, exists=lambda p: True).argv


def _pairs(argv, flag):
    return [argv[i + 1] for i, a in enumerate(argv) if a == flag]


def test_argv_shape_same_paths_user_and_caches(tmp_path):
    argv = _run(tmp_path, "android", "--tag", "v1.13.1", "--abi", "arm64-v8a", engine="podman",
                caches={"builder": tmp_path / "bc", "sccache": tmp_path / "sc"}, user="1000:1001",
                env={"SCCACHE_GHA_ENABLED": "true"}, passthrough=("SCCACHE_BUCKET", "SCCACHE_GHA_ENABLED"))
    assert argv[:4] == ("podman", "run", "--rm", "--init")
    assert argv[-7:] == ("builder-android:dev", "builder", "android", "--tag", "v1.13.1", "--abi", "arm64-v8a")
    assert _pairs(argv, "--mount") == [f"type=bind,source={p},target={p}"
                                       for p in sorted([tmp_path / "bc", tmp_path / "sc", tmp_path / "work"])]
    assert _pairs(argv, "--workdir") == [str(tmp_path / "work")]
    assert _pairs(argv, "--user") == ["1000:1001"]
    envs = _pairs(argv, "--env")
    assert {"HOME=/tmp", f"BUILDER_CACHE_DIR={tmp_path / 'bc'}", f"SCCACHE_DIR={tmp_path / 'sc'}",
            "SCCACHE_GHA_ENABLED=true", "SCCACHE_BUCKET"} <= set(envs)
    assert sum(e.startswith("SCCACHE_GHA_ENABLED") for e in envs) == 1     # set wins over passed through
    assert "--userns=keep-id" not in argv                                  # not rootless


def test_secrets_pass_by_name_only(tmp_path):
    envs = _pairs(_run(tmp_path, "--help"), "--env")
    assert set(PASSTHROUGH_ENV) <= set(envs) and "AWS_SECRET_ACCESS_KEY=" not in " ".join(envs)


def test_rootless_podman_keeps_the_callers_id(tmp_path):
    assert "--userns=keep-id" in _run(tmp_path, "x", engine="podman", rootless=True, user="1000:1000")
    assert "--userns=keep-id" not in _run(tmp_path, "x", engine="docker", rootless=True, user="1000:1000")


def test_absolute_paths_in_arguments_and_env_are_mounted_at_the_same_place(tmp_path):
    ndk, sdk, recipes = tmp_path / "ndk", tmp_path / "sdk", tmp_path / "r"
    argv = _run(tmp_path, "android", "--ndk", str(ndk), f"--android-sdk={sdk}", "--abi", "x86",
                "--mirror", "file:///srv/mirror/", env={"BUILDER_RECIPES_DIR": str(recipes)}, network="none")
    sources = {m.split(",")[1].removeprefix("source=") for m in _pairs(argv, "--mount")}
    assert sources == {str(ndk), str(sdk), str(recipes), str(tmp_path / "work")}    # URLs are not mounted
    assert _pairs(argv, "--network") == ["none"]


def test_missing_outputs_mount_their_folder_or_are_created(tmp_path):
    have = {tmp_path / "dist"}
    req = RunRequest(image="i:1", workdir=tmp_path / "work", builder_args=(
        "assemble", "--out", str(tmp_path / "dist" / "x.aar"), "--parts", str(tmp_path / "parts" / "arm")))
    planned = run_command(req, exists=lambda p: p in have)
    assert planned.mounts == (tmp_path / "dist", tmp_path / "parts" / "arm", tmp_path / "work")
    assert planned.create == (tmp_path / "parts" / "arm", tmp_path / "work")
    words = shlex.split(planned.shell())
    assert words[:2] == ["mkdir", "-p"] and "&&" in words and words[words.index("&&") + 1:] == list(planned.argv)


def test_nested_folders_are_mounted_once(tmp_path):
    argv = _run(tmp_path, "android", "--out", str(tmp_path / "work" / "out"),
                caches={"builder": tmp_path / "work" / ".cache"})
    assert _pairs(argv, "--mount") == [f"type=bind,source={tmp_path / 'work'},target={tmp_path / 'work'}"]


def test_every_problem_is_reported_at_once(tmp_path):
    req = RunRequest(image="--privileged", workdir=Path("/"), builder_args=("android", "--ndk", "/usr/lib/ndk"),
                     engine="dokcer", caches={"ccache": tmp_path}, user="root; rm", env={"BAD-NAME": "x"})
    with pytest.raises(UsageError) as err:
        run_command(req, exists=lambda p: True)
    text = str(err.value.message)
    for fragment in ("bad image name", "unknown engine 'dokcer'", "did you mean docker", "bad --user",
                     "unknown cache 'ccache'", "bad environment variable name 'BAD-NAME'",
                     "cannot mount /:", "cannot mount /usr/lib/ndk"):
        assert fragment.lower() in text.lower(), (fragment, text)


def test_host_paths():
    assert host_paths(["--abi", "x86", "/a", "--out=/b", "K=/c", "//net", "rel/x", "file:///m"]) == ["/a", "/b", "/c"]


def test_engine_auto_prefers_an_engine_that_answers():
    assert choose_engine("auto", lambda e: True, lambda e: e == "docker") == "docker"
    assert choose_engine("auto", lambda e: True, lambda e: False) == "docker"        # installed, daemon down
    assert choose_engine("auto", lambda e: True, lambda e: e == "podman") == "podman"  # docker client, no daemon
    assert choose_engine("auto", lambda e: e == "podman", lambda e: False) == "podman"
    assert choose_engine("podman", lambda e: False, lambda e: False) == "podman"     # printed for another machine
    with pytest.raises(UsageError, match="neither docker nor podman"):
        choose_engine("auto", lambda e: False, lambda e: False)
    with pytest.raises(UsageError, match="did you mean podman"):
        choose_engine("podmn", lambda e: True, lambda e: True)


def test_engine_failures_are_named_container_codes_are_not():
    assert exit_message(125) and exit_message(127)
    assert exit_message(0) is None and exit_message(2) is None and exit_message(4) is None


def test_cli_prints_a_command_for_the_named_engine(cli_env):
    res = CliRunner().invoke(app, ["docker", "--engine", "podman", "--network", "host", "--",
                                   "android", "--tag", "v1.13.1", "--abi", "arm64-v8a"])
    assert res.exit_code == 0, res.output
    words = shlex.split(res.output)
    assert words[:2] == ["mkdir", "-p"] or words[:2] == ["podman", "run"]
    run = words[words.index("podman"):]
    assert run[-7:] == ["builder-android:dev", "builder", "android", "--tag", "v1.13.1", "--abi", "arm64-v8a"]
    cache = cli_env.environ["BUILDER_CACHE_DIR"]
    assert f"type=bind,source={cache},target={cache}" in run and f"BUILDER_CACHE_DIR={cache}" in run
    assert f"type=bind,source={cli_env.cwd},target={cli_env.cwd}" in run


def test_cli_without_any_engine_says_so(cli_env):
    res = CliRunner().invoke(app, ["docker", "--", "android"])
    assert res.exit_code == 2 and "neither docker nor podman" in res.output
