"""Android: one slice per ABI, the NDK's toolchain file; the NDK is found (or located for --install-ndk) here.

Steps: [install the NDK] -> source -> per ABI libtorch configure/build/install -> a manifest per install folder.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import TYPE_CHECKING

from .. import plan as planning
from ..errors import BuilderError, UsageError, did_you_mean
from ..steps import ManifestArtifact, ManifestStep, MavenFetchStep, PlatformInstallStep, Step
from ..toolchains import ndk as ndk_mod
from .base import Slice, TargetToolchain, no_ios_options

if TYPE_CHECKING:
    from ..config import BuildConfig, BuildRequest, Environment
    from ..plan import SlicePlan
    from ..recipes import Defines, Recipe

PAGE_16K = "-Wl,-z,max-page-size=16384"


class Android:
    name = "android"

    def slices(self, request: BuildRequest, recipe: Recipe, problems: list[UsageError]) -> tuple[Slice, ...]:
        target = recipe.target(self.name)
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
        no_ios_options(request, problems, hint="use --abi for Android")
        return tuple(out)

    def toolchain(self, request: BuildRequest, recipe: Recipe, features: frozenset[str], env: Environment,
                  problems: list[UsageError], warnings: list[str]) -> TargetToolchain:
        """The NDK (see ``_ndk``), then the Java side of the AAR (android_aar.java_toolchain) when there is one."""
        from .android_aar import java_toolchain

        found = self._ndk(request, recipe, features, env, problems, warnings)
        if found.ndk is None:
            return found
        return dataclasses.replace(found, java=java_toolchain(request, recipe, env, problems))

    def _ndk(self, request: BuildRequest, recipe: Recipe, features: frozenset[str], env: Environment,
             problems: list[UsageError], warnings: list[str]) -> TargetToolchain:
        """The NDK to use (and why), or where --install-ndk will put the release's one; Vulkan's glslc checked up
        front. The NDK's revision stands for the compiler in the build's key.

        Precedence (builder.toolchains.ndk): --ndk > ANDROID_NDK > ANDROID_NDK_HOME > ANDROID_NDK_ROOT >
        builder.toml's ndk > the SDK folders. builder.toml's ndk comes after the environment, as every builder.toml
        setting does.
        """
        try:
            ask = ndk_mod.parse_ndk_request(request.ndk or "any")
            scan = ndk_mod.scan_ndks(env.environ, env.home)
            named = ndk_mod.env_choice(scan.found, scan.rejected)
            after = ""
            if request.ndk and request.ndk_from != "--ndk" and named is not None:
                after = f"; {request.ndk_from}'s ndk = \"{request.ndk}\" comes after the environment"
                ask = ndk_mod.parse_ndk_request("any")
            if request.install_ndk and ask.kind != "path" and not (ask.kind == "any" and named is not None) and \
                    not any(ask.matches(n.revision) and n.revision in recipe.ndk_supported for n in scan.found):
                return _ndk_to_install(request, recipe, env)   # its glslc is checked when installed
            chosen, warns = ndk_mod.select_ndk(ask, scan.found, recipe.ndk_supported, recipe.ndk_tested,
                                               request.force_ndk, rejected=scan.rejected)
            why = ndk_mod.explain_choice(ask, chosen, scan.found, recipe.ndk_supported, recipe.ndk_tested,
                                         asked_by=_ndk_asker(request)) + after
        except BuilderError as exc:
            problems.append(exc if isinstance(exc, UsageError) else UsageError(str(exc)))
            return TargetToolchain()
        warnings.extend(warns)
        if "vulkan" in features:   # shaders are compiled by the NDK's shader-tools glslc (or PATH's)
            try:
                ndk_mod.glslc(chosen, env=env.environ, system=env.host_os)
            except UsageError as exc:
                problems.append(exc)
        return TargetToolchain(ndk=chosen, ndk_reason=why)

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

    def steps(self, config: BuildConfig, slices: tuple[SlicePlan, ...]) -> tuple[Step, ...]:
        assert config.ndk is not None
        toolchain = {"ndk": str(config.ndk.revision), "ndk_path": str(config.ndk.path)}
        artifacts = [ManifestArtifact(sp.install_dir, planning.build_facts(
            config, sp, f"{self.name}-{sp.slice.name}", toolchain)) for sp in slices]
        aar: list[Step] = []
        if config.java is not None:   # the JNI library per ABI, classes.jar, the AAR and its Maven folder
            from .android_aar import aar_steps

            aar, more = aar_steps(config, slices)
            artifacts += more
        manifests = ManifestStep(title=f"package {planning.MANIFEST_CONTENT}", artifacts=tuple(artifacts))
        sdk: list[Step] = []
        if config.java is not None and config.java.install_api is not None and config.java.install_sdk_root:
            sdk_root = config.java.install_sdk_root
            sdk = [PlatformInstallStep(title=f"install android.jar of API {config.java.install_api} into {sdk_root} "
                                             "(pinned sha1 + sha256)", api=config.java.install_api, sdk_root=sdk_root,
                                       download_dir=config.cache_dir / "downloads")]
        if config.java is not None and config.java.fetch:
            sdk.append(MavenFetchStep(title=f"fetch {len(config.java.fetch)} Java dependencies into "
                                            f"{config.java.maven_repo}", coordinates=config.java.fetch,
                                      m2_repo=config.java.maven_repo, base_url=config.java.maven_url))
        return (*planning.ndk_steps(config), *sdk, *planning.source_steps(config),
                *planning.libtorch_steps(config, slices), *aar, manifests)

    def preflight(self, config: BuildConfig) -> None:
        return None


def _ndk_asker(request: BuildRequest) -> str:
    return "--ndk" if request.ndk_from == "--ndk" else f"{request.ndk_from}'s ndk ="


def _ndk_to_install(request: BuildRequest, recipe: Recipe, env: Environment) -> TargetToolchain:
    """Where `builder ndk install` will put the NDK: known before anything is downloaded."""
    from ..toolchains.ndk_install import find_archive, host_os, load_catalog

    wanted = request.ndk or recipe.ndk_default
    if wanted is None:
        raise UsageError(f"{recipe.tag} names no default NDK", hint="pass --ndk VERSION with --install-ndk")
    archive = find_archive(ndk_mod.parse_ndk_request(wanted), host_os(env.host_os), load_catalog())
    sdk = ndk_mod.default_sdk_root(env.environ, env.home, env.host_os)
    info = ndk_mod.NdkInfo(sdk / "ndk" / str(archive.revision), archive.revision, "--install-ndk")
    asked = f"{_ndk_asker(request)} {request.ndk}" if request.ndk else f"{recipe.tag}'s default NDK"
    return TargetToolchain(ndk=info, ndk_install=wanted,
                           ndk_reason=f"{asked}, not installed: --install-ndk installs it there first "
                                      f"(`builder ndk install {wanted}`, pinned checksums)")


TARGET = Android()
