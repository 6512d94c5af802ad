#!/usr/bin/env python3
"""Android on a real PyTorch tree (v1.13.1 by default), measured by builder itself (issues 15, 19). Hours; never in CI.

    python benchmarks/real_android.py --mirror DIR [--root DIR] [--tag v1.13.1] [--phases standin,model,build,...]
    python benchmarks/real_android.py --report [--tag T]  # only re-render docs/benchmarks.md's Android section of T

Needs an upstream-shaped mirror of the release holding the submodules the Android configuration compiles at its
pins (--mirror; how the v1.13.1 and v2.6.0 ones were made: docs/real_pytorch_notes.md, sections 6 and 7), Debian's cross
compilers, qemu-user-static, glslc, libvulkan-dev and a JDK. The NDK is the STAND-IN (tests/fixtures/standin_ndk.py):
each ABI maps to a Debian cross compiler, so the libraries are Linux ELF for the right machine, and the verify runner
runs under qemu-user: real ARM instructions, emulated Linux user mode, not a device.

Phases (each recorded in ROOT/android-results.json; a phase already "ok" is skipped unless named in --phases):
  standin  the stand-in NDK (Vulkan-capable; the revision is the recipe's ndk_default) and the stand-in android.jar
           (the recipe's compileSdk) / nativeloader (the version the recipe pins)
  model    the MobileNetV2-style model (benchmarks/mobilenet_model.py), exported with the recipe's bytecode_max
           capped at 8 (what v1.13.1 writes; every recipe with a runtime here reads it)
  build    ONE builder command for arm64-v8a, armeabi-v7a and x86_64 (resumable: a re-run finishes what is missing;
           per-ABI figures come from each build folder's .ninja_log, so they hold even when the build was resumed)
  verify   `builder verify` of the model on each ABI's build (qemu-user for the ARM ABIs, native for x86_64)
  java     `builder verify --aar`: the model through the AAR's own Java API (LiteModuleLoader) on this machine's JVM,
           with the AAR's x86_64 libraries (stand-in NDK: Linux ELF)
  sizes    `builder size` of the arm64-v8a build: the stripped runner that runs the model
  ops      arm64-v8a and x86_64 again (--ops-abis) with `--model` + `--size-levers`, in one command, each verified
           and sized the same way; the AAR's libpytorch_jni_lite.so per ABI beside the full build's
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from doc_section import replace_section
from ninja_log import ninja_figures

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
DOC = REPO / "docs" / "benchmarks.md"
BEGIN, END = "<!-- android:begin -->", "<!-- android:end -->"
TAG = "v1.13.1"                # --tag; one root per release (ROOT/android-results.json holds one release)
ALL_ABIS = ("arm64-v8a", "armeabi-v7a", "x86_64")
ABIS = VERIFY_ABIS = ALL_ABIS
OPS_ABIS = ("arm64-v8a", "x86_64")      # the ABIs issue 16 asks the --model + --size-levers AAR for
PHASES = ("standin", "model", "build", "verify", "java", "sizes", "ops")


def markers(tag: str) -> tuple[str, str]:
    """docs/benchmarks.md's section of a release (v1.13.1's keeps its first markers)."""
    name = "android" if tag == "v1.13.1" else f"android-{tag}"
    return f"<!-- {name}:begin -->", f"<!-- {name}:end -->"


def main(argv: list[str] | None = None) -> int:
    global ABIS, VERIFY_ABIS, OPS_ABIS, TAG, BEGIN, END
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--root", type=Path, default=Path("/work/real"))
    ap.add_argument("--mirror", type=Path, help="the release's upstream-shaped mirror (default ROOT/mirror)")
    ap.add_argument("--tag", default=TAG, help="the release (its recipe: NDK, compileSdk, Maven pins)")
    ap.add_argument("--phases", default=",".join(PHASES))
    ap.add_argument("--abis", default=",".join(ALL_ABIS), help="ABIs of the build phase (default: all three)")
    ap.add_argument("--ops-abis", default=",".join(OPS_ABIS), help="ABIs of the ops phase (one command)")
    ap.add_argument("--report", action="store_true", help="only render docs/benchmarks.md")
    args = ap.parse_args(argv)
    TAG = args.tag
    BEGIN, END = markers(TAG)
    root = args.root.resolve()
    results_path = root / "android-results.json"
    results = json.loads(results_path.read_text()) if results_path.is_file() else {"phases": {}, "tag": TAG}
    if results.get("tag", "v1.13.1") != TAG:
        ap.error(f"{results_path} holds {results.get('tag', 'v1.13.1')}'s results: use another --root for {TAG}")
    if not args.report:
        ABIS = VERIFY_ABIS = tuple(a for a in args.abis.split(",") if a)
        OPS_ABIS = tuple(a for a in args.ops_abis.split(",") if a)
        mirror = (args.mirror or root / "mirror").resolve()
        for phase in [p for p in args.phases.split(",") if p]:
            if phase not in PHASES:
                ap.error(f"unknown phase {phase}: choose from {', '.join(PHASES)}")
            print(f"[real_android] phase {phase} ...", flush=True)
            t0 = time.monotonic()
            record = globals()[f"phase_{phase}"](root, mirror, results)
            record.update(phase_seconds=round(time.monotonic() - t0, 1), finished=time.strftime("%Y-%m-%d %H:%M"))
            results["phases"][phase] = record
            results_path.write_text(json.dumps(results, indent=1, sort_keys=True))
            print(f"[real_android] {phase}: {record.get('status')}", flush=True)
    render(results)
    return 0


# ------------------------------------------------------------------------------------------------ running
def run(argv: list[Any], log: Path, env: dict[str, str] | None = None, timeout: float | None = None
        ) -> tuple[int, str, float]:
    log.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    with log.open("a") as fh:
        fh.write(f"\n$ {' '.join(map(str, argv))}\n")
        fh.flush()
        proc = subprocess.run([str(a) for a in argv], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              env={**os.environ, **(env or {})}, timeout=timeout)
        fh.write(proc.stdout)
    return proc.returncode, proc.stdout, time.monotonic() - t0


def builder(*args: Any) -> list[Any]:
    return [sys.executable, "-m", "builder", *args]


def android_argv(root: Path, mirror: Path, abis: tuple[str, ...], out: str, *extra: Any) -> list[Any]:
    java = root / "standin-android"      # STAND-IN android.jar and nativeloader (tests/fixtures/standin_android.py)
    return builder("android", "--tag", TAG, "--mirror", f"file://{mirror}/", "--allow-unpinned",
                   "--ndk", root / "ndk-standin", *[a for abi in abis for a in ("--abi", abi)], "--cache", "ccache",
                   "--android-sdk", java / "sdk", "--maven-repo", java / "m2", "--out", root / out, *extra)


def build_env(root: Path) -> dict[str, str]:
    return {"CCACHE_DIR": str(root / "ccache"), "CCACHE_MAXSIZE": "30G"}


def slices_of(root: Path, mirror: Path, abis: tuple[str, ...], out: str, *extra: Any) -> dict[str, dict[str, Any]]:
    code, text, _ = run([*android_argv(root, mirror, abis, out, *extra), "--json"], root / "logs" / "plans.log",
                        build_env(root))
    if code != 0:
        raise SystemExit(f"builder --json failed: {text[-2000:]}")
    plan = json.loads(text[text.index("{"):])
    return {s["name"]: s for s in plan["slices"]}


def lib_sizes(install: Path) -> dict[str, int]:
    return {p.name: p.stat().st_size for p in sorted((install / "lib").glob("*.a"))}


# ------------------------------------------------------------------------------------------------ phases
def _recipe() -> Any:
    """TAG's recipe, read by this checkout's builder."""
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    from builder.recipes import load_recipe

    return load_recipe(TAG)


def phase_standin(root: Path, mirror: Path, results: dict[str, Any]) -> dict[str, Any]:
    recipe = _recipe()                                  # (puts this checkout on sys.path for the fixtures too)
    from tests.fixtures.standin_android import make_standin_android
    from tests.fixtures.standin_ndk import make_standin_ndk, vulkan_available

    missing = vulkan_available()
    if missing:
        return {"status": "failed", "error": missing}
    java = recipe.targets["android"].java
    if recipe.ndk_default is None or java is None:
        return {"status": "failed", "error": f"{TAG}'s recipe has no ndk_default or android Java spec"}
    loader = next(d.version for d in java.dependencies if d.artifact == "nativeloader")
    make_standin_ndk(root / "ndk-standin", recipe.ndk_default, vulkan=True, libcxx=True)
    make_standin_android(root / "standin-android", api=java.compile_sdk, nativeloader=loader)
    tools = {}
    for exe in ("aarch64-linux-gnu-g++", "arm-linux-gnueabihf-g++", "c++", "qemu-aarch64-static", "glslc", "javac"):
        code, text, _ = run([exe, "--version"], root / "logs" / "standin.log")
        tools[exe] = text.splitlines()[0] if code == 0 and text else "missing"
    return {"status": "ok", "tools": tools}


def phase_model(root: Path, mirror: Path, results: dict[str, Any]) -> dict[str, Any]:
    cap = min(8, _recipe().bytecode_max or 8)
    code, text, secs = run([sys.executable, HERE / "mobilenet_model.py", root / "model", "--bytecode-max", cap],
                           root / "logs" / "model.log")
    return {"status": "ok" if code == 0 else "failed", "seconds": round(secs, 1)}


def built_slices(text: str, planned: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The build folders the run really used: the install artifacts builder printed. They differ from the dry-run's
    when the tag checks out another commit than the recipe's (--allow-unpinned on this mirror: keys hold it)."""
    out = {abi: dict(rec) for abi, rec in planned.items()}
    for path in re.findall(r"artifact: (\S+)/install \(manifest", text):
        folder = Path(path)
        for abi in out:
            if folder.name.startswith(f"android-{abi}-"):
                out[abi].update(build_dir=str(folder), install_dir=str(folder / "install"))
    return out


