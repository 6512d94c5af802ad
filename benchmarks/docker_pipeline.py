"""Run examples/release-local.sh (the example release pipeline: one container per ABI, then `builder assemble`) with
podman on the STAND-IN tree, and compare its AAR with one `builder android` of all the ABIs with the same settings:
in one container of the same image, and on this machine. Renders docs/docker.md between
<!-- docker-pipeline:begin --> and <!-- docker-pipeline:end -->.

STAND-INS, not PyTorch: mini-torch (tests/fixtures/minitorch.py), the stand-in NDK (tests/fixtures/standin_ndk.py,
Debian's cross compilers), stand-in android.jar and Maven jars (tests/fixtures/standin_android.py). The containers
run with --network none: everything they read is mounted.

    CONTAINERS_CONF=docker/podman-containers.conf nice -n 15 python benchmarks/docker_pipeline.py
    python benchmarks/docker_pipeline.py --report
Needs the image from benchmarks/docker_images.py (localhost/builder-android:dev).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from doc_section import replace_section  # noqa: E402

from builder import proc  # noqa: E402
from builder.package.aar import STANDIN_SYSTEM_LIBS  # noqa: E402
from tests.fixtures.gitrepos import isolate_git  # noqa: E402
from tests.fixtures.minitorch import make_minitorch  # noqa: E402
from tests.fixtures.standin_android import make_standin_android  # noqa: E402
from tests.fixtures.standin_ndk import make_standin_ndk  # noqa: E402

DEFAULT_ROOT = Path("/work/h21-scratch/pipeline")
IMAGE = "localhost/builder-android:dev"
ABIS = ("arm64-v8a", "x86_64")
EPOCH = "1700000000"
DOC = REPO / "docs" / "docker.md"
BEGIN, END = "<!-- docker-pipeline:begin -->", "<!-- docker-pipeline:end -->"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def world(root: Path) -> dict[str, Any]:
    shutil.rmtree(root, ignore_errors=True)
    up = make_minitorch(root / "up")
    ndk = make_standin_ndk(root / "ndk", revision="21.4.7075529", libcxx=True)
    sdk, m2 = make_standin_android(root / "java")
    env = {**isolate_git(root / "home"), "BUILDER_RECIPES_DIR": str(up.recipes), "SOURCE_DATE_EPOCH": EPOCH}
    args = ["--mirror", up.mirror, "--cache", "none", "--ndk", str(ndk), "--android-sdk", str(sdk),
            "--maven-repo", str(m2)]
    return {"tag": up.tag, "env": env, "args": args}


def timed(argv: list[str], env: dict[str, str], log: Path) -> tuple[float, int]:
    start = time.monotonic()
    with log.open("w") as out:
        out.write(proc.quote(argv) + "\n")
        code = proc.stream(argv, cwd=REPO, env=env, on_line=lambda line: out.write(line + "\n"))
    return round(time.monotonic() - start, 1), code


def run(root: Path) -> dict[str, Any]:
    w = world(root)
    out = root / "release"
    docker_args = ["--network", "none", "--mount", str(root), "--cache-dir", f"builder={root / 'cache'}",
                   *[a for k, v in w["env"].items() for a in ("--env", f"{k}={v}")]]
    part_args = [a for lib in STANDIN_SYSTEM_LIBS for a in ("--system-lib", lib)]
    script_env = {"RELEASE": w["tag"], "ABIS": " ".join(ABIS), "IMAGE": IMAGE, "ENGINE": "podman", "OUT": str(out),
                  "BUILDER": f"{sys.executable} -m builder", "DOCKER_ARGS": " ".join(docker_args),
                  "PART_ARGS": " ".join(part_args)}
    script = [str(REPO / "examples" / "release-local.sh"), *w["args"]]
    seconds, code = timed(script, script_env, root / "pipeline.log")
    if code != 0:
        raise SystemExit(f"the pipeline failed ({code}); see {root / 'pipeline.log'}")
    (aar,) = (out / "dist").glob("*.aar")
    res: dict[str, Any] = {"abis": list(ABIS), "pipeline_seconds": seconds, "aar": aar.name, "bytes": aar.stat().st_size,
                           "sha256": sha256(aar), "maven": sorted(str(p.relative_to(out / "dist"))
                                                                for p in (out / "dist" / "maven").rglob("*.pom")),
                           "script": "examples/release-local.sh " + proc.quote(w["args"]),
                           "script_env": script_env}
    abi_args = [a for abi in ABIS for a in ("--abi", abi)]
    build = ["android", "--tag", w["tag"], *abi_args, "--out", str(out / "out"), *w["args"]]
    refs = {"one container": [sys.executable, "-m", "builder", "docker", "--engine", "podman", "--image", IMAGE,
                              *docker_args, "--run", "--", *build],
            "this machine": [sys.executable, "-m", "builder", *build]}
    res["references"] = {}
    for name, argv in refs.items():      # each from nothing, in the same folder the pipeline used
        shutil.rmtree(out / "out")
        env = {**w["env"], "BUILDER_CACHE_DIR": str(root / "cache")} if name == "this machine" else {}
        ref_seconds, ref_code = timed(argv, env, root / f"reference-{name.replace(' ', '-')}.log")
        ref = next(iter(sorted((out / "out").glob("*.aar"))), out / "out" / aar.name)
        res["references"][name] = {"seconds": ref_seconds, "exit": ref_code, "command": proc.quote(argv),
                                   "aar": ref.name, "sha256": sha256(ref) if ref.is_file() else None,
                                   "same_bytes": ref.is_file() and ref.read_bytes() == aar.read_bytes()}
        if ref.is_file() and ref.read_bytes() != aar.read_bytes():
            res["references"][name]["differs"] = differing_entries(ref, aar)
    return res


def differing_entries(a: Path, b: Path) -> list[str]:
    import zipfile

    with zipfile.ZipFile(a) as za, zipfile.ZipFile(b) as zb:
        names = sorted(set(za.namelist()) | set(zb.namelist()))
        return [n for n in names if n not in za.namelist() or n not in zb.namelist() or za.read(n) != zb.read(n)]


def report(res: dict[str, Any]) -> str:
    lines = [BEGIN, "", f"Measured by `benchmarks/docker_pipeline.py` on the STAND-IN tree (mini-torch, stand-in NDK, "
             f"android.jar and Maven jars; not PyTorch), ABIs {', '.join(res['abis'])}, podman, `--network none`:", "",
             f"- the pipeline (`{res['script']}`, {len(res['abis'])} per-ABI containers for `builder android` and "
             f"`builder package part`, one for the plan and one for `builder assemble`): {res['pipeline_seconds']:.0f} s; "
             f"`{res['aar']}`, {res['bytes']:,} bytes, sha256 `{res['sha256'][:16]}…`; POM: "
             + ", ".join(f"`{p}`" for p in res["maven"]), ""]
    lines += ["| one `builder android` of all the ABIs, same settings, same folders | time | AAR | same bytes as the pipeline's |",
              "| --- | ---: | --- | --- |"]
    for name, ref in res["references"].items():
        same = "**yes**" if ref["same_bytes"] else "no: " + ", ".join(ref.get("differs", ["exit " + str(ref["exit"])]))
        lines.append(f"| {name} | {ref['seconds']:.0f} s | `{ref.get('aar', '-')}` `{(ref['sha256'] or '-')[:16]}…` "
                     f"| {same} |")
    lines += ["", "On this machine (not in the image) the toolchain differs: CMake 4.4.5 from pip here vs the image's "
              "pinned 3.27.9, and Debian's gcc 12.2.0-14 here vs 12.2.0-14+deb12u1 in the image; the configuration "
              "digest (the Maven version) and the compiled JNI libraries differ, every other AAR entry "
              "(classes.jar, headers, res/, R.txt, libfbjni.so, libc++_shared.so) is identical. The same image "
              "gives the same bytes.", "", "Environment of the script run:", "", "```sh",
              *[f"{k}={json.dumps(v)}" for k, v in res["script_env"].items()], "```", "", END]
    return "\n".join(lines)


def render(res: dict[str, Any]) -> None:
    replace_section(DOC, BEGIN, END, report(res))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--root", type=Path, default=DEFAULT_ROOT)
    ap.add_argument("--report", action="store_true")
    opts = ap.parse_args()
    store = opts.root.parent / f"{opts.root.name}-results.json"
    if not opts.report:
        store.write_text(json.dumps(run(opts.root), indent=2) + "\n")
    render(json.loads(store.read_text()))
    sys.stdout.write(report(json.loads(store.read_text())) + "\n")


if __name__ == "__main__":
    main()
