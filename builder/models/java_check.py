"""The Java API of an AAR, proven on this machine's JVM (`builder verify --aar`).

An app calls ``LiteModuleLoader.load`` (``Module.load`` for full JIT) → ``forward(IValue.from(Tensor.fromBlob(...)))``
→ ``getDataAsFloatArray()``. This module does exactly that with the AAR's own ``classes.jar`` and ``jni/<abi>/``
libraries (``libpytorch_jni_lite.so``, ``libfbjni.so``, ``libc++_shared.so``) on the machine's JDK, through a small
Java program (``java/BuilderVerify.java``, package data) compiled against that ``classes.jar``; builder then compares
the outputs with torch eager like ``builder verify`` does.

A desktop JVM can load only libraries made for this machine's Linux: an AAR built with the stand-in NDK (Linux ELF)
for this machine's architecture (x86_64 here). An AAR built with Google's NDK holds Android (bionic) libraries: the
check says so and names what runs them (a device or an emulator running the app), instead of failing obscurely.
``nativeloader`` (the release's runtime dependency, from its gradle files) comes from the same Maven folders the
build read it from.
"""
from __future__ import annotations

import logging
import re
import zipfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from builder import atomic, proc
from builder.errors import UsageError, VerifyFailed
from builder.hashing import sha256_file, sha256_json
from builder.models import _torch
from builder.models.platform import host_abi
from builder.models.verify import (
    Tolerance,
    VerifyResult,
    compare,
    read_tensors,
    reference_outputs,
    write_tensors,
)
from builder.package.elf import read_elf

log = logging.getLogger("builder")

CHECK_SOURCE = Path(__file__).parent / "java" / "BuilderVerify.java"
MAIN_CLASS = "BuilderVerify"
_JNI = {"libpytorch_jni_lite.so": "lite", "libpytorch_jni.so": "full"}


@dataclass(frozen=True)
class AarSlice:
    """The part of an AAR the JVM check runs: one ABI's libraries and the classes."""

    aar: Path
    abi: str
    kind: str                       # "lite" (libpytorch_jni_lite.so) or "full" (libpytorch_jni.so)
    libraries: tuple[str, ...]      # member names under jni/<abi>/


@dataclass(frozen=True)
class JavaTools:
    java: Path
    javac: Path
    runtime_jars: tuple[Path, ...]   # the AAR's runtime dependencies (nativeloader), from the Maven folders
    source_dirs: tuple[Path, ...] = ()   # dependencies the release builds from sources (fbjni's Java), compiled here
    android_jar: Path | None = None      # last on the run-time classpath: the API names android.* types in signatures


def java_tools(aar: Path, tag: str | None, recipes_dir: Path | None, maven_repo: Path | None, android_sdk: Path | None,
               environ: Mapping[str, str], home: Path, checkouts: Callable[[str], Path]) -> JavaTools:
    """java, javac and what the AAR needs at run time: its Maven dependencies (nativeloader) from the Maven folders,
    and those the release compiles from its submodules (fbjni's Java: the recipe's ``from_sources``) from the Maven
    folders too when there, else from the release checkout (``checkouts(tag)``). The release is ``tag``, else the
    one named by the manifest builder wrote beside the AAR. All problems at once."""
    import json

    from builder.errors import BuilderError
    from builder.package.java import ClasspathSearch, MavenDep, find_maven_jar
    from builder.recipes import load_recipe
    from builder.toolchains.android_sdk import locate_android_jar, missing_message, sdk_roots
    from builder.toolchains.jdk import INSTALL_HINT, find_jdk_tool

    manifest = aar.with_name(aar.name + ".manifest.json")
    if tag is None and manifest.is_file():
        tag = str(json.loads(manifest.read_text(encoding="utf-8")).get("tag") or "") or None
    if tag is None:
        raise UsageError(f"which release is {aar.name} of? it has no {manifest.name} beside it",
                         hint="pass --tag (see `builder recipes list`)")
    spec = load_recipe(tag, recipes_dir).target("android").java
    if spec is None:
        raise UsageError(f"{tag}'s recipe has no Java API for android, so there is nothing to check")
    found = {name: find_jdk_tool(name, environ) for name in ("java", "javac")}
    problems = [f"{name} not found" for name, path in found.items() if path is None]
    search = ClasspathSearch(m2_repo=maven_repo or home / ".m2" / "repository", env=dict(environ), home=home)
    jars: list[Path] = []
    sources: list[Path] = []
    for coord in (*spec.dependencies, *spec.compile_only):
        try:
            jars.append(find_maven_jar(MavenDep(coord.group, coord.artifact, coord.version), search))
        except BuilderError:
            if coord.module not in spec.from_sources:
                problems.append(f"{coord} (pinned by {tag}) is not in {search.m2_repo} or the Gradle cache")
            elif not sources:
                tree = checkouts(tag)
                sources = [tree / rel for rel in spec.compile_only_sources]
                problems += [f"{coord} is in no Maven folder and {tag}'s checkout has no {p}" for p in sources
                             if not p.is_dir()]
    sdks = sdk_roots(android_sdk, environ, home)
    android_jar = locate_android_jar(sdks, spec.compile_sdk, environ, home)
    if android_jar is None:     # LiteModuleLoader's signatures name android.content.res.AssetManager
        problems.append(missing_message(sdks, spec.compile_sdk) + " (pass --android-sdk)")
    if problems:
        hint = INSTALL_HINT if any(p.startswith("java") for p in problems) else \
            "point --maven-repo and --android-sdk at what the build used"
        raise UsageError("the Java check cannot run: " + "; ".join(problems), hint=hint)
    java, javac = found["java"], found["javac"]
    assert java is not None and javac is not None
    return JavaTools(java, javac, tuple(jars), tuple(sources), android_jar)


