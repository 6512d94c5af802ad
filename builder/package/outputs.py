"""After a build: the artifacts a user ships, each with its manifest. Takes the plan and what ran; never calls CMake.

- host: the SDK tarball (include/, lib/, share/cmake) and its manifest;
- android / ios: a manifest for every installed slice (AARs and frameworks are assembled by `builder package`,
  from these installs, because they need the JNI library / an Apple toolchain).
An artifact whose manifest already records the same slice keys is up to date and is not rewritten.
"""
from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import __version__
from .manifest import ManifestInputs, Patch, build_manifest, load_manifest, manifest_path, write_manifest

if TYPE_CHECKING:
    from ..execute import RunResult
    from ..plan import Plan

log = logging.getLogger("builder")


def source_date_epoch(worktree: Path, commit: str | None) -> int:
    """SOURCE_DATE_EPOCH if set, else the commit's date (reproducible archives)."""
    if os.environ.get("SOURCE_DATE_EPOCH", "").isdigit():
        return int(os.environ["SOURCE_DATE_EPOCH"])
    try:
        import git

        repo = git.Repo(worktree)
        return int((repo.commit(commit) if commit else repo.head.commit).committed_date)
    except Exception:  # noqa: BLE001 - a tree without git metadata still packages, at a fixed date
        return 315532800


def _toolchain(plan: Plan) -> dict[str, str]:
    c = plan.config
    if c.ndk is not None:
        return {"ndk": str(c.ndk.revision), "ndk_path": str(c.ndk.path)}
    if c.target == "ios":
        return {"xcode": "macOS only"}
    return {"host_compiler": c.compiler or "unknown"}


def manifest_inputs(plan: Plan, result: RunResult, slice_name: str) -> ManifestInputs:
    c = plan.config
    sp = next(s for s in plan.slices if s.slice.name == slice_name)
    from ..plan import render_value

    ops: tuple[str, ...] | None = None
    ops_sha = None
    if c.ops_file is not None:
        from ..models.ops import read_op_list

        ops = tuple(read_op_list(c.ops_file).names)
        ops_sha = hashlib.sha256(c.ops_file.read_bytes()).hexdigest()
    checkout = result.checkout
    return ManifestInputs(
        tag=c.recipe.tag, commit=checkout.commit if checkout else (c.recipe.commit or ""),
        submodules=dict(checkout.submodules) if checkout else {},
        patches=tuple(Patch(n, s) for n, s in checkout.patches) if checkout else (),
        toolchain=_toolchain(plan), cmake_version=str(c.cmake.version), ninja_version=str(c.ninja.version),
        defines={k: render_value(v) for k, v in sp.defines.items()}, ops=ops, op_list_sha256=ops_sha,
        target=f"{c.target}-{slice_name}" if c.target != "host" else "host", builder_version=__version__,
        source_date_epoch=source_date_epoch(c.source_path, checkout.commit if checkout else None))


def _up_to_date(artifact: Path, key: str) -> bool:
    try:
        return artifact.exists() and load_manifest(manifest_path(artifact)).get("details", {}).get("key") == key
    except Exception:  # noqa: BLE001 - a missing or foreign manifest means: write it again
        return False


def package(plan: Plan, result: RunResult) -> tuple[Path, ...]:
    """Write the artifacts and manifests for a finished build; returns the artifact paths."""
    c = plan.config
    out: list[Path] = []
    for sp in plan.slices:
        details: dict[str, Any] = {"key": sp.key, "slice": sp.slice.name, "env": dict(sp.env)}
        if c.target == "host":
            artifact = c.out_dir / f"{c.artifact or 'libtorch-host'}-{c.recipe.tag}.tar.gz"
            if not _up_to_date(artifact, sp.key):
                from .host_sdk import package_host_sdk

                inputs = manifest_inputs(plan, result, sp.slice.name)
                log.info("packaging host SDK %s", artifact)
                res = package_host_sdk(sp.install_dir, artifact, source_date_epoch=inputs.source_date_epoch)
                details["non_relocatable"] = list(res.non_relocatable)
                write_manifest(build_manifest(inputs, artifact, details=details), manifest_path(artifact))
        else:
            artifact = sp.install_dir
            if not _up_to_date(artifact, sp.key):
                inputs = manifest_inputs(plan, result, sp.slice.name)
                write_manifest(build_manifest(inputs, artifact, kind="dir", details=details),
                               manifest_path(artifact))
        out.append(artifact)
    return tuple(out)
