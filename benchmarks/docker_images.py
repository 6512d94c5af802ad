"""Build the images under docker/ for real with podman, from a local debootstrap base, and record build time and
image size in docs/docker.md (between <!-- docker-images:begin --> and <!-- docker-images:end -->).

No registry is needed: the base is `debootstrap --variant=minbase bookworm` imported with `podman import`; Debian
and PyPI packages come from their registries (--network host). The android image's NDK is installed by
`builder ndk install` from a mirror URL: here a STAND-IN NDK archive (tests/fixtures/standin_ndk.py, with the
Debian cross compilers it calls added through EXTRA_PACKAGES) served from 127.0.0.1, checked against an archive
list that pins its size and checksums (NDK_ARCHIVES). No Android SDK is installed (CMDLINE_TOOLS_BUILD=""):
dl.google.com is not reachable here; builds mount the stand-in android.jar and Maven jars.

    CONTAINERS_CONF=docker/podman-containers.conf nice -n 15 python benchmarks/docker_images.py [--only android]
    python benchmarks/docker_images.py --report      # re-render docs/docker.md from ROOT/results.json

Needs root (podman, debootstrap), podman/buildah/runc, debootstrap. See docs/docker.md for this machine's podman setup.
"""
from __future__ import annotations

import argparse
import functools
import http.server
import json
import os
import shutil
import sys
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from doc_section import replace_section  # noqa: E402

from builder import proc  # noqa: E402
from tests.fixtures.standin_ndk import make_standin_zip  # noqa: E402

DEFAULT_ROOT = Path("/work/h21-scratch/images")
BASE = "localhost/debian-bookworm:minbase"
DEBIAN_MIRROR = "http://deb.debian.org/debian"
NDK_FILE = "android-ndk-r21e-linux-x86_64.zip"
NDK_REVISION = "21.4.7075529"
# The stand-in NDK maps ABIs to Debian's cross compilers (x86_64: the native gcc).
CROSS = ("gcc-aarch64-linux-gnu g++-aarch64-linux-gnu gcc-arm-linux-gnueabihf g++-arm-linux-gnueabihf "
         "gcc-i686-linux-gnu g++-i686-linux-gnu gcc g++ binutils")
CA_DIR = Path("/usr/local/share/ca-certificates")     # a site CA (TLS proxy) the build must trust, if any
DOC = REPO / "docs" / "docker.md"
BEGIN, END = "<!-- docker-images:begin -->", "<!-- docker-images:end -->"


def podman(*args: str) -> list[str]:
    return ["podman", *args]


def ensure_base(root: Path, results: dict[str, Any]) -> None:
    if proc.run(podman("image", "exists", BASE), check=False).returncode == 0:
        return
    rootfs = root / "rootfs"
    shutil.rmtree(rootfs, ignore_errors=True)
    start = time.monotonic()
    proc.run(["debootstrap", "--variant=minbase", "bookworm", rootfs, DEBIAN_MIRROR], capture=False)
    tar = proc.run(["sh", "-c", f"tar -C {rootfs} -c . | podman import - {BASE}"], capture=False)
    assert tar.returncode == 0
    results["base"] = {"image": BASE, "seconds": round(time.monotonic() - start, 1),
                       "command": f"debootstrap --variant=minbase bookworm ROOTFS {DEBIAN_MIRROR}; "
                                  f"tar -C ROOTFS -c . | podman import - {BASE}"}


def standin_mirror(root: Path) -> tuple[Path, str]:
    """The stand-in NDK zip in ROOT/mirror and the archive list (TOML) that pins it."""
    made = make_standin_zip(root / "mirror" / NDK_FILE, NDK_REVISION, work=root / "ndk-src", libcxx=True)
    toml = (f'# STAND-IN NDK archive list (benchmarks/docker_images.py), NOT Google\'s NDK.\n'
            f'schema = 1\nbase_url = "http://127.0.0.1/"\n\n[[archive]]\nrelease = "r21e"\n'
            f'revision = "{NDK_REVISION}"\nhost = "linux"\nfile = "{NDK_FILE}"\ntop_dir = "android-ndk-r21e"\n'
            f'size = {made.size}\nsha1 = "{made.sha1}"\nsha256 = "{made.sha256}"\nverified = true\n')
    return made.path, toml


def context(root: Path, archives: str) -> Path:
    """The build context: this checkout's files (tracked and new, not ignored) + .standin/ndk_archives.toml."""
    ctx = root / "context"
    shutil.rmtree(ctx, ignore_errors=True)
    files = proc.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=REPO).stdout.split("\0")
    for name in filter(None, files):
        src = REPO / name
        if src.is_file():
            (ctx / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, ctx / name)
    (ctx / ".standin").mkdir()
    (ctx / ".standin" / "ndk_archives.toml").write_text(archives)
    return ctx


