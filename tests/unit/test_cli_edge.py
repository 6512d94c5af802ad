"""Issue 18, tracebacks instead of messages: every input that is wrong becomes one line and an exit code; nothing
but a builder error (or a signal) reaches the CLI edge. In-process, no processes started."""
from __future__ import annotations

import json
import os
import random
import time
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from builder import proc
from builder.cli import app, guarded
from builder.errors import BuilderError
from tests.unit.conftest import ProcessForbidden

runner = CliRunner()



def invoke(args: list[str]):
    """Run the CLI; fail the test if anything but a typed error (an exit code) left the command."""
    res = runner.invoke(app, args)
    if isinstance(res.exception, ProcessForbidden):
        return res                       # would start a process: not what these tests look at
    assert res.exception is None or isinstance(res.exception, SystemExit), \
        f"builder {' '.join(args)}: {type(res.exception).__name__}: {res.exception}"
    assert "Traceback" not in res.output, res.output
    return res


def _files(cwd: Path) -> None:
    (cwd / "afile").write_text("x")
    (cwd / "adir").mkdir(exist_ok=True)
    (cwd / "deep.yaml").write_text("[" * 100_000 + "]" * 100_000)
    (cwd / "section.toml").write_text("host = 3\n")
    (cwd / "typo.toml").write_text("[andriod]\nabis = ['x86']\n")
    (cwd / "bool.toml").write_text("jobs = true\n")
    (cwd / "binary.toml").write_bytes(b"\x00\xff\xfe\x80 binary")


@pytest.mark.parametrize("args, fragment, code", [
    (["host", "--out", "afile"], "afile is a file", 2),
    (["host", "--out", "afile/sub"], "afile is a file", 2),
    (["host", "--ops", "deep.yaml"], "not valid YAML", 2),
    (["host", "--config", "section.toml"], "'host'", 2),
    (["host", "--config", "typo.toml"], "did you mean android", 2),
    (["host", "--config", "bool.toml"], "'jobs' must be a whole number", 2),
    (["host", "--config", "binary.toml"], "not valid TOML", 2),
    (["host", "-j", "0"], "-j 0", 2),
    (["android", "-j", "-3"], "-j -3", 2),
    (["report", "adir"], "cannot read manifest adir", 5),
])
def test_bad_input_is_one_line_and_an_exit_code(cli_env, args, fragment, code):
    _files(cli_env.cwd)
    res = invoke([*args, "--dry-run"] if args[0] in ("host", "android") else args)
    assert res.exit_code == code, res.output
    assert fragment in res.output


def test_read_only_out_is_refused_before_anything_is_written(cli_env, monkeypatch):
    monkeypatch.setattr(os, "access", lambda path, mode: False)      # tests may run as root
    res = invoke(["host", "--out", "ro/out", "--dry-run"])
    assert res.exit_code == 2 and "is not writable" in res.output


def test_docker_prints_the_docker_run(cli_env):
    res = invoke(["docker", "--engine", "docker", "--", "android", "--abi", "x86"])
    assert res.exit_code == 0 and "docker run " in res.output


def test_a_failed_command_is_a_builder_error_of_one_line(capsys):
    assert issubclass(proc.ProcessFailed, BuilderError)

    @guarded
    def size() -> None:     # what `builder size` meets when objcopy fails
        raise proc.ProcessFailed(proc.Result(("objcopy", "--strip-all", "x.so"), 1, "", "objcopy: x.so: bad value"))

    with pytest.raises(typer.Exit) as info:
        size()
    assert info.value.exit_code == 4
    err = capsys.readouterr().err
    assert "objcopy failed (exit code 1)" in err and "bad value" in err and "Traceback" not in err


def test_full_disk_while_running_is_one_line(capsys):
    import errno

    @guarded
    def build() -> None:
        raise OSError(errno.ENOSPC, "No space left on device", "/out/build/x.o")

    with pytest.raises(typer.Exit) as info:
        build()
    err = capsys.readouterr().err
    assert info.value.exit_code == 2 and "/out/build/x.o: No space left on device" in err and "free disk" in err