def phase_build(root: Path, mirror: Path, results: dict[str, Any]) -> dict[str, Any]:
    argv = android_argv(root, mirror, ABIS, "out")
    code, text, secs = run(argv, root / "logs" / "android-build.log", build_env(root))
    slices = built_slices(text, slices_of(root, mirror, ABIS, "out"))
    per_abi = {abi: {"build_dir": s["build_dir"], **ninja_figures(Path(s["build_dir"])),
                     "libs": lib_sizes(Path(s["install_dir"])) if Path(s["install_dir"]).is_dir() else {}}
               for abi, s in slices.items()}
    hits = re.search(r"compiler cache[^\n]*?(\d+)% \((\d+)/(\d+)\)", text)
    return {"status": "ok" if code == 0 else "failed", "exit": code, "command": " ".join(map(str, argv)),
            "seconds": round(secs), "abis": per_abi, "cache": hits.group(0) if hits else None,
            "aar": aar_facts(root / "out"), "tail": text.strip().splitlines()[-6:]}


def aar_facts(out: Path) -> dict[str, Any]:
    """The AAR's members (sizes) as builder wrote it, and its Maven folder's files."""
    import zipfile

    found = sorted(out.glob("*.aar"), key=lambda p: p.stat().st_mtime)     # the one this run wrote: the newest
    if not found:
        return {}
    with zipfile.ZipFile(found[-1]) as zf:
        members = {i.filename: i.file_size for i in zf.infolist() if not i.filename.endswith("/")}
    maven = sorted(str(p.relative_to(out)) for p in (out / "maven").rglob("*") if p.is_file())
    headers = sum(1 for m in members if m.startswith("headers/"))
    return {"file": found[-1].name, "bytes": found[-1].stat().st_size,
            "members": {k: v for k, v in members.items() if not k.startswith("headers/")},
            "headers": headers, "maven": maven}


