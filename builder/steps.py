"""The steps of a plan, as typed data: one frozen dataclass per kind of step, each saying what it does
(``describe()``), the processes it starts (``commands()``, ``argv()``) and how it prints (``shell()``, ``to_json()``).

Targets (builder/targets) decide which steps a build has; ``execute`` runs them, dispatching on the type. Nothing
here runs anything. A new kind of step is a dataclass here, a member of ``Step``, and a case in ``execute``.

    NdkInstallStep                                     toolchain
    FetchTagStep VerifyCommitStep WorkTreeStep          source (git, exactly as it runs)
    SubmodulesStep PatchStep
    CMakeConfigureStep CMakeBuildStep CMakeInstallStep  any CMake project (libtorch per slice, or another project)
    JniViewStep                                         the JNI project's source view for one ABI (android)
    StripStep AarStep MavenStep JavaCompileStep          the AAR, its classes.jar and its Maven folder (android)
    ManifestStep HostSdkStep                            package: artifacts and their manifest.json
    VerifyStep                                          run models on a build and compare with torch
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from .install_graph import QUERY, InstallNeeds
from .install_graph import needs as install_needs
from .proc import Command
from .recipes import DefineValue

# ------------------------------------------------------------------ base


@dataclass(frozen=True, kw_only=True)
class BaseStep:
    kind: ClassVar[str]
    title: str
    slice: str | None = None

    def commands(self) -> tuple[Command, ...]:
        """The processes this step may start, exactly as they run (each note says when)."""
        return ()

    def argv(self) -> tuple[str, ...]:
        """The argv of a step that runs one command; () otherwise."""
        commands = self.commands()
        return commands[0].argv if len(commands) == 1 else ()

    def describe(self) -> str:
        return self.title

    def shell(self) -> str:
        """What --dry-run prints under the title: the command lines (with their notes)."""
        return "\n".join(c.shell() for c in self.commands())

    def to_json(self) -> dict[str, Any]:
        commands = self.commands()
        one = commands[0] if len(commands) == 1 else None
        out: dict[str, Any] = {
            "kind": self.kind, "title": self.describe(), "argv": list(one.argv) if one else [],
            "cwd": str(one.cwd) if one and one.cwd else None, "env": dict(one.env) if one else {},
            "slice": self.slice, "shell": self.shell() or f"# {self.describe()}"}
        if len(commands) > 1:
            out["commands"] = [c.to_json() for c in commands]
        return out


# ------------------------------------------------------------------ toolchain


@dataclass(frozen=True, kw_only=True)
class NdkInstallStep(BaseStep):
    """Download (pinned checksum), verify and unpack an NDK: in-process, the same as `builder ndk install`."""

    kind: ClassVar[str] = "ndk"
    version: str
    sdk_root: Path
    ndk_path: Path
    download_dir: Path

    def shell(self) -> str:
        return f"builder ndk install {self.version} --sdk {self.sdk_root}"


@dataclass(frozen=True, kw_only=True)
class PlatformInstallStep(BaseStep):
    """Download (pinned sha1 + sha256), verify and unpack android.jar of a compileSdk: the same as
    `builder sdk install`."""

    kind: ClassVar[str] = "sdk"
    api: int
    sdk_root: Path
    download_dir: Path

    def shell(self) -> str:
        return f"builder sdk install --api {self.api} --sdk {self.sdk_root}"


@dataclass(frozen=True, kw_only=True)
class MavenFetchStep(BaseStep):
    """Download the release's Java dependencies missing from the Maven folder (--install-ndk) into it, in Maven's
    layout, each checked against the .sha1 the repository publishes beside it (builder pins no checksum for them)."""

    kind: ClassVar[str] = "maven"
    coordinates: tuple[str, ...]        # group:artifact:version
    m2_repo: Path
    base_url: str

    def shell(self) -> str:
        return "\n".join(f"# download {c} from {self.base_url} into {self.m2_repo} (checked against its .sha1)"
                         for c in self.coordinates)


# ------------------------------------------------------------------ source


@dataclass(frozen=True, kw_only=True)
class SourceStepBase(BaseStep):
    kind: ClassVar[str] = "source"
    worktree: Path                      # the checkout the source steps prepare
    lock: Path | None = None            # held (with the others' locks) for the whole checkout


@dataclass(frozen=True, kw_only=True)
class FetchTagStep(SourceStepBase):
    mirror: Path                        # the shared bare repository
    url: str
    tag: str
    commit: str
    init: Command                       # when the mirror does not exist yet
    fetch: Command                      # unless the mirror already has the tag at the pinned commit

    def commands(self) -> tuple[Command, ...]:
        return (self.init, self.fetch)


@dataclass(frozen=True, kw_only=True)
class VerifyCommitStep(SourceStepBase):
    repo: Path
    ref: str                            # what must resolve to ``commit``
    tag: str = ""
    commit: str
    allow_unpinned: bool = False
    require_clean: bool = False         # a --source checkout: its root, and no local changes
    toplevel: Command | None = None
    status: Command | None = None
    rev: Command

    def commands(self) -> tuple[Command, ...]:
        return tuple(c for c in (self.toplevel, self.status, self.rev) if c is not None)


@dataclass(frozen=True, kw_only=True)
class WorkTreeStep(SourceStepBase):
    tree: Path
    tag: str
    mirror: Path
    url: str                            # upstream URL for origin (relative submodule URLs resolve against it)
    clone: Command
    status: Command
    update: Command                     # fetch the tag from the mirror into an existing tree
    checkout: Command
    set_url: Command

    def commands(self) -> tuple[Command, ...]:
        return (self.clone, self.status, self.update, self.checkout, self.set_url)


@dataclass(frozen=True, kw_only=True)
class SubmodulesStep(SourceStepBase):
    tree: Path
    paths: tuple[str, ...]
    git_config: tuple[str, ...]         # "key=value" passed as ``git -c``
    update: Command
    unshallow: Command                  # template: ``{path}`` is a submodule whose server refused a shallow fetch

    def commands(self) -> tuple[Command, ...]:
        return (self.update, self.unshallow)

    def unshallow_for(self, path: str) -> Command:
        return Command(tuple(a.replace("{path}", path) for a in self.unshallow.argv), self.unshallow.env,
                       self.unshallow.cwd)


@dataclass(frozen=True, kw_only=True)
class PatchStep(SourceStepBase):
    tree: Path
    patch: Path
    check: Command                      # does it apply?
    check_reverse: Command              # is it applied already?
    apply: Command

    def commands(self) -> tuple[Command, ...]:
        return (self.check, self.check_reverse, self.apply)


SourceStep = FetchTagStep | VerifyCommitStep | WorkTreeStep | SubmodulesStep | PatchStep


# ------------------------------------------------------------------ CMake


@dataclass(frozen=True)
class CMakeProject:
    """One CMake project in one build folder, what its configure, build and install steps share. Any project:
    libtorch for one slice, or a project built against a slice's install (a JNI library)."""

    name: str                           # in titles and progress: "arm64-v8a", "arm64-v8a jni"
    slice: str | None
    source_dir: Path
    build_dir: Path
    install_dir: Path                   # installed to ``install.partial`` first, then renamed here
    key: str                            # everything that changes the output; the stamp records it
    cmake: Path
    env: Mapping[str, str] = field(default_factory=dict)
    tree_key: str | None = None         # set when the build writes generated files into a shared source tree
    build_for_install: bool = False     # build what the install needs (builder.install_graph), not `all`
    meta: Mapping[str, Any] = field(default_factory=dict)   # written to the build folder (for `builder clean`)

    @property
    def staging_dir(self) -> Path:
        return self.build_dir / "install.partial"


