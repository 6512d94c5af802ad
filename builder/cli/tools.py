"""CLI: doctor, clean, ndk, docker."""
from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, Optional

import typer

from .app import _console, app, guarded, machine, ndk_app, sdk_app, settings

# ------------------------------------------------------------------ doctor, clean

@app.command()
@guarded
def doctor(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """What this machine has: git, CMake/Ninja, compilers, caches, NDKs (and the releases each builds), SDK, JDK, Xcode."""
    import dataclasses

    from ..doctor import check

    here = machine()
    chosen = settings()
    rows = check(here.environ, here.home, here.host_os, cache_dir=chosen.cache_dir, recipes_dir=chosen.recipes_dir)
    if as_json:
        sys.stdout.write(json.dumps([dataclasses.asdict(r) for r in rows], indent=2) + "\n")
        return
    from rich.table import Table

    table = Table("", "what", "", "details")
    for r in rows:
        table.add_row(r.section, r.name, "[green]ok[/]" if r.found else "[red]--[/]", r.detail)
    _console().print(table)


@app.command()
@guarded
def clean(out: Annotated[Optional[Path], typer.Option(help="Output folder whose builds to clean (default: builder.toml's out, else ./builder-out).")] = None,
          tag: Annotated[Optional[str], typer.Option(help="Only builds of this release.")] = None,
          target: Annotated[Optional[str], typer.Option(help="Only android, ios or host builds.")] = None,
          all_: Annotated[bool, typer.Option("--all", help="Every build folder under --out.")] = False,
          dry_run: Annotated[bool, typer.Option(help="Show what would be freed.")] = False) -> None:
    """Remove build folders and show what it frees (one tag, one target, or --all)."""
    from ..clean import find_builds, human, remove, select
    from ..errors import UsageError

    if not (all_ or tag or target):
        raise UsageError("say what to clean", hint="use --tag TAG, --target T or --all")
    if target is not None and target not in ("android", "ios", "host"):
        from ..errors import did_you_mean

        raise UsageError(f"unknown --target {target}" + did_you_mean(target, ("android", "ios", "host")),
                         hint="choose from android, ios, host")
    folder = settings(out=out).out or Path("builder-out")
    chosen = select(find_builds(folder), tag=tag, target=target)
    console = _console()
    for b in chosen:
        console.print(f"{human(b.size):>9}  {b.path}  ({b.tag} {b.target} {b.slice})")
    total = sum(b.size for b in chosen)
    if dry_run:
        console.print(f"would free {human(total)} in {len(chosen)} folder(s)")
        return
    console.print(f"freed {human(remove(chosen))} in {len(chosen)} folder(s)")


# ------------------------------------------------------------------ ndk, docker

@ndk_app.command("list")
@guarded
def ndk_list(all_hosts: Annotated[bool, typer.Option(help="Archives for every host OS.")] = False) -> None:
    """NDKs builder can install (pinned checksums) and the ones installed."""
    from rich.table import Table

    from ..toolchains.ndk import find_ndks
    from ..toolchains.ndk_install import host_os, list_rows, load_catalog

    here = machine()
    rows = list_rows(load_catalog(), find_ndks(here.environ, here.home), None if all_hosts else host_os(here.host_os))
    if not rows:
        _console().print("no pinned NDK archive for this host and no NDK installed")
        return
    table = Table("release", "revision", "host", "download", "checksums", "installed")
    for row in rows:
        size = f"{row.size / 2**30:.2f} GiB" if row.size else "-"
        sums = ("pinned, read from Google's table" if row.verified else "pinned, from public build scripts"
                ) if row.pinned else "not pinned (installed by hand)"
        table.add_row(row.release, str(row.revision), row.host or "-", size, sums,
                      str(row.installed_at) if row.installed_at else "no")
    _console().print(table)


@ndk_app.command("install")
@guarded
def ndk_install(version: str,
                sdk: Annotated[Optional[Path], typer.Option(help="Android SDK folder (NDK goes to <sdk>/ndk/<revision>).")] = None,
                mirror: Annotated[Optional[str], typer.Option(help="Base URL serving the NDK archives.")] = None,
                archives: Annotated[Optional[Path], typer.Option(help="Archive list (TOML) whose pinned size and checksums are checked (default: builder's own).")] = None,
                allow_unverified: Annotated[bool, typer.Option(help="Accept checksums not read from Google.")] = False,
                keep_archive: Annotated[bool, typer.Option(help="Keep the downloaded zip.")] = False) -> None:
    """Download, verify (pinned checksum) and unpack an NDK; resumable."""
    from ..toolchains.ndk import default_sdk_root
    from ..toolchains.ndk_install import host_os, install_ndk, load_catalog

    here = machine()
    cache = settings().cache_dir
    assert cache is not None
    sdk_root = sdk or default_sdk_root(here.environ, here.home, here.host_os)
    with _download_progress(f"NDK {version}") as on_progress:
        result = install_ndk(version, sdk_root=sdk_root, download_dir=cache / "downloads",
                             host=host_os(here.host_os), progress=on_progress,
                             catalog=load_catalog(archives) if archives else None,
                             allow_unverified=allow_unverified, keep_archive=keep_archive,
                             **({"base_url": mirror} if mirror else {}))  # type: ignore[arg-type]
    for w in result.warnings:
        _console(stderr=True).print(f"[yellow]warning:[/] {w}")
    state = "already installed" if result.already_installed else "installed"
    _console().print(f"NDK {result.info.revision} {state} at {result.info.path}")


@contextlib.contextmanager
def _download_progress(label: str) -> Iterator[Callable[[int, int | None], None]]:
    """A download's progress bar on stderr; yields the callback the installers call."""
    from rich.progress import DownloadColumn, Progress, TransferSpeedColumn

    with Progress(*Progress.get_default_columns(), DownloadColumn(), TransferSpeedColumn(),
                  console=_console(stderr=True)) as progress:
        task = progress.add_task(label, total=None)
        yield lambda done, total: progress.update(task, completed=done, total=total)


@sdk_app.command("install")
@guarded
def sdk_install(tag: Annotated[Optional[str], typer.Option("--tag", help="Install the compileSdk of this release (default: the default release).")] = None,
                api: Annotated[Optional[int], typer.Option(help="Install this API level instead (see builder/data/android_platforms.toml).")] = None,
                sdk: Annotated[Optional[Path], typer.Option(help="Android SDK folder to install into (default ANDROID_HOME, ANDROID_SDK_ROOT, else ~/Android/Sdk; ~/Library/Android/sdk on macOS).")] = None,
                mirror: Annotated[Optional[str], typer.Option(help="Base URL serving the platform archives.")] = None) -> None:
    """Download, verify (pinned sha1 + sha256) and unpack android.jar of a release's compileSdk."""
    from ..errors import UsageError
    from ..recipes import load_release
    from ..toolchains.ndk import default_sdk_root
    from ..toolchains.platform_install import install_platform

    here, chosen = machine(), settings()
    assert chosen.cache_dir is not None
    if api is None:
        recipe = load_release(tag, chosen.recipes_dir)
        java = recipe.target("android").java
        if java is None:
            raise UsageError(f"{recipe.tag} has no Java API for android, so no compileSdk", hint="pass --api")
        api = java.compile_sdk
    sdk_root = sdk or default_sdk_root(here.environ, here.home, here.host_os)
    with _download_progress(f"android-{api}") as on_progress:
        jar, had = install_platform(api, sdk_root=sdk_root, download_dir=chosen.cache_dir / "downloads",
                                    base_url=mirror, progress=on_progress)
    _console().print(f"android.jar of API {api} {'already installed' if had else 'installed'} at {jar} "
                     f"(use --android-sdk {sdk_root} if that is not ANDROID_HOME)")


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
@guarded
def docker(ctx: typer.Context,
           image: Annotated[str, typer.Option(help="Build image (docker/*.Dockerfile, see docs/docker.md).")] = "builder-android:dev",
           engine: Annotated[str, typer.Option(help="auto (docker if its daemon answers, else podman), docker or podman.")] = "auto",
           cache_dir_: Annotated[Optional[list[str]], typer.Option("--cache-dir", help="NAME=PATH: builder's cache (default: this machine's) or sccache's.")] = None,
           env: Annotated[Optional[list[str]], typer.Option("--env", help="NAME=VALUE set in the container (repeatable).")] = None,
           mount: Annotated[Optional[list[Path]], typer.Option("--mount", help="Another host folder the container sees at the same path (repeatable).")] = None,
           network: Annotated[Optional[str], typer.Option(help="The container's network (e.g. host, none).")] = None,
           user: Annotated[Optional[str], typer.Option(help="UID:GID in the container (default: yours, so outputs are yours).")] = None,
           run: Annotated[bool, typer.Option(help="Run it (exit code: the build's); default: print it.")] = False) -> None:
    """Print (or run) the exact docker/podman run for a build: `builder docker -- android --abi arm64-v8a`.

    The container sees the work folder, builder's cache and every absolute path in the arguments at the same paths."""
    import os

    from .. import proc
    from ..docker import RunRequest, choose_engine, engine_answers, exit_message, run_command
    from ..errors import UsageError

    here = machine()
    caches = {"builder": settings().cache_dir}
    caches.update({k: Path(v).expanduser().resolve() for k, v in _pairs(cache_dir_, "--cache-dir").items()})
    chosen = choose_engine(engine, lambda e: proc.which(e, path=here.environ.get("PATH")) is not None, engine_answers)
    uid = os.getuid()
    request = RunRequest(image=image, workdir=here.cwd, builder_args=tuple(ctx.args), engine=chosen,
                         caches={k: v for k, v in caches.items() if v is not None},
                         user=user or f"{uid}:{os.getgid()}", rootless=uid != 0,
                         env=_pairs(env, "--env"), mounts=tuple(p.expanduser().resolve() for p in mount or ()),
                         network=network)
    planned = run_command(request, exists=Path.exists)
    if not run:
        sys.stdout.write(planned.shell() + "\n")
        return
    for folder in planned.create:       # created by the caller, so they are the caller's, not root's
        folder.mkdir(parents=True, exist_ok=True)
    def echo(line: str) -> None:       # as the container wrote it (a rich console would wrap long lines)
        sys.stdout.write(line + "\n")
    code = proc.stream(planned.argv, on_line=echo)
    why = exit_message(code)
    if why:
        raise UsageError(f"{chosen} exited {code}: {why}", hint=f"check that `{chosen} images` lists {image} and that it has builder on PATH")
    raise typer.Exit(code)


def _pairs(items: Optional[list[str]], what: str) -> dict[str, str]:
    from ..errors import UsageError

    out: dict[str, str] = {}
    for item in items or ():
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise UsageError(f"{what} {item}: expected NAME=VALUE", hint=f"e.g. {what} builder=~/.cache/builder")
        out[name] = value
    return out