def _verify(root: Path, install: Path, name: str) -> dict[str, Any]:
    model = root / "model"
    code, text, secs = run(builder("verify", "--build", install, "--model", model / "mobilenet_v2.ptl",
                                   "--inputs", model / "mobilenet_v2.inputs.bt"), root / "logs" / f"verify-{name}.log")
    err = re.search(r"max abs ([0-9.e+-]+)", text)
    where = re.search(r"ran on ([^)]*\))", text) or re.search(r"ran on ([^:]*):", text)
    return {"status": "ok" if code == 0 else "failed", "exit": code, "seconds": round(secs),
            "max_abs": float(err.group(1)) if err else None, "ran_on": where.group(1) if where else None,
            "tail": text.strip().splitlines()[-3:]}


def built_installs(root: Path, mirror: Path, results: dict[str, Any], abis: tuple[str, ...]) -> dict[str, Path]:
    """The install folders the build phase made (recorded), else where builder's plan puts them now."""
    recorded = results.get("phases", {}).get("build", {}).get("abis", {})
    if all(abi in recorded for abi in abis):
        return {abi: Path(recorded[abi]["build_dir"]) / "install" for abi in abis}
    slices = slices_of(root, mirror, abis, "out")
    return {abi: Path(slices[abi]["install_dir"]) for abi in abis}


