"""Android: one slice per ABI, the NDK's toolchain file."""
from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from ..errors import UsageError, did_you_mean
from .base import Slice

if TYPE_CHECKING:
    from ..config import BuildConfig, BuildRequest
    from ..recipes import Defines, Recipe

PAGE_16K = "-Wl,-z,max-page-size=16384"


class Android:
    name = "android"

    def slices(self, request: BuildRequest, recipe: Recipe, problems: list) -> tuple[Slice, ...]:
        target = recipe.target("android")
        abis = request.abis or target.default_abis
        seen: set[str] = set()
        out = []
        for abi in abis:
            if abi in seen:
                problems.append(UsageError(f"ABI '{abi}' given twice", hint="pass each --abi once"))
                continue
            seen.add(abi)
            if abi not in target.abis:
                problems.append(UsageError(f"unknown ABI '{abi}' for {recipe.tag}" + did_you_mean(abi, target.abis),
                                           hint=f"choose from {', '.join(target.abis)}"))
                continue
            out.append(Slice(name=abi, abi=abi))
        if request.platforms or request.arches or request.deployment_target:
            problems.append(UsageError("--platform/--arch/--deployment-target are for `builder ios`",
                                       hint="use --abi for Android"))
        return tuple(out)

    def placeholders(self, config: BuildConfig, slice_: Slice) -> Mapping[str, str]:
        assert config.ndk is not None and slice_.abi is not None
        return {"ndk": str(config.ndk.path), "abi": slice_.abi, "api_level": str(config.api_level),
                "stl": config.stl or ""}

    def defines(self, config: BuildConfig, slice_: Slice) -> Defines:
        if not config.page_size_16k:
            return {}
        return {"CMAKE_SHARED_LINKER_FLAGS": PAGE_16K, "ANDROID_SUPPORT_FLEXIBLE_PAGE_SIZES": True}

    def env(self, config: BuildConfig, slice_: Slice) -> Mapping[str, str]:
        assert config.ndk is not None
        return {"ANDROID_NDK": str(config.ndk.path)}


TARGET = Android()