def test_wrong_typed_json_in_stamps_and_tool_cache(tmp_path, monkeypatch):
    from builder import clean, execute
    from builder.toolchains import tools

    sp = type("SP", (), {"build_dir": tmp_path, "key": "k", "install_dir": tmp_path})()
    (tmp_path / ".builder-done.json").write_text("[1, 2]")
    assert execute.stamp_valid(sp) is False
    (tmp_path / "build" / "x").mkdir(parents=True)
    (tmp_path / "build" / "x" / clean.META).write_text('"a string"')
    assert clean.find_builds(tmp_path) == ()
    cache = tmp_path / "tool-versions.json"
    cache.write_text("[]")
    monkeypatch.setattr(tools.proc, "run", lambda *a, **k: proc.Result(("c++",), 0, "c++ 12\n"))
    assert tools._cached_answer(Path(os.__file__), ("--version",), lambda out: out.strip(), cache) == "c++ 12"
    st = Path(os.__file__).resolve().stat()
    cache.write_text(json.dumps({f"{os.__file__}|--version|{st.st_size}|{st.st_mtime_ns}": 3}))
    assert tools._cached_answer(Path(os.__file__), ("--version",), lambda out: out.strip(), cache) == "c++ 12"


# ------------------------------------------------------------------ fuzz: random argument lists, bounded in time

COMMANDS = [["android"], ["ios"], ["host"], ["recipes", "show"], ["recipes", "list"], ["clean"], ["report"],
            ["docker", "--"], ["ndk", "list"], ["package", "host"], ["package", "aar"], ["assemble"]]
OPTIONS = ["--tag", "--abi", "--api-level", "--ndk", "--ops", "--lite", "--full-jit", "--vulkan", "--feature",
           "--platform", "--arch", "-D", "--system-lib", "--skip-submodule", "--out", "--mirror", "--source",
           "--cache", "-j", "--16k-pages", "--config", "--lever", "--size-levers", "--json", "--target", "--all",
           "--install", "--build-dir", "--parts", "-o", "--output", "--deployment-target", "--allow-unpinned"]
VALUES = ["", "v1.13.1", "v9", "x86", "arm64-v8a", "0", "-3", "99999999999999999999", "afile", "adir",
          "deep.yaml", "section.toml", "binary.toml", "typo.toml", "nowhere/x", "github.com/", "A=B", "=", "ON",
          "\x00", "é", "-", "--", "../..", "1.2.3.4.5", "auto", "ccache", "x86=adir", "ios:arm64=adir"]


def test_fuzz_random_argument_lists_never_show_a_traceback(cli_env):
    _files(cli_env.cwd)
    rng = random.Random(18)
    deadline = time.monotonic() + 10.0
    runs = 0
    while runs < 200 and (runs < 30 or time.monotonic() < deadline):   # at least 30 even on a loaded machine
        args = list(rng.choice(COMMANDS))
        for _ in range(rng.randint(0, 6)):
            args += rng.choice([[rng.choice(OPTIONS)], [rng.choice(OPTIONS), rng.choice(VALUES)],
                                [rng.choice(VALUES)]])
        if args[0] in ("android", "ios", "host"):
            args.append("--dry-run")
        invoke([a.replace("\x00", "") or "x" for a in args])   # NUL cannot be in argv
        runs += 1
    assert runs >= 30


# ------------------------------------------------------------------ hints name options that exist

NOT_BUILDER_OPTIONS = {"--mount"}       # docker's, named as such in the message


def _cli_options() -> set[str]:
    import typer.main

    found: set[str] = set()

    def walk(command) -> None:
        for param in command.params:
            found.update(o for o in (*param.opts, *param.secondary_opts) if o.startswith("--"))
        for sub in getattr(command, "commands", {}).values():
            walk(sub)
    walk(typer.main.get_command(app))
    return found


