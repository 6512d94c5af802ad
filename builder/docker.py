"""`builder docker`: the `docker run` / `podman run` command that runs builder inside a build image.

Planned here, run by the CLI (through builder.proc). The container sees the host's folders at the SAME paths:
the work folder (the current directory, also the container's working directory), builder's cache (checkout mirror,
work trees, downloads; ``BUILDER_CACHE_DIR``), sccache's cache when given, and every absolute path named in the
builder arguments or in ``--env`` values (an NDK, an output folder, an SDK, a Maven repository, recipes). Same
paths inside and out mean a container build writes what a local build writes (the linker hashes source paths),
and the paths in logs and manifests are the host's. Files are written as the caller's uid:gid (podman without
root: ``--userns=keep-id``), so nothing in the output is owned by root.

The images are defined in docker/*.Dockerfile (see docs/docker.md).
"""
from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from builder import proc
from builder.errors import UsageError, did_you_mean

ENGINES = ("docker", "podman")
CACHE_ENV = {                      # cache name -> the variable that points the tool at its folder
    "builder": "BUILDER_CACHE_DIR",   # builder's own cache: git mirror, work trees, downloads, stamps
    "sccache": "SCCACHE_DIR",         # sccache's local disk cache
}
# Passed through from the caller's environment by name only (values never appear in argv).
PASSTHROUGH_ENV = (
    "SCCACHE_BUCKET", "SCCACHE_REGION", "SCCACHE_ENDPOINT", "SCCACHE_S3_KEY_PREFIX",
    "SCCACHE_GHA_ENABLED", "ACTIONS_CACHE_URL", "ACTIONS_RUNTIME_TOKEN",
    "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
)
# Folders of the image itself: mounting a host folder over them would break the container.
IMAGE_FOLDERS = ("/bin", "/boot", "/dev", "/etc", "/lib", "/lib32", "/lib64", "/libx32", "/opt/android-sdk",
                 "/opt/builder", "/proc", "/run", "/sbin", "/sys", "/usr", "/var")
# `docker run` exit codes of the engine itself (the container's own code passes through unchanged).
ENGINE_FAILURES = {125: "the engine could not start the container", 126: "the command in the image cannot run",
                   127: "the command was not found in the image"}
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class RunRequest:
    """What ``builder docker`` was asked for (the CLI fills it from its options and the resolved settings)."""

    image: str
    workdir: Path
    builder_args: tuple[str, ...]
    engine: str = "docker"
    caches: Mapping[str, Path] = field(default_factory=dict)
    user: str | None = None            # "UID:GID"; None: the image's user
    rootless: bool = False             # podman run by a non-root user: map the caller with --userns=keep-id
    env: Mapping[str, str] = field(default_factory=dict)
    passthrough: Sequence[str] = PASSTHROUGH_ENV
    mounts: Sequence[Path] = ()        # more host folders to show the container (same path)
    network: str | None = None
    interactive: bool = False


@dataclass(frozen=True)
class ContainerRun:
    """The run command, and the host folders it mounts that must exist first (created by ``--run``)."""

    argv: tuple[str, ...]
    mounts: tuple[Path, ...]
    create: tuple[Path, ...]

    def shell(self) -> str:
        """One shell line: ``mkdir -p`` for the folders still missing, then the run command."""
        run = proc.quote(self.argv)
        return f"{proc.quote(['mkdir', '-p', *self.create])} && {run}" if self.create else run


def choose_engine(requested: str, found: Callable[[str], bool], works: Callable[[str], bool]) -> str:
    """``auto``: the first engine (docker, podman) that answers, else the first one installed; else as asked.

    ``found(name)`` says whether the program is on PATH; ``works(name)`` whether it can run containers (a daemon
    answers). The CLI passes probes that run ``<engine> info``; tests pass functions.
    """
    if requested != "auto":
        if requested not in ENGINES:
            raise UsageError(f"unknown --engine {requested}" + did_you_mean(requested, ENGINES),
                             hint="choose from auto, " + ", ".join(ENGINES))
        return requested              # printed for another machine, or run (then a missing engine is one line)
    installed = [e for e in ENGINES if found(e)]
    if not installed:
        raise UsageError("neither docker nor podman is on PATH", hint="install one (e.g. apt-get install podman)")
    return next((e for e in installed if works(e)), installed[0])