def phase_verify(root: Path, mirror: Path, results: dict[str, Any]) -> dict[str, Any]:
    installs = built_installs(root, mirror, results, VERIFY_ABIS)
    out = {abi: _verify(root, install, abi) for abi, install in installs.items() if install.is_dir()}
    ok = bool(out) and all(v["status"] == "ok" for v in out.values())
    return {"status": "ok" if ok else "failed", "abis": out}


def phase_java(root: Path, mirror: Path, results: dict[str, Any]) -> dict[str, Any]:
    found = sorted((root / "out").glob("*.aar"), key=lambda p: p.stat().st_mtime)
    if not found:
        return {"status": "failed", "tail": ["no AAR in out/: run the build phase first"]}
    return _java_verify(root, found[-1], "verify-java")


def _java_verify(root: Path, aar: Path, log: str) -> dict[str, Any]:
    """`builder verify --aar`: the model through the AAR's Java API on this machine's JVM (its x86_64 slice)."""
    model, java = root / "model", root / "standin-android"
    code, text, secs = run(builder("verify", "--aar", aar, "--model", model / "mobilenet_v2.ptl", "--inputs",
                                   model / "mobilenet_v2.inputs.bt", "--maven-repo", java / "m2", "--android-sdk",
                                   java / "sdk"), root / "logs" / f"{log}.log")
    err = re.search(r"max abs ([0-9.e+-]+)", text)
    fwd = re.search(r"forward ([0-9.]+ ms)", text)
    return {"status": "ok" if code == 0 else "failed", "exit": code, "seconds": round(secs), "aar": aar.name,
            "max_abs": float(err.group(1)) if err else None, "forward": fwd.group(1) if fwd else None,
            "tail": text.strip().splitlines()[-3:]}


def _size(root: Path, install: Path, name: str, *extra: Any) -> dict[str, Any]:
    model = root / "model"
    code, text, secs = run(builder("size", "--build", install, "--model", model / "mobilenet_v2.ptl", "--inputs",
                                   model / "mobilenet_v2.inputs.bt", "--json", *extra), root / "logs" / f"size-{name}.log")
    try:
        data = json.loads(text[text.index("{"):])
    except ValueError:
        return {"status": "failed", "exit": code, "tail": text.strip().splitlines()[-5:]}
    report = data.get("report", data)
    return {"status": "ok" if code == 0 else "failed", "stripped": report.get("stripped_size"),
            "unstripped": report.get("binary_size"), "verified": report.get("verified"), "seconds": round(secs)}


def phase_sizes(root: Path, mirror: Path, results: dict[str, Any]) -> dict[str, Any]:
    install = built_installs(root, mirror, results, ("arm64-v8a",))["arm64-v8a"]
    full = _size(root, install, "arm64-full")
    return {"status": full["status"], "full": full}


