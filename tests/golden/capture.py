"""Capture the CMake configure call that a PyTorch release's own mobile build script makes.

Each stored script (tests/golden/scripts/<tag>/<name>, verbatim, provenance in SOURCES.md there) is copied into
a throw-away tree as <tmp>/src/scripts/<name> (the scripts find the source root from their own location), and run
with fake `cmake`, `ninja`, `make`, `python`, `uname`, `sysctl` and `nproc` first on PATH. The fake cmake writes its
argv and the relevant environment as JSON and exits 0, so nothing is built. The configure call (the one whose
first argument is the source root) is parsed and saved as tests/golden/expected/<tag>/<target>.json.

    python tests/golden/capture.py            # regenerate every case whose script is stored
    python tests/golden/capture.py v1.13.1    # only one tag

The JSON is committed: unit tests read it and never run this.
"""
from __future__ import annotations

import json
import re
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
SCRIPTS = HERE / "scripts"
EXPECTED = HERE / "expected"

TMP = "<tmp>"                      # the temporary root, as it appears in saved JSON
SOURCE = f"{TMP}/src"              # {source}
NDK = f"{TMP}/ndk"                 # {ndk}
NDK_REVISION = "21.4.7075529"
PYTHON_EXE = "/opt/python/bin/python3"                       # what the fake python reports: {python}
PYTHON_PURELIB = "/opt/python/lib/python3.11/site-packages"  # {python_purelib}

# (target, script, environment given to the script, extra script arguments).
CASES = {
    "android": ("build_android.sh",
                {"ANDROID_NDK": NDK, "ANDROID_ABI": "arm64-v8a", "ANDROID_STL_SHARED": "1",
                 "BUILD_LITE_INTERPRETER": "1", "PYTHON": "python"}),
    "ios": ("build_ios.sh", {"IOS_PLATFORM": "SIMULATOR", "IOS_ARCH": "x86_64", "PYTHON": "python"}),
    "host": ("build_mobile.sh", {"BUILD_LITE_INTERPRETER": "1", "PYTHON": "python"}),
}
# Arguments the release's own caller passes to the script (android/common.sh build_android() for the AAR build);
# `-DANDROID_CCACHE=$(which ccache)` is left out: builder sets up ccache itself.
CALLER_ARGS = {
    ("v1.13.1", "android"): ["-DUSE_LITE_INTERPRETER_PROFILER=OFF"],
    ("v2.6.0", "android"): ["-DUSE_LITE_INTERPRETER_PROFILER=OFF"],    # android/common.sh:68
}
# Environment variables the fake cmake records when set (the scripts' inputs and what they export).
RECORDED_ENV = ("BUILD_PYTORCH_MOBILE_WITH_HOST_TOOLCHAIN", "BUILD_PYTORCH_MOBILE", "BUILD_CAFFE2_MOBILE",
                "BUILD_LITE_INTERPRETER", "ANDROID_NDK", "ANDROID_ABI", "ANDROID_STL_SHARED", "IOS_PLATFORM",
                "IOS_ARCH", "PYTHON", "SELECTED_OP_LIST", "TRACING_BASED", "USE_LIGHTWEIGHT_DISPATCH",
                "USE_VULKAN", "USE_PYTORCH_METAL", "USE_COREML_DELEGATE")

FAKE_CMAKE = """#!{python}
import json, os, sys
with open(os.environ["CAPTURE_LOG"], "a") as f:
    f.write(json.dumps({{"argv": sys.argv[1:], "cwd": os.getcwd(),
                        "env": {{k: os.environ[k] for k in {recorded!r} if k in os.environ}}}}) + "\\n")
"""
FAKE_PYTHON = """#!/bin/sh
# Answers the few one-liners the build scripts run, with fixed values.
case "$*" in
  *purelib*|*get_python_lib*) echo "{purelib}" ;;
  *sys.executable*) echo "{exe}" ;;
  *version_info*) echo 3 ;;
  *sys.version*) echo "3.11.0 (fake)" ;;
  *) echo "fake python: unexpected $*" >&2; exit 1 ;;
esac
"""


def _write_exe(path: Path, text: str) -> None:
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)


def parse_configure(argv: list[str]) -> dict:
    """Split a cmake argv into source dir, generator and defines (last -D wins, as in CMake)."""
    defines: dict[str, str] = {}
    generator = None
    source = None
    i = 0
    while i < len(argv):
        a = argv[i]
        if a.startswith("-D"):
            body = a[2:] if len(a) > 2 else argv[i + 1]
            if len(a) == 2:
                i += 1
            key, _, value = body.partition("=")
            key = key.split(":", 1)[0]
            defines.pop(key, None)          # keep insertion order of the last occurrence
            defines[key] = value
        elif a.startswith("-G"):
            generator = a[2:] if len(a) > 2 else argv[i + 1]
            if len(a) == 2:
                i += 1
        elif not a.startswith("-") and source is None:
            source = a
        i += 1
    return {"source": source, "generator": generator, "defines": defines}


