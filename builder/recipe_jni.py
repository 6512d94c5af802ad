"""Recipe data for what an AAR holds beyond libtorch: the release's JNI project and its Java API.

``[targets.android.jni]`` and ``[targets.android.java]`` in recipes/<tag>.toml (format: recipes/README.md). Parsed
by builder.recipes, used by builder.jni (the JNI library per ABI) and the AAR/POM steps.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .recipes import Defines


def _ro(d: Mapping[str, Any] | None = None) -> Mapping[str, Any]:
    return MappingProxyType(dict(d or {}))


@dataclass(frozen=True)
class JniSpec:
    """The release's own JNI CMake project (android/pytorch_android at 1.x), configured as its build.gradle does."""

    project: str                        # folder in the tree holding the CMakeLists.txt
    defines: Defines                    # always (build.gradle externalNativeBuild arguments)
    full_defines: Defines               # added for a full-JIT build
    libs_dir: str                       # where the project imports libtorch's static libraries ({abi})
    include_dir: str                    # where it finds libtorch's headers ({abi})
    library_lite: str                   # the JNI library's name (lib<name>.so)
    library_full: str
    extra_libraries: tuple[str, ...] = ()   # other shared libraries the project installs (fbjni)
    submodules: tuple[str, ...] = ()        # what only the JNI project compiles (fbjni): fetched when an AAR is made

    def library(self, lite: bool) -> str:
        return self.library_lite if lite else self.library_full


@dataclass(frozen=True)
class MavenCoordinate:
    group: str
    artifact: str
    version: str

    @classmethod
    def parse(cls, text: str) -> MavenCoordinate:
        parts = text.split(":")
        if len(parts) != 3 or not all(parts):
            raise ValueError(f"'{text}' is not group:artifact:version")
        return cls(*parts)

    def __str__(self) -> str:
        return f"{self.group}:{self.artifact}:{self.version}"

    @property
    def module(self) -> str:
        return f"{self.group}:{self.artifact}"


@dataclass(frozen=True)
class JavaSpec:
    """The release's Java API (org.pytorch.*) and what it compiles against."""

    sources: str                                    # source root in the tree
    exclude_full: tuple[str, ...]                   # left out of a full-JIT build (build.gradle sourceSets)
    compile_only_sources: tuple[str, ...]           # compiled for the classpath, not packaged (fbjni's Java)
    compile_sdk: int
    min_sdk: int
    target_sdk: int
    group: str                                      # POM groupId
    dependencies: tuple[MavenCoordinate, ...]       # runtime dependencies (POM), also on the compile classpath
    compile_only: tuple[MavenCoordinate, ...] = ()  # compile classpath only (what a dependency brings along)
    from_sources: tuple[str, ...] = ()              # "group:artifact" of dependencies compile_only_sources provide

    manifest_package: str = "org.pytorch"
    resources: Mapping[str, str] = field(default_factory=_ro)   # AAR path -> tree path (res/, R.txt ...)

    def classpath_jars(self) -> tuple[MavenCoordinate, ...]:
        """The Maven jars javac needs: dependencies and compile-only ones, minus those built from sources."""
        return tuple(c for c in (*self.dependencies, *self.compile_only) if c.module not in self.from_sources)


def parse_jni(get: Any, defines: Any, strings: Any) -> JniSpec:
    """From a recipe table reader (builder.recipes._Reader's get/defines/strings)."""
    return JniSpec(project=get("project", str), defines=defines("defines"), full_defines=defines("full_defines"),
                   libs_dir=get("libs_dir", str), include_dir=get("include_dir", str),
                   library_lite=get("library_lite", str), library_full=get("library_full", str),
                   extra_libraries=strings("extra_libraries"), submodules=strings("submodules"))


def parse_java(get: Any, strings: Any, where: str) -> JavaSpec:
    from .errors import RecipeError

    def coords(key: str) -> tuple[MavenCoordinate, ...]:
        try:
            return tuple(MavenCoordinate.parse(s) for s in strings(key))
        except ValueError as exc:
            raise RecipeError(f"{where}.{key}: {exc}") from None

    return JavaSpec(sources=get("sources", str), exclude_full=strings("exclude_full"),
                    compile_only_sources=strings("compile_only_sources"), compile_sdk=get("compile_sdk", int),
                    min_sdk=get("min_sdk", int), target_sdk=get("target_sdk", int), group=get("group", str),
                    dependencies=coords("dependencies"), compile_only=coords("compile_only"),
                    manifest_package=get("manifest_package", str, "org.pytorch"),
                    from_sources=strings("from_sources"),
                    resources=_ro(get("resources", dict, {})))