def phase_ops(root: Path, mirror: Path, results: dict[str, Any]) -> dict[str, Any]:
    extra = ("--model", root / "model" / "mobilenet_v2.pt", "--size-levers")
    argv = android_argv(root, mirror, OPS_ABIS, "out-ops", *extra)
    code, text, secs = run(argv, root / "logs" / "android-ops.log", build_env(root))
    slices = built_slices(text, slices_of(root, mirror, OPS_ABIS, "out-ops", *extra))
    per_abi: dict[str, Any] = {}
    for abi, s in slices.items():
        rec = {"build_dir": s["build_dir"], **ninja_figures(Path(s["build_dir"]))}
        install = Path(s["install_dir"])
        if code == 0 and install.is_dir():
            rec["verify"] = _verify(root, install, f"{abi}-ops")
            rec["size"] = _size(root, install, f"{abi}-ops", "--link", "registrations")
        per_abi[abi] = rec
    aar = aar_facts(root / "out-ops")
    java = (_java_verify(root, root / "out-ops" / aar["file"], "verify-java-ops")
            if code == 0 and aar and "x86_64" in per_abi else None)
    return {"status": "ok" if code == 0 else "failed", "exit": code, "seconds": round(secs),
            "command": " ".join(map(str, argv)), "abis": per_abi, "aar": aar, "java": java,
            "tail": text.strip().splitlines()[-6:]}


def ops_per_abi(ops: dict[str, Any]) -> dict[str, Any]:
    """The ops phase's figures per ABI (a record from before --ops-abis held arm64-v8a's at its top level)."""
    return ops.get("abis") or ({"arm64-v8a": ops} if ops.get("edges") else {})


# ------------------------------------------------------------------------------------------------ report
def _mib(n: Any) -> str:
    return f"{n / 2**20:.1f} MiB" if isinstance(n, int) else "-"


def _short(command: str) -> str:
    """A recorded builder command as a user types it: `builder ...`, this machine's paths kept."""
    return "builder " + command.split(" -m builder ", 1)[1] if " -m builder " in command else command


def _t(s: Any) -> str:
    if not isinstance(s, (int, float)):
        return "-"
    return f"{s / 60:.0f} min" if s >= 600 else f"{s:.0f} s"