def _normalise(value, tmp: str):
    if isinstance(value, str):
        return value.replace(tmp, TMP)
    if isinstance(value, list):
        return [_normalise(v, tmp) for v in value]
    if isinstance(value, dict):
        return {k: _normalise(v, tmp) for k, v in value.items()}
    return value


def capture(tag: str, target: str) -> dict | None:
    script, inputs = CASES[target]
    stored = SCRIPTS / tag / script
    if not stored.is_file():
        return None
    with tempfile.TemporaryDirectory(prefix="golden-") as raw:
        tmp = str(Path(raw).resolve())
        root, fake = Path(tmp) / "src", Path(tmp) / "bin"
        (root / "scripts").mkdir(parents=True)
        fake.mkdir()
        shutil.copyfile(stored, root / "scripts" / script)
        (root / "scripts" / script).chmod(0o755)
        ndk = Path(tmp) / "ndk"
        ndk.mkdir()
        (ndk / "source.properties").write_text(f"Pkg.Desc = Android NDK\nPkg.Revision = {NDK_REVISION}\n")
        log = Path(tmp) / "cmake.jsonl"
        _write_exe(fake / "cmake", FAKE_CMAKE.format(python=sys.executable, recorded=RECORDED_ENV))
        _write_exe(fake / "python", FAKE_PYTHON.format(purelib=PYTHON_PURELIB, exe=PYTHON_EXE))
        _write_exe(fake / "python3", FAKE_PYTHON.format(purelib=PYTHON_PURELIB, exe=PYTHON_EXE))
        _write_exe(fake / "ninja", "#!/bin/sh\nexit 0\n")
        _write_exe(fake / "make", "#!/bin/sh\nexit 0\n")
        _write_exe(fake / "nproc", "#!/bin/sh\necho 2\n")
        _write_exe(fake / "sysctl", "#!/bin/sh\necho 2\n")
        uname = "Darwin" if target == "ios" else "Linux"
        _write_exe(fake / "uname", f"#!/bin/sh\necho {uname}\n")
        env = {"PATH": f"{fake}:/usr/bin:/bin", "HOME": tmp, "LANG": "C", "LC_ALL": "C",
               "CAPTURE_LOG": str(log)}
        env.update({k: v.replace(TMP, tmp) for k, v in inputs.items()})
        args = CALLER_ARGS.get((tag, target), [])
        proc = subprocess.run([str(root / "scripts" / script), *args], cwd=tmp, env=env,
                              capture_output=True, text=True, timeout=120)
        if proc.returncode != 0:
            raise RuntimeError(f"{tag}/{script} exited {proc.returncode}:\n{proc.stderr[-2000:]}")
        calls = [json.loads(line) for line in log.read_text().splitlines()]
        configure = next(c for c in calls if c["argv"] and c["argv"][0] == str(root))
        parsed = parse_configure(configure["argv"])
        defines = parsed["defines"]
        result = {
            "script": f"scripts/{script}",
            "source_commit": _source_commit(tag, script),
            "inputs": dict(inputs),
            "args": args,
            "defines": defines,
            "env": configure["env"],
            "generator": parsed["generator"],
            "build_type": defines.pop("CMAKE_BUILD_TYPE", None),
            "install_prefix": defines.pop("CMAKE_INSTALL_PREFIX", None),
            "placeholders": {"source": SOURCE, "ndk": NDK, "python": PYTHON_EXE,
                             "python_purelib": PYTHON_PURELIB, "ndk_revision": NDK_REVISION},
            "argv": configure["argv"],
        }
        return _normalise(result, tmp)


def _source_commit(tag: str, script: str) -> str:
    """The commit SOURCES.md records for this script (a line `| <script> | <commit> | ... |`)."""
    sources = (SCRIPTS / tag / "SOURCES.md").read_text()
    m = re.search(rf"^\|\s*{re.escape(script)}\s*\|\s*([0-9a-f]{{40}})\s*\|", sources, re.M)
    if not m:
        raise RuntimeError(f"{tag}/SOURCES.md does not give a commit for {script}")
    return m.group(1)


def main(argv: list[str]) -> int:
    tags = argv or sorted(p.name for p in SCRIPTS.iterdir() if p.is_dir())
    for tag in tags:
        for target in CASES:
            result = capture(tag, target)
            if result is None:
                continue
            out = EXPECTED / tag / f"{target}.json"
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(json.dumps(result, indent=2, sort_keys=False) + "\n")
            print(f"{out.relative_to(HERE.parent.parent)}: {len(result['defines'])} defines")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
