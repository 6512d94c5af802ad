"""What makes an Android build an AAR a Gradle app consumes: the release's JNI library per ABI, its Java API as
classes.jar, the AAR, a Maven folder with POM and sources jar. Planned here (pure: reads files only); run by
``builder.execute``; written by ``builder.package``.

The Java side needs, found while resolving (before anything runs): javac (a JDK), android.jar of the release's
compile SDK (``--android-sdk``, ANDROID_HOME, ANDROID_SDK_ROOT, ~/Android/Sdk, ~/Library/Android/sdk) and the Maven
jars the release's gradle files pin (``--maven-repo`` or BUILDER_MAVEN_REPO, ~/.m2/repository, the Gradle cache).
Only with ``--install-ndk`` are missing ones planned as downloads (android.jar pinned; jars checked against the
repository's .sha1).
``--no-aar`` builds the libraries only.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .. import jni
from ..errors import BuilderError, UsageError
from ..hashing import sha256_json
from ..package import aar as aar_mod
from ..package.java import ClasspathSearch, MavenDep, find_maven_jar
from ..package.maven import custom_version
from ..steps import (
    AarStep,
    BuildFacts,
    CMakeProject,
    JavaCompileStep,
    JniViewStep,
    ManifestArtifact,
    MavenStep,
    Step,
    StripStep,
    render_value,
)
from ..toolchains.android_sdk import locate_android_jar, missing_message, sdk_roots
from ..toolchains.jdk import INSTALL_HINT, find_jdk_tool

if TYPE_CHECKING:
    from ..config import BuildConfig, BuildRequest, Environment
    from ..plan import SlicePlan
    from ..recipes import Recipe

JAVA_RELEASE = 8          # android/build.gradle's Android Gradle plugin 4.1 compiles Java 8


@dataclass(frozen=True)
class JavaToolchain:
    """javac and the compile classpath of the release's Java API, found while resolving."""

    javac: Path
    android_jar: Path
    jars: tuple[Path, ...]          # the recipe's dependencies, then compile_only, in its order
    maven_repo: Path                # where the Maven folder's dependencies were found (for the user's Gradle)
    install_api: int | None = None  # --install-ndk found android.jar missing: install this compileSdk first
    install_sdk_root: Path | None = None   # ... into this SDK folder (android_jar is where it will be)
    fetch: tuple[str, ...] = ()     # --install-ndk found these jars missing: download them into maven_repo first
    maven_url: str = ""             # ... from this Maven repository


