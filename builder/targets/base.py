"""What every target (android, ios, host) provides, behind one Protocol: a target owns what differs between them
(its slices and their validation, its toolchain, its placeholders, defines and environment) and which steps its
build has (builder.steps). Nothing outside builder/targets asks which target it is."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from ..errors import UsageError

if TYPE_CHECKING:
    from ..config import BuildConfig, BuildRequest, Environment
    from ..plan import SlicePlan
    from ..recipes import Defines, Recipe
    from ..steps import Step
    from ..toolchains.ndk import NdkInfo
    from .android_aar import JavaToolchain


@dataclass(frozen=True)
class Slice:
    """One configure/build/install: an Android ABI, an iOS platform+arch, or the host."""

    name: str
    abi: str | None = None
    platform: str | None = None
    arch: str | None = None


@dataclass(frozen=True)
class TargetToolchain:
    """The compilers a target's build uses, found while resolving (before anything runs)."""

    ndk: NdkInfo | None = None
    ndk_install: str | None = None      # the NDK version to install first (--install-ndk when it is missing)
    ndk_reason: str | None = None       # why this NDK (which precedence rule chose it), printed in the plan
    compiler: str | None = None         # the host C++ compiler's identity (part of a host build's key)
    java: JavaToolchain | None = None   # android: javac + android.jar + Maven jars for the AAR (android_aar)


class Target(Protocol):
    name: str

    def slices(self, request: BuildRequest, recipe: Recipe, problems: list[UsageError]) -> tuple[Slice, ...]:
        """The slices asked for; bad input is appended to problems (all reported at once)."""

    def toolchain(self, request: BuildRequest, recipe: Recipe, features: frozenset[str], env: Environment,
                  problems: list[UsageError], warnings: list[str]) -> TargetToolchain:
        """Find and check the target's toolchain (no side effects: an NDK still to install is only located)."""

    def placeholders(self, config: BuildConfig, slice_: Slice) -> Mapping[str, str]:
        """Values for the recipe's {placeholders} in this slice."""

    def defines(self, config: BuildConfig, slice_: Slice) -> Defines:
        """Target-specific defines builder adds (beyond the recipe's)."""

    def env(self, config: BuildConfig, slice_: Slice) -> Mapping[str, str]:
        """Environment overrides for this slice's configure/build."""

    def steps(self, config: BuildConfig, slices: tuple[SlicePlan, ...]) -> tuple[Step, ...]:
        """Every step of the build, in order (builder.plan has the shared pieces)."""

    def preflight(self, config: BuildConfig) -> None:
        """Raise when this machine cannot run the plan (a plan is printable anywhere)."""


def no_android_options(request: BuildRequest, problems: list[UsageError], use: str) -> None:
    if request.abis:
        problems.append(UsageError("--abi is for `builder android`", hint=use))
    if request.ndk or request.install_ndk:
        problems.append(UsageError("--ndk/--install-ndk are for `builder android`"))
    if request.api_level is not None and request.origin.get("api_level") == "command line":  # builder.toml's top
        problems.append(UsageError("--api-level is for `builder android`", hint="leave it out"))
    if request.page_size_16k:
        problems.append(UsageError("--16k-pages is for `builder android` (Google Play's 16 KB page size)",
                                   hint="leave it out"))


def no_ios_options(request: BuildRequest, problems: list[UsageError], hint: str | None = None) -> None:
    if request.platforms or request.arches or request.deployment_target:
        problems.append(UsageError("--platform/--arch/--deployment-target are for `builder ios`", hint=hint))