def choose_slice(aar: Path, host_machine: str) -> AarSlice:
    """The ABI of ``aar`` whose libraries this machine's JVM can load; UsageError saying why none can."""
    if not aar.is_file():
        raise UsageError(f"AAR not found: {aar}", hint="pass the .aar that builder android wrote (see its output)")
    try:
        with zipfile.ZipFile(aar) as zf:
            names = zf.namelist()
            if "classes.jar" not in names:
                raise UsageError(f"{aar.name} has no classes.jar, so it has no Java API to check")
            by_abi: dict[str, list[str]] = {}
            for name in names:
                parts = name.split("/")
                if len(parts) == 3 and parts[0] == "jni" and parts[2].endswith(".so"):
                    by_abi.setdefault(parts[1], []).append(parts[2])
            abi = host_abi(host_machine)
            if abi is None or abi not in by_abi:
                have = ", ".join(sorted(by_abi)) or "none"
                raise UsageError(f"{aar.name} has no libraries this {host_machine} machine's JVM can load "
                                 f"(its ABIs: {have})", hint=f"build the AAR with --abi {abi or 'x86_64'} too, "
                                 "or check it on a machine of one of its ABIs")
            libs = tuple(sorted(by_abi[abi]))
            jni_lib = next((lib for lib in _JNI if lib in libs), None)
            if jni_lib is None:
                raise UsageError(f"{aar.name} has no {' or '.join(_JNI)} for {abi}")
            kind = _JNI[jni_lib]
            info = read_elf(zf.read(f"jni/{abi}/{jni_lib}"), what=f"{aar.name}:jni/{abi}/{jni_lib}")
    except zipfile.BadZipFile:
        raise UsageError(f"{aar} is not an AAR (not a zip file)") from None
    if "libc.so" in info.needed and "libc.so.6" not in info.needed:
        raise UsageError(f"{aar.name}'s {abi} libraries are Android's (bionic libc, Google's NDK): a desktop JVM "
                         "cannot load them", hint="run the app's instrumented tests on a device or emulator; "
                         "the JVM check runs AARs built with the stand-in NDK (Linux ELF)")
    return AarSlice(aar, abi, kind, libs)


def unpack(chosen: AarSlice, work_dir: Path) -> tuple[Path, Path]:
    """classes.jar and the ABI's library folder, unpacked once per AAR content into ``work_dir`` (atomically)."""
    dest = work_dir / f"aar-{sha256_file(chosen.aar)[:16]}-{chosen.abi}"
    if not (dest / ".complete").is_file():
        with atomic.atomic_dir(dest) as stage:
            with zipfile.ZipFile(chosen.aar) as zf:
                (stage / "classes.jar").write_bytes(zf.read("classes.jar"))
                (stage / "lib").mkdir()
                for lib in chosen.libraries:
                    (stage / "lib" / lib).write_bytes(zf.read(f"jni/{chosen.abi}/{lib}"))
            (stage / ".complete").write_text("")
    return dest / "classes.jar", dest / "lib"