@dataclass(frozen=True, kw_only=True)
class CMakeStepBase(BaseStep):
    project: CMakeProject

    def command(self) -> Command:
        raise NotImplementedError

    def commands(self) -> tuple[Command, ...]:
        return (self.command(),)


@dataclass(frozen=True, kw_only=True)
class CMakeConfigureStep(CMakeStepBase):
    kind: ClassVar[str] = "configure"
    generator: str
    defines: Mapping[str, DefineValue | int | Path]

    def command(self) -> Command:
        p = self.project
        note = f"after writing the file API query {p.build_dir / QUERY}" if p.build_for_install else None
        return Command((str(p.cmake), "-S", str(p.source_dir), "-B", str(p.build_dir), "-G", self.generator,
                        *(render_define(k, v) for k, v in self.defines.items())), p.env, note=note)


@dataclass(frozen=True, kw_only=True)
class CMakeBuildStep(CMakeStepBase):
    kind: ClassVar[str] = "build"
    jobs: int
    targets: tuple[str, ...] = ()

    def needs(self) -> InstallNeeds | None:
        """What the install needs built (read from the configured folder), when the project builds only that; None
        before configure, or when it builds `all`."""
        p = self.project
        return install_needs(p.build_dir) if p.build_for_install and not self.targets else None

    def command(self) -> Command:
        p = self.project
        needs = self.needs()
        chosen = ("--target", *self.targets) if self.targets else needs.build_args if needs else ()
        note = None
        if p.build_for_install and needs is None:
            note = ("--target <the install's targets>, read after configure from its file API reply and "
                    "build.ninja; `all` without a reply")
        elif needs is not None:
            note = f"builds {needs.describe()}"
        return Command((str(p.cmake), "--build", str(p.build_dir), *chosen, "-j", str(self.jobs)), p.env,
                       note=note)

    def shell(self) -> str:
        """The command, then why each target is built."""
        needs = self.needs()
        why = [f"#   {name}: {reason}" for name, reason in needs.why.items()] if needs else []
        why += [f"#   {path}: installed, written by a build.ninja edge no target owns"
                for path in (needs.paths if needs else ())]
        return "\n".join((super().shell(), *why))