def _message_strings() -> list[tuple[str, int, str]]:
    """Every string literal in the message or hint of an error builder raises (and every hint= anywhere)."""
    import ast
    import re

    out = []
    for path in sorted(Path(__file__).resolve().parents[2].joinpath("builder").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call):
                continue
            name = getattr(node.func, "id", getattr(node.func, "attr", ""))
            parts = [k.value for k in node.keywords if k.arg == "hint"]
            if re.search(r"(Error|Errors|Failed|Timeout)$", name):
                parts += node.args[:1]
            for part in parts:
                out += [(path.name, sub.lineno, sub.value) for sub in ast.walk(part)
                        if isinstance(sub, ast.Constant) and isinstance(sub.value, str)]
    return out


def test_every_option_a_message_names_exists():
    import re

    options = _cli_options()
    assert {"--force-ndk", "--out", "--allow-unpinned"} <= options
    strings = _message_strings()
    assert len(strings) > 100
    missing = [f"{name}:{line}: {opt}" for name, line, text in strings
               for opt in re.findall(r"(?<![\w-])--[a-z0-9][a-z0-9-]*", text)
               if opt not in options and opt not in NOT_BUILDER_OPTIONS
               and not opt.endswith("-")]      # a prefix completed at run time: f"--no-{flag}"
    assert missing == []


def test_version(cli_env):
    from builder import __version__

    res = invoke(["--version"])
    assert res.exit_code == 0 and res.output.strip() == f"builder {__version__}"


# ------------------------------------------------------------------ bad input refused before anything runs

@pytest.mark.parametrize("args, fragment", [
    (["android", "--abi", "arm64-v8a", "--api-level", "10"], "--api-level 10 is too low: arm64-v8a needs 21 or higher"),
    (["android", "--abi", "x86", "--api-level", "10"], "--api-level 10 is too low"),
    (["host", "--api-level", "21"], "--api-level is for `builder android`"),
    (["host", "--mirror", "github.com/"], "--mirror github.com/: not a URL"),
    (["host", "--16k-pages"], "--16k-pages is for `builder android`"),
])
def test_bad_build_input_is_refused_at_plan_time(cli_env, args, fragment):
    res = invoke([*args, "--dry-run"])
    assert res.exit_code == 2 and fragment in res.output, res.output


def test_good_mirrors_and_api_levels_pass(cli_env):
    for mirror in ("https://git.example.com/github/", "git@git.example.com:github/", "/srv/mirror/",
                   "file:///srv/mirror/"):
        assert invoke(["host", "--mirror", mirror, "--dry-run"]).exit_code == 0
    assert invoke(["android", "--abi", "x86", "--api-level", "21", "--dry-run"]).exit_code == 0


def test_clean_unknown_target(cli_env):
    res = invoke(["clean", "--target", "androd"])
    assert res.exit_code == 2 and "did you mean android" in res.output


def test_verbose_after_the_command(cli_env):
    assert invoke(["host", "--dry-run", "-v"]).exit_code == 0


def test_zip_bomb_model_is_refused_before_loading(tmp_path, monkeypatch):
    import zipfile

    from builder.errors import UsageError
    from builder.models import _torch

    monkeypatch.setattr(_torch, "MAX_INFLATION", 1 << 20)
    bomb = tmp_path / "m.ptl"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("m/bytecode.pkl", b"\0" * (8 << 20))
    with pytest.raises(UsageError, match="zip bomb"):
        _torch.model_kind(bomb)


def test_ndk_download_without_a_length_is_capped(tmp_path, monkeypatch):
    import urllib.request

    from builder.errors import ToolchainError
    from builder.toolchains import ndk_install

    class Endless:
        status, headers = 200, {}

        def read(self, n: int) -> bytes:
            return b"x" * n

        def __enter__(self):
            return self

        def __exit__(self, *exc) -> None:
            return None

    monkeypatch.setattr(urllib.request, "urlopen", lambda *a, **k: Endless())
    monkeypatch.setattr(ndk_install, "MAX_DOWNLOAD_BYTES", 1 << 20)
    part = tmp_path / "ndk.zip.part"
    with pytest.raises(ToolchainError, match="sent more than"):
        ndk_install.download("https://example.invalid/ndk.zip", part, chunk_size=1 << 16, backoff=0)
    assert not part.exists()