def serve(folder: Path) -> tuple[http.server.ThreadingHTTPServer, str]:
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    handler.log_message = lambda *a: None  # type: ignore[attr-defined]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/"


def build(name: str, ctx: Path, build_args: dict[str, str], log: Path, cached: bool = False) -> dict[str, Any]:
    tag = f"localhost/builder-{name}:dev"
    argv = podman("build", "--format", "docker", "--isolation", "chroot", "--network", "host",
                  *(() if cached else ("--no-cache",)),
                  "-f", f"docker/{name}.Dockerfile", "-t", tag,
                  *[a for k, v in build_args.items() for a in ("--build-arg", f"{k}={v}")])
    if CA_DIR.is_dir() and any(CA_DIR.glob("*.crt")):
        argv += ["-v", f"{CA_DIR}:{CA_DIR}:ro"]
    argv.append(".")
    start = time.monotonic()
    with log.open("w") as out:
        code = proc.stream(argv, cwd=ctx, on_line=lambda line: out.write(line + "\n"))
    seconds = round(time.monotonic() - start, 1)
    if code != 0:
        raise SystemExit(f"podman build of {name} failed ({code}); see {log}")
    size = int(proc.run(podman("image", "inspect", "--format", "{{.Size}}", tag)).stdout.strip())
    layers = proc.run(podman("history", "--format", "{{.Size}}\t{{.CreatedBy}}", tag)).stdout
    return {"image": tag, "seconds": seconds, "bytes": size, "command": proc.quote(argv),
            "build_args": build_args, "layers": layers.strip().splitlines()[:12]}


def report(results: dict[str, Any]) -> str:
    lines = [BEGIN, "", "Measured by `benchmarks/docker_images.py` (podman " + results.get("podman", "?") + ", "
             f"{results.get('cpus', '?')} cores shared with a running PyTorch build, every build at `nice -n 15`, "
             "`--no-cache`, Debian and PyPI over the network).", "",
             "| image | build time | image size | from |", "| --- | ---: | ---: | --- |"]
    base = results.get("base")
    if base:
        size = f"{base['bytes'] / 1e6:.0f} MB" if base.get("bytes") else "-"
        lines.append(f"| `{base['image']}` (debootstrap + import) | {base['seconds']:.0f} s | {size} | "
                     f"`{base['command']}` |")
    for name in ("android", "host"):
        r = results.get(name)
        if r:
            lines.append(f"| `{r['image']}` | {r['seconds']:.0f} s | {r['bytes'] / 1e6:.0f} MB | "
                         f"`docker/{name}.Dockerfile` |")
    lines += ["", "The exact commands:", ""]
    for name in ("android", "host"):
        r = results.get(name)
        if r:
            lines += ["```sh", r["command"].replace(" --build-arg", " \\\n  --build-arg"), "```", ""]
    lines.append(END)
    return "\n".join(lines)


def render(results: dict[str, Any]) -> None:
    replace_section(DOC, BEGIN, END, report(results))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--root", type=Path, default=DEFAULT_ROOT)
    ap.add_argument("--only", choices=("android", "host"))
    ap.add_argument("--report", action="store_true", help="only re-render docs/docker.md")
    ap.add_argument("--cached", action="store_true", help="reuse podman's layers (recorded apart, not in the doc)")
    opts = ap.parse_args()
    store = opts.root / "results.json"
    results: dict[str, Any] = json.loads(store.read_text()) if store.is_file() else {}
    if not opts.report:
        opts.root.mkdir(parents=True, exist_ok=True)
        results["podman"] = proc.run(podman("--version")).stdout.split()[-1]
        results["cpus"] = os.cpu_count()
        ensure_base(opts.root, results)
        zip_path, archives = standin_mirror(opts.root)
        ctx = context(opts.root, archives)
        server, url = serve(zip_path.parent)
        try:
            common = {"BASE_IMAGE": BASE}
            todo = {"android": {**common, "NDK_MIRROR": url, "NDK_ARCHIVES": ".standin/ndk_archives.toml",
                                "CMDLINE_TOOLS_BUILD": "", "EXTRA_PACKAGES": CROSS},
                    "host": common}
            for name, args in todo.items():
                if opts.only in (None, name):
                    print(f"building {name} ...", flush=True)
                    key = f"{name}-cached" if opts.cached else name
                    results[key] = build(name, ctx, args, opts.root / f"build-{key}.log", opts.cached)
                    print(f"{key}: {results[key]['seconds']} s, {results[key]['bytes'] / 1e6:.0f} MB", flush=True)
                    store.write_text(json.dumps(results, indent=2) + "\n")
        finally:
            server.shutdown()
    render(results)


if __name__ == "__main__":
    main()