@dataclass(frozen=True, kw_only=True)
class CMakeInstallStep(CMakeStepBase):
    kind: ClassVar[str] = "install"

    def command(self) -> Command:
        p = self.project
        return Command((str(p.cmake), "--install", str(p.build_dir), "--prefix", str(p.staging_dir)), p.env)


CMakeStep = CMakeConfigureStep | CMakeBuildStep | CMakeInstallStep


def render_value(value: DefineValue | int | Path) -> str:
    if isinstance(value, bool):
        return "ON" if value else "OFF"
    return str(value)


def render_define(key: str, value: DefineValue | int | Path) -> str:
    """The one place a typed define becomes ``-DKEY=VALUE``."""
    return f"-D{key}={render_value(value)}"


# ------------------------------------------------------------------ package


@dataclass(frozen=True)
class BuildFacts:
    """What an artifact's manifest says about the build of one slice, known when planning."""

    target: str                         # "android-arm64-v8a", "ios-SIMULATOR-x86_64", "host"
    slice: str
    key: str
    defines: Mapping[str, str]          # rendered, as CMake got them
    env: Mapping[str, str]
    toolchain: Mapping[str, str]        # {"ndk": ..., "ndk_path": ...} | {"host_compiler": ...} | ...


@dataclass(frozen=True)
class ManifestArtifact:
    path: Path
    facts: BuildFacts


@dataclass(frozen=True, kw_only=True)
class ManifestStep(BaseStep):
    """Write ``<artifact>.manifest.json`` beside each artifact (a folder or a file) not already described."""

    kind: ClassVar[str] = "package"
    artifacts: tuple[ManifestArtifact, ...]


@dataclass(frozen=True, kw_only=True)
class HostSdkStep(BaseStep):
    """The host SDK tarball (include/, lib/, share/cmake) of an install, and its manifest."""

    kind: ClassVar[str] = "package"
    install_dir: Path
    dest: Path
    facts: BuildFacts


# ------------------------------------------------------------------ the AAR (android)


@dataclass(frozen=True, kw_only=True)
class JniViewStep(BaseStep):
    """Stage the release's JNI project as a source view linked to one ABI's libtorch install (builder.jni)."""

    kind: ClassVar[str] = "jni"
    tree: Path
    spec: Any                           # builder.recipe_jni.JniSpec
    abi: str
    libtorch_install: Path
    view: Path

    def shell(self) -> str:
        return (f"# {self.view}: links to {self.tree} (read-only) and to {self.libtorch_install}/{{include,lib}}"
                f" at {self.spec.include_dir.format(abi=self.abi)} / {self.spec.libs_dir.format(abi=self.abi)}")