def java_toolchain(request: BuildRequest, recipe: Recipe, env: Environment,
                   problems: list[UsageError]) -> JavaToolchain | None:
    """None when the build makes no AAR (``--no-aar``, or the recipe has no JNI/Java tables)."""
    target = recipe.target("android")
    if not request.aar or target.java is None or target.jni is None:
        return None
    java = target.java
    off = "; or pass --no-aar to build the libraries only"
    javac = find_jdk_tool("javac", env.environ)
    if javac is None:
        problems.append(UsageError("javac not found (a JDK compiles the AAR's classes.jar)",
                                   hint=INSTALL_HINT + off))
    sdks = sdk_roots(request.android_sdk, env.environ, env.home)
    android_jar = locate_android_jar(sdks, java.compile_sdk, env.environ, env.home)
    install_api, into = None, None
    if android_jar is None and request.install_ndk:     # installed first, like the NDK, from a pinned archive
        from ..toolchains.ndk import default_sdk_root
        from ..toolchains.platform_install import load_platforms, platform_dir

        try:
            load_platforms().find(java.compile_sdk)
            into = request.android_sdk or default_sdk_root(env.environ, env.home, env.host_os)   # where the NDK goes
            android_jar, install_api = platform_dir(into, java.compile_sdk) / "android.jar", java.compile_sdk
        except BuilderError as exc:
            problems.append(UsageError(exc.message, hint=exc.hint))
    elif android_jar is None:
        problems.append(UsageError(
            missing_message(sdks, java.compile_sdk).replace("not found", f"({recipe.tag}'s compileSdk) not found"),
            hint=f"run builder sdk install --tag {recipe.tag} (a pinned archive), or point --android-sdk at an SDK "
                 "that has it" + off))
    m2 = request.maven_repo or env.home / ".m2" / "repository"     # BUILDER_MAVEN_REPO: settings.OPTIONS
    search = ClasspathSearch(m2_repo=m2, env=dict(env.environ), home=env.home)
    jars: list[Path] = []
    fetch: list[str] = []
    for coord in java.classpath_jars():
        try:
            jars.append(find_maven_jar(MavenDep(coord.group, coord.artifact, coord.version), search))
        except BuilderError:
            if request.install_ndk:     # fetched first, into m2, like the NDK and android.jar
                from ..toolchains.maven_fetch import jar_path

                fetch.append(str(coord))
                jars.append(jar_path(m2, str(coord)))
                continue
            problems.append(UsageError(f"{coord} (pinned by {recipe.tag}'s gradle files) is not in {m2} or the "
                                       "Gradle cache", hint="--install-ndk downloads it (Maven Central, or "
                                       "--maven-url), or point --maven-repo at a Maven folder that has it" + off))
    if javac is None or android_jar is None or len(jars) != len(java.classpath_jars()):
        return None
    from ..toolchains.maven_fetch import MAVEN_CENTRAL

    return JavaToolchain(javac, android_jar, tuple(jars), m2, install_api, into, tuple(fetch),
                         request.maven_url or MAVEN_CENTRAL)


# ------------------------------------------------------------------ planning

