"""Host: the release's mobile configuration built with this machine's compiler (build_mobile.sh).

Steps: source -> libtorch configure/build/install -> the host SDK tarball and its manifest -> with --model, each
model run on the build and compared with torch.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from .. import plan as planning
from ..errors import UsageError
from ..levers import link_spec
from ..steps import HostSdkStep, Step, VerifyStep
from ..toolchains import tools
from .base import Slice, TargetToolchain, no_android_options, no_ios_options

if TYPE_CHECKING:
    from ..config import BuildConfig, BuildRequest, Environment
    from ..plan import SlicePlan
    from ..recipes import Defines, Recipe


class Host:
    name = "host"

    def slices(self, request: BuildRequest, recipe: Recipe, problems: list[UsageError]) -> tuple[Slice, ...]:
        recipe.target(self.name)
        no_android_options(request, problems, use="a host build has one slice")
        no_ios_options(request, problems)
        return (Slice(name="host"),)

    def toolchain(self, request: BuildRequest, recipe: Recipe, features: frozenset[str], env: Environment,
                  problems: list[UsageError], warnings: list[str]) -> TargetToolchain:
        versions = tools.versions_file(request.cache_dir)
        return TargetToolchain(compiler=tools.compiler_identity(env.environ, versions=versions))

    def placeholders(self, config: BuildConfig, slice_: Slice) -> Mapping[str, str]:
        return {}

    def defines(self, config: BuildConfig, slice_: Slice) -> Defines:
        return {}

    def env(self, config: BuildConfig, slice_: Slice) -> Mapping[str, str]:
        return {}

    def steps(self, config: BuildConfig, slices: tuple[SlicePlan, ...]) -> tuple[Step, ...]:
        (sp,) = slices
        # Named by the slice's key: two configurations never overwrite each other's SDK.
        sdk = config.out_dir / f"{config.artifact or 'libtorch-host'}-{config.recipe.tag}-{sp.key[:12]}.tar.gz"
        facts = planning.build_facts(config, sp, self.name, {"host_compiler": config.compiler or "unknown"})
        steps: list[Step] = [*planning.source_steps(config), *planning.libtorch_steps(config, slices),
                             HostSdkStep(title=f"package host SDK {sdk} {planning.MANIFEST_CONTENT}",
                                         install_dir=sp.install_dir, dest=sdk, facts=facts)]
        if config.models and config.verify_models:
            spec = link_spec(config.recipe, config.size_levers)
            names = ", ".join(m.name for m in config.models)
            steps.append(VerifyStep(title=f"verify {names} on {sp.install_dir} against torch ({spec.describe()})",
                                    slice=sp.slice.name, install_dir=sp.install_dir, models=config.models,
                                    shapes=config.shapes, link_mode=spec.mode, link_flags=spec.flags,
                                    work_dir=config.cache_dir / "verify", tool_env=config.tool_env))
        return tuple(steps)

    def preflight(self, config: BuildConfig) -> None:
        return None


TARGET = Host()