@dataclass(frozen=True, kw_only=True)
class StripStep(BaseStep):
    """Copy one ABI's shared libraries for the AAR, stripped as Gradle strips them (``--strip-unneeded`` with the
    JNI build's own CMAKE_STRIP), with the libtorch headers beside them: ``<out>/install/{lib,include}``."""

    kind: ClassVar[str] = "package"
    abi: str
    libs: tuple[Path, ...]              # from the JNI project's install
    extra_libs: tuple[Path, ...]        # shipped as they are (the NDK's libc++_shared.so)
    include: Path                       # libtorch's headers (the AAR's headers/)
    strip_from: Path                    # a CMake build folder whose CMakeCache.txt names CMAKE_STRIP
    out: Path

    def shell(self) -> str:
        names = " ".join(p.name for p in self.libs)
        return (f"# $CMAKE_STRIP (from {self.strip_from}/CMakeCache.txt) --strip-unneeded {names} "
                f"-> {self.out}/install/lib")


@dataclass(frozen=True, kw_only=True)
class JavaCompileStep(BaseStep):
    """classes.jar (and the sources jar) from the release's Java API: javac against android.jar and the Maven jars,
    with compile-only sources (fbjni's Java) on the source path (``-implicit:none``: not packaged); reproducible
    jars. The source files are listed when it runs (the tree is checked out by then)."""

    kind: ClassVar[str] = "java"
    javac: Path
    source_root: Path
    exclude: tuple[str, ...]            # relative to source_root (a full-JIT build leaves the Lite* classes out)
    sourcepath: tuple[Path, ...]
    classpath: tuple[Path, ...]
    release: int
    classes_jar: Path
    sources_jar: Path

    @property
    def classes_dir(self) -> Path:
        return self.classes_jar.with_name(self.classes_jar.name + ".d")

    @property
    def argfile(self) -> Path:
        """The source files, one quoted path a line (written when the step runs)."""
        return self.classes_jar.with_name(self.classes_jar.name + ".sources.txt")

    def commands(self) -> tuple[Command, ...]:
        argv = (str(self.javac), "--release", str(self.release), "-encoding", "UTF-8", "-proc:none",
                "-implicit:none", "-g:source,lines", "-nowarn", "-d", str(self.classes_dir),
                "-sourcepath", os.pathsep.join(map(str, self.sourcepath)),
                "-classpath", os.pathsep.join(map(str, self.classpath)), f"@{self.argfile}")
        return (Command(argv),)


@dataclass(frozen=True, kw_only=True)
class AarStep(BaseStep):
    """The AAR: jni/<abi>/ libraries, classes.jar, headers/, AndroidManifest.xml, res/ and R.txt, proguard.txt."""

    kind: ClassVar[str] = "package"
    abi_roots: tuple[tuple[str, Path], ...]   # (abi, StripStep.out)
    spec: Any                                 # builder.package.aar.AarSpec
    classes_jar: Path
    resources: tuple[tuple[str, Path], ...]   # (path in the AAR, file in the tree)
    dest: Path
    key: str                                  # the AAR is rebuilt when its manifest records another key

    def shell(self) -> str:
        return f"# write {self.dest} ({', '.join(a for a, _ in self.abi_roots)})"


@dataclass(frozen=True, kw_only=True)
class MavenStep(BaseStep):
    """A Maven repository folder Gradle reads (``maven {{ url "file://..." }}``): AAR, POM, sources jar, checksums,
    maven-metadata.xml."""

    kind: ClassVar[str] = "package"
    aar: Path
    sources_jar: Path
    repo: Path
    group: str
    artifact: str
    version: str
    dependencies: tuple[tuple[str, str, str], ...]   # (group, artifact, version), runtime scope

    def shell(self) -> str:
        return f"# publish {self.group}:{self.artifact}:{self.version} to {self.repo}"


PackageStep = ManifestStep | HostSdkStep | StripStep | AarStep | MavenStep


# ------------------------------------------------------------------ verify


@dataclass(frozen=True, kw_only=True)
class VerifyStep(BaseStep):
    """Run models on an install (a runner compiled with the build's own compiler, started natively, under
    qemu-user or over adb) and compare their outputs with torch's."""

    kind: ClassVar[str] = "verify"
    install_dir: Path
    models: tuple[Path, ...]
    shapes: str                         # random inputs of these shapes (e.g. 1x3x224x224)
    link_mode: str
    link_flags: tuple[str, ...]
    work_dir: Path                      # runner cache (shared across commands)
    tool_env: Mapping[str, str] = field(default_factory=dict)   # the machine's CXX, LIBRARY_PATH (the runner's)


Step = (NdkInstallStep | PlatformInstallStep | MavenFetchStep | SourceStep | CMakeStep | JniViewStep | PackageStep
        | JavaCompileStep | VerifyStep)