def aar_steps(config: BuildConfig, slices: tuple[SlicePlan, ...]) -> tuple[list[Step], list[ManifestArtifact]]:
    """Per ABI: the JNI project's view, configure/build/install, stripped libraries; then classes.jar, the AAR and
    the Maven folder. Returns the steps and the artifacts whose manifests the caller's ManifestStep writes."""
    from ..plan import cmake_steps

    target = config.recipe.target("android")
    assert target.jni is not None and target.java is not None and config.java is not None and config.ndk is not None
    spec, java, lite = target.jni, target.java, config.lite
    steps: list[Step] = []
    roots: list[tuple[str, Path]] = []
    keys: list[str] = []
    for sp in slices:
        abi = sp.slice.abi or sp.slice.name
        layout = jni.layout(sp.build_dir)
        defines = jni.jni_defines(spec, lite=lite, abi_defines=jni.toolchain_defines(sp.defines),
                                  install_dir=layout.install_dir)
        key = _digest(sp.key, {k: render_value(v) for k, v in defines.items()})
        keys.append(key)
        project = CMakeProject(name=f"{abi} jni", slice=sp.slice.name, source_dir=layout.source_dir(spec),
                               build_dir=layout.build_dir, install_dir=layout.install_dir, key=key,
                               cmake=config.cmake.path, env=sp.env,
                               meta={"tag": config.recipe.tag, "target": "android-jni", "slice": sp.slice.name,
                                     "key": key})
        libs = tuple(layout.install_dir / "lib" / f"lib{name}.so"
                     for name in (spec.library(lite), *spec.extra_libraries))
        stl = (_libcxx_shared(config, abi),) if config.stl == "c++_shared" else ()
        out = layout.root / "aar-input"
        steps += [JniViewStep(title=f"stage the JNI project for {abi}", slice=sp.slice.name, tree=config.source_path,
                              spec=spec, abi=abi, libtorch_install=sp.install_dir, view=layout.view),
                  *cmake_steps(project, target.generator, defines, config.jobs),
                  StripStep(title=f"strip {abi}'s libraries for the AAR", slice=sp.slice.name, abi=abi, libs=libs,
                            extra_libs=stl, include=sp.install_dir / "include", strip_from=layout.build_dir,
                            out=out)]
        roots.append((abi, out))
    artifact = config.artifact or "pytorch_android"
    aar_key = _digest(*keys, json.dumps([str(java), lite]))
    version = custom_version(config.recipe.tag, _coordinate_digest(config, slices))
    work = config.out_dir / "build" / f"android-aar-{aar_key[:12]}"
    tree = config.source_path
    classes, sources_jar = work / "classes.jar", work / f"{artifact}-{version}-sources.jar"
    aar = config.out_dir / f"{artifact}-{version}.aar"
    abis = tuple(a for a, _ in roots)
    aar_spec = aar_mod.AarSpec(abis=abis, jni_lib=f"lib{spec.library(lite)}.so",
                               runtime_libs=tuple(f"lib{n}.so" for n in spec.extra_libraries),
                               shared_stl=config.stl == "c++_shared", package=java.manifest_package,
                               min_sdk=java.min_sdk, require_16k=config.page_size_16k,
                               extra_system_libs=aar_mod.STANDIN_SYSTEM_LIBS if config.ndk.standin else ())
    repo = config.out_dir / "maven"
    steps += [
        JavaCompileStep(title="compile classes.jar (the release's Java API)", javac=config.java.javac,
                        source_root=tree / java.sources, exclude=() if lite else java.exclude_full,
                        sourcepath=tuple(tree / s for s in java.compile_only_sources),
                        classpath=(config.java.android_jar, *config.java.jars), release=JAVA_RELEASE,
                        classes_jar=classes, sources_jar=sources_jar),
        AarStep(title=f"write {aar.name}", abi_roots=tuple(roots), spec=aar_spec, classes_jar=classes,
                resources=tuple((k, tree / v) for k, v in sorted(java.resources.items())), dest=aar, key=aar_key),
        MavenStep(title=f"Maven folder {repo}", aar=aar, sources_jar=sources_jar, repo=repo, group=java.group,
                  artifact=artifact, version=version,
                  dependencies=tuple((d.group, d.artifact, d.version) for d in java.dependencies)),
    ]
    first = slices[0]
    facts = BuildFacts(target="android-aar", slice=",".join(abis), key=aar_key,
                       defines={k: render_value(v) for k, v in first.defines.items() if k != "ANDROID_ABI"},
                       env=dict(first.env), toolchain={"ndk": str(config.ndk.revision),
                                                       "ndk_path": str(config.ndk.path),
                                                       "javac": str(config.java.javac),
                                                       "android_jar": str(config.java.android_jar)})
    folder = repo.joinpath(*java.group.split("."), artifact, version)
    return steps, [ManifestArtifact(aar, facts), ManifestArtifact(folder, facts)]


def _libcxx_shared(config: BuildConfig, abi: str) -> Path:
    """The NDK's libc++_shared.so; with the NDK still to install (--install-ndk), where it will be (the plan is made
    again once it is installed)."""
    assert config.ndk is not None
    if config.ndk_install:
        return config.ndk.path / aar_mod.ndk_libcxx_rel(abi, "<host>")
    return aar_mod.ndk_libcxx_shared(config.ndk.path, abi)


def _coordinate_digest(config: BuildConfig, slices: tuple[SlicePlan, ...]) -> str:
    """What the published version names: the configuration, not where this machine keeps it (the build keys hold
    paths; the same build in another folder or on another machine must get the same Maven coordinates)."""
    from ..plan import ops_digest

    defines = [{k: render_value(v) for k, v in sp.defines.items() if not str(render_value(v)).startswith("/")}
               for sp in slices]
    ops = ops_digest(config)
    return _digest(config.recipe.tag, config.recipe.commit, [sp.slice.name for sp in slices], defines, ops,
                   sorted(config.features), sorted(config.system_libs), list(config.size_levers),
                   str(config.ndk.revision) if config.ndk else None, list(config.user_defines))


def _digest(*parts: object) -> str:
    return sha256_json(list(parts))
