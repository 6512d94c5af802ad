"""What every target (android, ios, host) provides, behind one small Protocol."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from ..config import BuildConfig, BuildRequest
    from ..recipes import Defines, Recipe


@dataclass(frozen=True)
class Slice:
    """One configure/build/install: an Android ABI, an iOS platform+arch, or the host."""

    name: str
    abi: str | None = None
    platform: str | None = None
    arch: str | None = None


class TargetModule(Protocol):
    name: str

    def slices(self, request: BuildRequest, recipe: Recipe, problems: list) -> tuple[Slice, ...]:
        """The slices asked for; bad input is appended to problems (all reported at once)."""

    def placeholders(self, config: BuildConfig, slice_: Slice) -> Mapping[str, str]:
        """Values for the recipe's {placeholders} in this slice."""

    def defines(self, config: BuildConfig, slice_: Slice) -> Defines:
        """Target-specific defines builder adds (beyond the recipe's)."""

    def env(self, config: BuildConfig, slice_: Slice) -> Mapping[str, str]:
        """Environment overrides for this slice's configure/build."""


def get_target(name: str) -> TargetModule:
    from . import android, host, ios

    return {"android": android.TARGET, "ios": ios.TARGET, "host": host.TARGET}[name]
