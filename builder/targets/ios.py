"""iOS: one slice per platform and arch, the release's cmake/iOS.cmake toolchain file."""
from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from ..errors import UsageError, did_you_mean
from .base import Slice

if TYPE_CHECKING:
    from ..config import BuildConfig, BuildRequest
    from ..recipes import Defines, Recipe


class Ios:
    name = "ios"

    def slices(self, request: BuildRequest, recipe: Recipe, problems: list) -> tuple[Slice, ...]:
        target = recipe.target("ios")
        if request.abis:
            problems.append(UsageError("--abi is for `builder android`", hint="use --platform/--arch for iOS"))
        platforms = request.platforms or target.default_platforms
        out = []
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

    def placeholders(self, config: BuildConfig, slice_: Slice) -> Mapping[str, str]:
        assert slice_.platform is not None and slice_.arch is not None
        return {"ios_platform": slice_.platform, "ios_arch": slice_.arch,
                "deployment_target": config.deployment_target or ""}

    def defines(self, config: BuildConfig, slice_: Slice) -> Defines:
        return {}

    def env(self, config: BuildConfig, slice_: Slice) -> Mapping[str, str]:
        return {}


TARGET = Ios()
