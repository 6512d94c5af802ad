"""iOS: one slice per platform and arch, the release's cmake/iOS.cmake toolchain file; builds need macOS + Xcode
(plans are printable anywhere).

Steps: source -> per slice libtorch configure/build/install -> a manifest per install folder (frameworks and the
XCFramework are assembled by `builder package ios`).
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from .. import plan as planning
from ..errors import ToolchainError, UsageError, did_you_mean
from ..steps import ManifestArtifact, ManifestStep, Step
from ..toolchains import tools
from .base import Slice, TargetToolchain, no_android_options

if TYPE_CHECKING:
    from ..config import BuildConfig, BuildRequest, Environment
    from ..plan import SlicePlan
    from ..recipes import Defines, Recipe


class Ios:
    name = "ios"

    def slices(self, request: BuildRequest, recipe: Recipe, problems: list[UsageError]) -> tuple[Slice, ...]:
        target = recipe.target(self.name)
        no_android_options(request, problems, use="use --platform/--arch for iOS")
        platforms = request.platforms or target.default_platforms
        out: list[Slice] = []
        for platform in dict.fromkeys(platforms):
            if platform not in target.platforms:
                problems.append(UsageError(
                    f"unknown iOS platform '{platform}'" + did_you_mean(platform, target.platforms),
                    hint=f"choose from {', '.join(target.platforms)}"))
                continue
            arches = [a for a in request.arches if a in target.platforms[platform]] if request.arches \
                else list(target.platforms[platform])
            out.extend(Slice(name=f"{platform}-{arch}", platform=platform, arch=arch) for arch in arches)
        known = {a for arches in target.platforms.values() for a in arches}
        for arch in request.arches:
            if arch not in known:
                problems.append(UsageError(f"unknown iOS arch '{arch}'" + did_you_mean(arch, known),
                                           hint=f"choose from {', '.join(sorted(known))}"))
        if not out and not problems:
            problems.append(UsageError("no iOS slice left from --platform/--arch",
                                       hint="check the arches each platform supports: `builder recipes show`"))
        return tuple(out)

    def toolchain(self, request: BuildRequest, recipe: Recipe, features: frozenset[str], env: Environment,
                  problems: list[UsageError], warnings: list[str]) -> TargetToolchain:
        if env.host_os != "Darwin":
            warnings.append("iOS builds need macOS and Xcode: this host can only print the plan (--dry-run)")
        versions = tools.versions_file(request.cache_dir)
        return TargetToolchain(compiler=tools.compiler_identity(env.environ, versions=versions))

    def placeholders(self, config: BuildConfig, slice_: Slice) -> Mapping[str, str]:
        assert slice_.platform is not None and slice_.arch is not None
        return {"ios_platform": slice_.platform, "ios_arch": slice_.arch,
                "deployment_target": config.deployment_target or ""}

    def defines(self, config: BuildConfig, slice_: Slice) -> Defines:
        return {}

    def env(self, config: BuildConfig, slice_: Slice) -> Mapping[str, str]:
        return {}

    def steps(self, config: BuildConfig, slices: tuple[SlicePlan, ...]) -> tuple[Step, ...]:
        toolchain = {"xcode": "macOS only"}
        manifests = ManifestStep(
            title=f"package install folders {planning.MANIFEST_CONTENT}",
            artifacts=tuple(ManifestArtifact(sp.install_dir, planning.build_facts(
                config, sp, f"{self.name}-{sp.slice.name}", toolchain)) for sp in slices))
        return (*planning.source_steps(config), *planning.libtorch_steps(config, slices), manifests)

    def preflight(self, config: BuildConfig) -> None:
        if config.host_os != "Darwin":
            raise ToolchainError("iOS builds need macOS with Xcode; this host is " + config.host_os,
                                 hint="run with --dry-run to see the plan, or build on a Mac")


TARGET = Ios()