def render(results: dict[str, Any]) -> None:
    ph = results.get("phases", {})
    lines = [BEGIN, f"## Android {TAG} on the real tree (stand-in NDK; `python benchmarks/real_android.py`)", "",
             "STAND-IN NDK: each ABI compiled by a Debian cross compiler (Linux ELF, right machine, not loadable on a "
             "phone); ARM runs are qemu-user: real ARM instructions, emulated Linux user mode, not a device.", ""]
    build = ph.get("build", {})
    if build:
        lines += [f"Command ({build.get('status')}, exit {build.get('exit')}): `{build.get('command', '')}`", "",
                  "| ABI | Ninja edges | build wall | summed edge time | libtorch_cpu.a | verify (max abs error) | ran on |",
                  "| --- | --- | --- | --- | --- | --- | --- |"]
        verify = ph.get("verify", {}).get("abis", {})
        for abi, rec in build.get("abis", {}).items():
            v = verify.get(abi, {})
            verdict = f"{v.get('status')} ({v.get('max_abs'):.1e})" if v.get("max_abs") is not None else v.get("status", "-")
            lines.append(f"| {abi} | {rec.get('edges', '-')} | {_t(rec.get('wall_seconds'))} | "
                         f"{_t(rec.get('edge_seconds'))} | {_mib(rec.get('libs', {}).get('libtorch_cpu.a'))} | "
                         f"{verdict} | {v.get('ran_on') or '-'} |")
        lines += ["", f"Compiler cache, last command of the phase: {build.get('cache') or 'n/a'} (each ABI has its own "
                  "compiler, so ccache cannot share objects between ABIs). Build wall/summed time are read from each "
                  "build folder's .ninja_log: a folder filled from ccache (a re-keyed folder of an ABI built before) "
                  "shows ccache's time, not a cold build's (docs/real_pytorch_notes.md 6.4 has both)."]
        aar = build.get("aar") or {}
        if aar:
            lines += ["", f"The AAR, `{aar['file']}` ({_mib(aar['bytes'])}; {aar['headers']} header files under "
                      "headers/; classes.jar, android.jar and nativeloader are compiled against STAND-INS):", "",
                      "| member | bytes |", "| --- | --- |"]
            lines += [f"| {name} | {size:,} |" for name, size in sorted(aar["members"].items())]
            lines += ["", "The release's own Gradle build of pytorch_android_lite (android/pytorch_android/build.gradle, "
                      "CMakeLists.txt) packages the same members: AndroidManifest.xml, classes.jar, jni/<abi>/"
                      "{libpytorch_jni_lite,libfbjni,libc++_shared}.so, headers/ (its build.gradle's addFolderToAar),"
                      " R.txt and res/ (src/main/res); builder adds proguard.txt (keep rules for the JNI-called "
                      "classes)."]
            version = aar["file"].removesuffix(".aar").split("-", 1)[1]
            lines += ["", "Maven folder: " + ", ".join(f"`{m}`" for m in aar["maven"] if f"/{version}/" in m and
                                                       m.endswith((".aar", ".pom", "-sources.jar")))]
    java = ph.get("java", {})
    if java:
        lines += ["", f"`builder verify --aar {java.get('aar')}` (the model through the AAR's Java API: "
                  "LiteModuleLoader.load -> forward -> getDataAsFloatArray, on this machine's JVM with the AAR's "
                  f"jni/x86_64/ libraries and classes.jar): {java.get('status')}, max abs error "
                  f"{java.get('max_abs') if java.get('max_abs') is not None else '-'}, forward {java.get('forward') or '-'}"
                  " (stand-in x86_64 libraries: Linux ELF, so a desktop JVM loads them; a Google-NDK AAR needs a device)."]
    ops_aar = (ph.get("ops", {}).get("aar") or {}).get("members", {})
    jni = {k.split("/")[1]: v for k, v in (build.get("aar") or {}).get("members", {}).items()
           if k.endswith("/libpytorch_jni_lite.so")}
    if jni:
        lines += ["", "| libpytorch_jni_lite.so (stripped) | full build | `--model` + `--size-levers` |",
                  "| --- | --- | --- |"]
        lines += [f"| {abi} | {size:,} | {ops_aar.get(f'jni/{abi}/libpytorch_jni_lite.so', '-'):,} |"
                  if isinstance(ops_aar.get(f'jni/{abi}/libpytorch_jni_lite.so'), int) else f"| {abi} | {size:,} | - |"
                  for abi, size in sorted(jni.items())]
    sizes, ops = ph.get("sizes", {}), ph.get("ops", {})
    for abi, rec in ops_per_abi(ops).items():
        v = rec.get("verify") or {}
        lines += ["", f"The `--model` + `--size-levers` build ({abi}, {ops.get('status')}): {rec.get('edges')} Ninja "
                  f"edges (only what the install needs), {_t(rec.get('wall_seconds'))} wall, "
                  f"{_t(rec.get('edge_seconds'))} summed; verify {v.get('status', '-')} (max abs "
                  f"{v.get('max_abs', '-')}, {v.get('ran_on') or '-'})."]
    if ops.get("abis") and ops.get("aar"):
        java = ops.get("java") or {}
        lines += ["", f"Its AAR, one command for {', '.join(ops['abis'])} (`{_short(ops.get('command', ''))}`): "
                  f"`{ops['aar']['file']}`, {_mib(ops['aar']['bytes'])} (the full build's: "
                  f"{_mib((build.get('aar') or {}).get('bytes'))} for three ABIs); the same command again: "
                  f"{_t(ops.get('seconds'))}, the same AAR. Through its Java API (`builder verify --aar`, x86_64 slice on "
                  f"this machine's JVM): {java.get('status', '-')}, max abs {java.get('max_abs', '-')}, forward "
                  f"{java.get('forward') or '-'}."]
    if sizes or ops:
        full = sizes.get("full", {})
        lines += ["", "| program running the model | ABI | stripped | verified |", "| --- | --- | --- | --- |",
                  f"| full build, --whole-archive | arm64-v8a | {_mib(full.get('stripped'))} | "
                  f"{full.get('verified') or '-'} |"]
        lines += [f"| `--model` + `--size-levers` build, registrations link | {abi} | "
                  f"{_mib(rec['size'].get('stripped'))} | {rec['size'].get('verified') or '-'} |"
                  for abi, rec in ops_per_abi(ops).items() if rec.get("size")]
    lines.append(END)
    replace_section(DOC, BEGIN, END, "\n".join(lines))


if __name__ == "__main__":
    raise SystemExit(main())