def run_command(req: RunRequest, exists: Callable[[Path], bool]) -> ContainerRun:
    """The ``<engine> run`` argv for ``builder <builder_args>`` in ``req.image``; UsageError listing every problem."""
    problems: list[str] = []
    if not req.image or req.image.startswith("-"):
        problems.append(f"bad image name {req.image!r}")
    if req.engine not in ENGINES:
        problems.append(f"unknown engine {req.engine!r}" + did_you_mean(req.engine, ENGINES))
    if req.user and not re.fullmatch(r"[0-9]+(:[0-9]+)?", req.user):
        problems.append(f"bad --user value {req.user!r}: expected UID[:GID] (numbers)")
    for name in sorted(req.caches):
        if name not in CACHE_ENV:
            problems.append(f"unknown cache {name!r}" + did_you_mean(name, CACHE_ENV)
                            + f" (known: {', '.join(CACHE_ENV)})")
    env = {**{CACHE_ENV[n]: str(p) for n, p in req.caches.items() if n in CACHE_ENV}, **req.env}
    problems += [f"bad environment variable name {k!r}" for k in (*env, *req.passthrough) if not _ENV_NAME.match(k)]
    named = [Path(p) for p in (*host_paths(req.builder_args), *host_paths(env.values()))]
    # a file still to be written (``--out /x/lib.aar``): its folder; a folder still to be written: itself
    named = [p.parent if p.suffix and not exists(p) else p for p in named]
    mounts = _outermost([req.workdir, *req.caches.values(), *req.mounts, *named], problems)
    if problems:
        raise UsageError("; ".join(problems), hint="see docs/docker.md")
    argv: list[str] = [req.engine, "run", "--rm", "--init"]
    if req.interactive:
        argv.append("-it")
    if req.rootless and req.engine == "podman":
        argv.append("--userns=keep-id")
    if req.user:
        argv += ["--user", req.user, "--env", "HOME=/tmp"]
    if req.network:
        argv += ["--network", req.network]
    for path in mounts:
        argv += ["--mount", f"type=bind,source={path},target={path}"]
    argv += ["--workdir", str(req.workdir)]
    argv += [a for k, v in sorted(env.items()) for a in ("--env", f"{k}={v}")]
    argv += [a for k in req.passthrough if k not in env for a in ("--env", k)]
    argv += [req.image, "builder", *req.builder_args]
    return ContainerRun(tuple(argv), tuple(mounts), tuple(p for p in mounts if not exists(p)))


def host_paths(values: Iterable[str]) -> list[str]:
    """Absolute paths named in arguments: ``/x``, ``--opt=/x``, ``NAME=/x`` (``--abi x`` and URLs are not paths)."""
    out = []
    for text in values:
        if "=" in text and not text.startswith("/"):
            text = text.split("=", 1)[1]
        if text.startswith("/") and not text.startswith("//"):
            out.append(text)
    return out


def _outermost(paths: Sequence[Path], problems: list[str]) -> list[Path]:
    """Each folder once; one inside another is covered by the outer mount. Image folders and '/' are refused."""
    clean: list[Path] = []
    for path in paths:
        text = str(path)
        if not path.is_absolute() or "," in text or "\n" in text:
            problems.append(f"cannot mount {text!r}: needs an absolute path without ',' (docker --mount syntax)")
            continue
        posix = PurePosixPath(text)
        if str(posix) == "/" or any(posix == PurePosixPath(f) or PurePosixPath(f) in posix.parents
                                    for f in IMAGE_FOLDERS):
            problems.append(f"cannot mount {text}: it would hide the image's own {posix} "
                            "(use a folder under the work folder or your home)")
            continue
        clean.append(Path(posix))
    unique = sorted(set(clean), key=lambda p: (len(p.parts), str(p)))
    kept: list[Path] = []
    for path in unique:
        if not any(k == path or k in path.parents for k in kept):
            kept.append(path)
    return sorted(kept)


def exit_message(code: int) -> str | None:
    """What an engine's own failure code means (None for the container's own exit codes)."""
    return ENGINE_FAILURES.get(code)


def engine_answers(engine: str) -> bool:
    """Whether ``<engine> info`` succeeds (docker: a daemon answers; podman: it can run containers here)."""
    try:
        return proc.run([engine, "info"], check=False, timeout=60).returncode == 0
    except (OSError, proc.TimedOut):
        return False
