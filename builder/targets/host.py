"""Host: the release's mobile configuration built with this machine's compiler (build_mobile.sh)."""
from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from ..errors import UsageError
from .base import Slice

if TYPE_CHECKING:
    from ..config import BuildConfig, BuildRequest
    from ..recipes import Defines, Recipe


class Host:
    name = "host"

    def slices(self, request: BuildRequest, recipe: Recipe, problems: list) -> tuple[Slice, ...]:
        recipe.target("host")
        if request.abis:
            problems.append(UsageError("--abi is for `builder android`", hint="a host build has one slice"))
        if request.platforms or request.arches or request.deployment_target:
            problems.append(UsageError("--platform/--arch/--deployment-target are for `builder ios`"))
        return (Slice(name="host"),)

    def placeholders(self, config: BuildConfig, slice_: Slice) -> Mapping[str, str]:
        return {}

    def defines(self, config: BuildConfig, slice_: Slice) -> Defines:
        return {}

    def env(self, config: BuildConfig, slice_: Slice) -> Mapping[str, str]:
        return {}


TARGET = Host()