def compile_check(tools: JavaTools, classes_jar: Path, work_dir: Path) -> Path:
    """BuilderVerify.class (and the dependencies built from sources) compiled against the AAR's classes.jar; cached
    by the content of everything compiled."""
    sources = [CHECK_SOURCE, *sorted(p for d in tools.source_dirs for p in d.rglob("*.java"))]
    key = sha256_json([sha256_file(classes_jar), str(tools.javac), [str(p) for p in tools.runtime_jars],
                       [sha256_file(p) for p in sources]])[:16]
    out = work_dir / f"java-check-{key}"
    if not (out / f"{MAIN_CLASS}.class").is_file():
        with atomic.atomic_dir(out) as stage:
            classpath = ":".join(str(p) for p in (classes_jar, *tools.runtime_jars))
            result = proc.run([tools.javac, "-nowarn", "-encoding", "UTF-8", "-cp", classpath, "-d", stage,
                               *sources], check=False)
            if result.returncode != 0:
                raise VerifyFailed(f"the Java check does not compile against {classes_jar.parent.name}/classes.jar: "
                                   f"{_first(result.stderr or result.stdout)}")
    return out


def run_check(tools: JavaTools, chosen: AarSlice, model: Path, inputs: Sequence[Any], work_dir: Path,
              timeout: float = 600) -> tuple[tuple[Any, ...], float | None]:
    """Run the model through the AAR's Java API; its outputs and forward time (ms)."""
    classes_jar, lib_dir = unpack(chosen, work_dir)
    check_dir = compile_check(tools, classes_jar, work_dir)
    in_path, out_path = work_dir / f"{model.stem}.java.inputs.bt", work_dir / f"{model.stem}.java.outputs.bt"
    write_tensors(in_path, inputs)
    out_path.unlink(missing_ok=True)
    tail = (tools.android_jar,) if tools.android_jar is not None else ()
    classpath = ":".join(str(p) for p in (check_dir, classes_jar, *tools.runtime_jars, *tail))
    argv: list[str | Path] = [tools.java, f"-Djava.library.path={lib_dir}", "-cp", classpath, MAIN_CLASS,
                              chosen.kind, model, in_path, out_path]
    # System.loadLibrary opens libpytorch_jni_lite.so by path; its DT_NEEDED (libfbjni.so, libc++_shared.so)
    # are found by the dynamic linker, which reads LD_LIBRARY_PATH, not java.library.path.
    try:
        result = proc.run(argv, env=_library_env(lib_dir), check=False, timeout=timeout)
    except proc.TimedOut:
        raise VerifyFailed(f"the Java check did not finish {model.name} within {timeout:g} s") from None
    if result.returncode != 0:
        raise VerifyFailed(f"the Java check failed on {model.name}: {_failure(result.stderr or result.stdout)}")
    match = re.search(r"forward_ms=([0-9.eE+-]+)", result.stdout)
    return read_tensors(out_path), (float(match.group(1)) if match else None)


def verify_aar(tools: JavaTools, chosen: AarSlice, model: Path, inputs: Sequence[Any], work_dir: Path,
               tolerance: Tolerance | None = None, timeout: float = 600) -> VerifyResult:
    """``model`` through the AAR's Java API on this JVM vs torch eager; VerifyFailed unless they agree."""
    if chosen.kind == "lite" and _torch.model_kind(model) != "lite":
        raise UsageError(f"{model} is not a lite-interpreter file and this AAR is lite",
                         hint=f"export it first: builder export {model}")
    work_dir.mkdir(parents=True, exist_ok=True)
    actual, forward_ms = run_check(tools, chosen, model, inputs, work_dir, timeout)
    expected = reference_outputs(model, inputs)
    max_abs, max_rel = compare(actual, expected, tolerance or Tolerance())
    shapes = tuple(tuple(int(d) for d in a.shape) for a in actual)
    log.info("%s via %s's Java API: %d output(s) match torch (max abs %.3g)", model, chosen.aar.name, len(shapes),
             max_abs)
    return VerifyResult(model, chosen.aar, shapes, max_abs, max_rel, forward_ms, str(_torch.torch().__version__))


def _library_env(lib_dir: Path) -> Mapping[str, str]:
    return {"LD_LIBRARY_PATH": str(lib_dir)}


def _first(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[0][:400] if lines else "no output"


def _failure(text: str) -> str:
    """The most telling line of a JVM failure: the exception, else the first line."""
    for line in text.splitlines():
        if re.search(r"(Exception|Error)(:|$)", line):
            return line.strip()[:400]
    return _first(text)
