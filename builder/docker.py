"""`builder docker`: the `docker run` command line for running builder inside the build image.

Pure: returns argv for the CLI to print (or run). The images are defined in docker/*.Dockerfile;
they keep builder's cache (git mirrors, downloads) under /cache/builder (BUILDER_CACHE_DIR)
and sccache's under /cache/sccache (SCCACHE_DIR), both declared as volumes.
"""
from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path

from builder.errors import UsageError, did_you_mean

CONTAINER_WORKDIR = "/work"
CONTAINER_CACHES = {
    "builder": "/cache/builder",   # builder's own cache: git mirrors, downloads, stamps
    "sccache": "/cache/sccache",   # sccache local disk cache (SCCACHE_DIR)
}
# Passed through from the caller's environment by name only (values never appear in argv).
PASSTHROUGH_ENV = (
    "SCCACHE_BUCKET", "SCCACHE_REGION", "SCCACHE_ENDPOINT", "SCCACHE_S3_KEY_PREFIX",
    "SCCACHE_GHA_ENABLED", "ACTIONS_CACHE_URL", "ACTIONS_RUNTIME_TOKEN",
    "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
)
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def docker_run_argv(image: str, workdir: Path, cache_dirs: Mapping[str, Path],
                    builder_args: Sequence[str], *, user: str | None = None,
                    env: Mapping[str, str] | None = None, passthrough: Sequence[str] = PASSTHROUGH_ENV,
                    engine: str = "docker", interactive: bool = False) -> tuple[str, ...]:
    """``docker run`` argv that runs ``builder <builder_args>`` in ``image`` on ``workdir``.

    ``cache_dirs`` maps a cache name (see CONTAINER_CACHES) to a host folder to mount there.
    ``user`` (e.g. "1000:1000") makes files written into ``workdir`` belong to the caller.
    ``env`` sets variables with values; ``passthrough`` forwards variables by name.
    """
    if not image or image.startswith("-"):
        raise UsageError(f"bad image name {image!r}")
    argv: list[str] = [engine, "run", "--rm", "--init"]
    if interactive:
        argv.append("-it")
    if user:
        if not re.fullmatch(r"[A-Za-z0-9_.-]+(:[A-Za-z0-9_.-]+)?", user):
            raise UsageError(f"bad --user value {user!r}: expected UID[:GID]")
        argv += ["--user", user, "--env", "HOME=/tmp"]
    argv += _mount(workdir, CONTAINER_WORKDIR, "work folder")
    argv += ["--workdir", CONTAINER_WORKDIR]
    for name in sorted(cache_dirs):
        if name not in CONTAINER_CACHES:
            raise UsageError(f"unknown cache {name!r}" + did_you_mean(name, CONTAINER_CACHES),
                             hint="known: " + ", ".join(CONTAINER_CACHES))
        argv += _mount(cache_dirs[name], CONTAINER_CACHES[name], f"{name} cache")
    for key, value in sorted((env or {}).items()):
        _check_env_name(key)
        argv += ["--env", f"{key}={value}"]
    for key in passthrough:
        _check_env_name(key)
        if key not in (env or {}):
            argv += ["--env", key]
    argv += [image, "builder", *builder_args]
    return tuple(argv)


def _mount(host: Path, target: str, what: str) -> list[str]:
    source = str(host)
    if not Path(source).is_absolute():
        raise UsageError(f"the {what} must be an absolute path, got {source!r}")
    if "," in source or "\n" in source:
        raise UsageError(f"the {what} path {source!r} cannot contain ',' (docker --mount syntax)")
    return ["--mount", f"type=bind,source={source},target={target}"]


def _check_env_name(key: str) -> None:
    if not _ENV_NAME.match(key):
        raise UsageError(f"bad environment variable name {key!r}")
