#!/usr/bin/env python3
"""Prepare an upstream-shaped local git mirror of PyTorch v1.13.1 for benchmarks.

The mirror is a directory of bare repositories laid out like github.com, so that rewriting the URL
prefix ``https://github.com/`` to ``file://ROOT/mirror/`` reaches them exactly as it would reach an
internal git server::

    ROOT/mirror/pytorch/pytorch.git         Debian's pytorch 1.13.1 tree, one commit, tag v1.13.1,
                                            a .gitmodules with v1.13.1's 41 submodules and gitlinks
    ROOT/mirror/fmtlib/fmt.git              third_party/fmt           (Debian fmtlib 9.1.0)
    ROOT/mirror/google/flatbuffers.git      third_party/flatbuffers   (Debian flatbuffers 2.0.8)
    ROOT/mirror/Maratyszcza/FP16.git        third_party/FP16          (upstream commit 4dfe081)
    ROOT/mirror/Maratyszcza/FXdiv.git       third_party/FXdiv         (upstream commit b408327)
    ROOT/mirror/Maratyszcza/psimd.git       third_party/psimd         (upstream commit 072586a)
    ROOT/mirror/MANIFEST.json               what was made, with every commit

Only the submodules whose source Debian serves are mirrored. The other 36 gitlinks point at
placeholder commits (see ``placeholder_commit``) that no mirrored repository holds: ``git submodule
update --init`` works for the five paths above only. XNNPACK, cpuinfo and pthreadpool come from
Debian's -dev packages instead (USE_SYSTEM_*), pocketfft from nowhere (patches/v1.13.1).

Sources come from Debian (``apt-get source --download-only``; run as root on a machine without a deb-src
entry, a deb-src copy of its Debian entries is added, see ``ensure_deb_src``) into
ROOT/downloads, or from existing tarballs given with ``--from DIR``. Everything is cached: a repository
whose refs already exist is left alone, a tarball already downloaded is not fetched again. Commits
are made with a fixed author and date, so the same tarballs give the same commit ids on every machine.

The pytorch commit cannot be upstream's 49444c3e546bf240bed24a101e747422d1f8a0ee (other history,
Debian's +dfsg tree): builder must be run with ``--allow-unpinned`` against this mirror.

Note for clients: git >= 2.38.1 refuses file:// submodule clones unless ``protocol.file.allow=always``.

Usage: python benchmarks/realtorch_mirror.py [--root DIR] [--from DIR ...] [--force] [--print-prefix]
Needs: git, tar-readable tarballs (stdlib tarfile), GitPython.
"""
from __future__ import annotations

import argparse
import functools
import glob
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import git  # GitPython

DEFAULT_ROOT = Path("~/.cache/builder-bench").expanduser()
UPSTREAM_COMMIT = "49444c3e546bf240bed24a101e747422d1f8a0ee"  # pytorch v1.13.1 upstream (not reproducible here)
TAG = "v1.13.1"
# Fixed identity and date: the same tarball gives the same commit id everywhere.
IDENTITY = ("builder-bench mirror", "builder-bench@localhost")
DATE = "2022-12-15T00:00:00+0000"  # v1.13.1 release week

# --------------------------------------------------------------------------------------------------
# PyTorch v1.13.1's submodules: (name, path, url).
#
# Reconstructed, because the v1.13.1 .gitmodules is not in Debian's tarball and could not be read at
# 49444c3e here:
#   * the PATHS are exactly the 41 empty submodule folders of the v1.13.1 tree (Debian's
#     pytorch_1.13.1+dfsg.orig.tar.xz: `find third_party android -type d -empty`);
#   * names and URLS are taken from pytorch/pytorch's .gitmodules as stored at commit
#     000ad139c854e79b36b9ca7f8ea2f79a6f5a15f8 (mid-2022, the version closest to v1.13.1 that could
#     be read: it has all of these but ittapi/nlohmann/VulkanMemoryAllocator/cutlass, and one extra,
#     third_party/breakpad, which the v1.13.1 tree no longer has);
#   * ittapi, nlohmann, VulkanMemoryAllocator, cutlass from the later .gitmodules at
#     0cdc6c5e43222f72ed757ef914fed633c9850f27.
#   * flatbuffers: 000ad139 had `git@github.com:google/flatbuffers.git`; the later file has the https
#     URL used here (a prefix rewrite of https://github.com/ cannot reach an ssh URL).
# --------------------------------------------------------------------------------------------------
SUBMODULES: list[tuple[str, str, str]] = [
    ("third_party/pybind11", "third_party/pybind11", "https://github.com/pybind/pybind11.git"),
    ("third_party/cub", "third_party/cub", "https://github.com/NVlabs/cub.git"),
    ("third_party/eigen", "third_party/eigen", "https://github.com/eigenteam/eigen-git-mirror.git"),
    ("third_party/googletest", "third_party/googletest", "https://github.com/google/googletest.git"),
    ("third_party/benchmark", "third_party/benchmark", "https://github.com/google/benchmark.git"),
    ("third_party/protobuf", "third_party/protobuf", "https://github.com/protocolbuffers/protobuf.git"),
    ("third_party/ios-cmake", "third_party/ios-cmake", "https://github.com/Yangqing/ios-cmake.git"),
    ("third_party/NNPACK", "third_party/NNPACK", "https://github.com/Maratyszcza/NNPACK.git"),
    ("third_party/gloo", "third_party/gloo", "https://github.com/facebookincubator/gloo"),
    ("third_party/NNPACK_deps/pthreadpool", "third_party/pthreadpool",
     "https://github.com/Maratyszcza/pthreadpool.git"),
    ("third_party/NNPACK_deps/FXdiv", "third_party/FXdiv", "https://github.com/Maratyszcza/FXdiv.git"),
    ("third_party/NNPACK_deps/FP16", "third_party/FP16", "https://github.com/Maratyszcza/FP16.git"),
    ("third_party/NNPACK_deps/psimd", "third_party/psimd", "https://github.com/Maratyszcza/psimd.git"),
    ("third_party/zstd", "third_party/zstd", "https://github.com/facebook/zstd.git"),
    ("third_party/cpuinfo", "third_party/cpuinfo", "https://github.com/pytorch/cpuinfo.git"),
    ("third_party/python-enum", "third_party/python-enum", "https://github.com/PeachPy/enum34.git"),
    ("third_party/python-peachpy", "third_party/python-peachpy", "https://github.com/Maratyszcza/PeachPy.git"),
    ("third_party/python-six", "third_party/python-six", "https://github.com/benjaminp/six.git"),
    ("third_party/onnx", "third_party/onnx", "https://github.com/onnx/onnx.git"),
    ("third_party/onnx-tensorrt", "third_party/onnx-tensorrt", "https://github.com/onnx/onnx-tensorrt"),
    ("third_party/sleef", "third_party/sleef", "https://github.com/shibatch/sleef"),
    ("third_party/ideep", "third_party/ideep", "https://github.com/intel/ideep"),
    ("third_party/nccl/nccl", "third_party/nccl/nccl", "https://github.com/NVIDIA/nccl"),
    ("third_party/gemmlowp/gemmlowp", "third_party/gemmlowp/gemmlowp", "https://github.com/google/gemmlowp.git"),
    ("third_party/QNNPACK", "third_party/QNNPACK", "https://github.com/pytorch/QNNPACK"),
    ("third_party/neon2sse", "third_party/neon2sse", "https://github.com/intel/ARM_NEON_2_x86_SSE.git"),
    ("third_party/fbgemm", "third_party/fbgemm", "https://github.com/pytorch/fbgemm"),
    ("third_party/foxi", "third_party/foxi", "https://github.com/houseroad/foxi.git"),
    ("third_party/tbb", "third_party/tbb", "https://github.com/01org/tbb"),
    ("android/libs/fbjni", "android/libs/fbjni", "https://github.com/facebookincubator/fbjni.git"),
    ("third_party/XNNPACK", "third_party/XNNPACK", "https://github.com/google/XNNPACK.git"),
    ("third_party/fmt", "third_party/fmt", "https://github.com/fmtlib/fmt.git"),
    ("third_party/tensorpipe", "third_party/tensorpipe", "https://github.com/pytorch/tensorpipe.git"),
    ("third_party/cudnn_frontend", "third_party/cudnn_frontend", "https://github.com/NVIDIA/cudnn-frontend.git"),
    ("third_party/kineto", "third_party/kineto", "https://github.com/pytorch/kineto"),
    ("third_party/pocketfft", "third_party/pocketfft", "https://github.com/mreineck/pocketfft"),
    ("third_party/ittapi", "third_party/ittapi", "https://github.com/intel/ittapi.git"),
    ("third_party/flatbuffers", "third_party/flatbuffers", "https://github.com/google/flatbuffers.git"),
    ("third_party/nlohmann", "third_party/nlohmann", "https://github.com/nlohmann/json.git"),
    ("third_party/VulkanMemoryAllocator", "third_party/VulkanMemoryAllocator",
     "https://github.com/GPUOpen-LibrariesAndSDKs/VulkanMemoryAllocator.git"),
    ("third_party/cutlass", "third_party/cutlass", "https://github.com/NVIDIA/cutlass.git"),
]
# Extra keys of a .gitmodules entry (as upstream has them).
SUBMODULE_EXTRA = {"third_party/tbb": {"branch": "tbb_2018"}}
NO_IGNORE_DIRTY = {"third_party/tbb", "third_party/cudnn_frontend", "third_party/kineto",
                   "third_party/pocketfft", "third_party/ittapi", "third_party/flatbuffers",
                   "third_party/nlohmann", "third_party/VulkanMemoryAllocator", "third_party/cutlass"}

# Submodules mirrored from Debian source packages: path -> (debian source package, upstream tag or None,
# upstream default branch). The upstream commit each Debian tarball was cut from is in its version.
MIRRORED: dict[str, tuple[str, str | None, str]] = {
    "third_party/fmt": ("fmtlib", "9.1.0", "master"),
    "third_party/flatbuffers": ("flatbuffers", "v2.0.8", "master"),
    "third_party/FP16": ("fp16", None, "master"),          # 0.0~git20200514.4dfe081
    "third_party/FXdiv": ("fxdiv", None, "master"),        # 0.0~git20200417.b408327
    "third_party/psimd": ("psimd", None, "master"),        # 0.0~git20200517.072586a
}
PYTORCH_PACKAGE = "pytorch"


def placeholder_commit(path: str) -> str:
    """A fixed, obviously synthetic gitlink for a submodule this mirror does not serve.

    The real v1.13.1 pins are not in Debian's tarball. (Known short pins, for reference only:
    XNNPACK ae108ef, the commit Debian's libxnnpack-dev 0.0~git20220216.ae108ef was cut from.)
    """
    return hashlib.sha1(f"builder-bench placeholder for {path} at pytorch {TAG}".encode()).hexdigest()


def url_to_mirror_path(mirror: Path, url: str) -> Path:
    prefix = "https://github.com/"
    if not url.startswith(prefix):
        raise ValueError(f"not a github https URL: {url}")
    return mirror / url[len(prefix):]


def log(msg: str) -> None:
    print(f"[realtorch-mirror] {msg}", flush=True)


# ------------------------------------------------------------------------------------------- sources
def find_orig_tarball(package: str, dirs: list[Path]) -> Path | None:
    for d in dirs:
        hits = sorted(glob.glob(str(d / f"{package}_*.orig.tar.*")))
        hits = [h for h in hits if not h.endswith((".asc", ".sig"))]
        if hits:
            return Path(hits[-1])
    return None


DEB_SRC_FILE = Path("/etc/apt/sources.list.d/builder-bench-src.sources")


def _apt_source_files() -> list[Path]:
    base = Path("/etc/apt")
    return [p for p in [base / "sources.list", *sorted((base / "sources.list.d").glob("*"))]
            if p.is_file() and p.name.endswith((".list", ".sources"))]


@functools.cache
def ensure_deb_src() -> None:
    """A clean Debian machine has only ``deb`` entries; ``apt-get source`` needs ``deb-src``. As root, add a
    deb822 file mirroring the enabled ``deb`` entries (same URIs, suites, components, key) and run apt-get update;
    otherwise say exactly what to add. Runs once per process."""
    texts = [p.read_text(errors="replace") for p in _apt_source_files()]
    if any("deb-src" in t for t in texts):
        return
    stanzas: list[str] = []
    for text in texts:
        for block in text.split("\n\n"):
            fields = dict(ln.split(":", 1) for ln in block.splitlines() if ":" in ln and not ln.startswith("#"))
            fields = {k.strip(): v.strip() for k, v in fields.items()}
            if fields.get("Types", "").split() == ["deb"] and "debian" in fields.get("URIs", ""):
                stanzas.append("\n".join(["Types: deb-src", *(f"{k}: {fields[k]}" for k in
                                          ("URIs", "Suites", "Components", "Signed-By") if k in fields)]))
    if not stanzas:
        raise SystemExit("no deb-src entry and no deb822 Debian entry to copy: add a deb-src line for this "
                         "machine's suite to /etc/apt/sources.list and run apt-get update")
    if os.geteuid() != 0:
        raise SystemExit(f"apt-get source needs a deb-src entry: as root write {DEB_SRC_FILE} with\n"
                         + "\n\n".join(stanzas) + "\nand run apt-get update")
    DEB_SRC_FILE.write_text("# added by builder's benchmarks/realtorch_mirror.py (apt-get source)\n"
                            + "\n\n".join(stanzas) + "\n")
    log(f"added {DEB_SRC_FILE} (deb-src for the machine's Debian entries); apt-get update")
    proc = subprocess.run(["apt-get", "update"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout)
        raise SystemExit(f"apt-get update failed (exit {proc.returncode}) after adding {DEB_SRC_FILE}")


def obtain_tarball(package: str, downloads: Path, seeds: list[Path]) -> Path:
    """The package's orig tarball: from downloads/, else copied from a --from dir, else apt-get source."""
    found = find_orig_tarball(package, [downloads])
    if found:
        return found
    seeded = find_orig_tarball(package, seeds)
    if seeded:
        downloads.mkdir(parents=True, exist_ok=True)
        dest = downloads / seeded.name
        shutil.copy2(seeded, dest)
        log(f"{package}: copied {seeded}")
        return dest
    downloads.mkdir(parents=True, exist_ok=True)
    ensure_deb_src()
    log(f"{package}: apt-get source --download-only {package}")
    proc = subprocess.run(["apt-get", "source", "--download-only", package], cwd=downloads,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    # Tolerated: the debian.tar.xz part of some packages is not served (404); the orig tarball is.
    found = find_orig_tarball(package, [downloads])
    if not found:
        sys.stderr.write(proc.stdout)
        raise SystemExit(f"could not obtain the {package} source tarball (apt-get source exit "
                         f"{proc.returncode}); is there a deb-src entry and has apt-get update run?")
    if proc.returncode != 0:
        log(f"{package}: apt-get exited {proc.returncode} but the orig tarball arrived (ok)")
    return found


def extract_single_root(tarball: Path, dest: Path) -> Path:
    """Extract a tarball whose entries share one top folder; return that folder."""
    with tarfile.open(tarball) as tf:
        tops = {m.name.split("/", 1)[0] for m in tf.getmembers() if m.name not in ("", ".")}
        if len(tops) != 1:
            raise SystemExit(f"{tarball}: expected one top-level folder, found {sorted(tops)[:5]}")
        kwargs = {"filter": "tar"} if hasattr(tarfile, "tar_filter") else {}
        tf.extractall(dest, **kwargs)
    return dest / tops.pop()


# ----------------------------------------------------------------------------------------------- git
def git_env(git_dir: Path, index_file: Path, work_tree: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update({
        "GIT_DIR": str(git_dir), "GIT_INDEX_FILE": str(index_file), "GIT_WORK_TREE": str(work_tree),
        "GIT_AUTHOR_NAME": IDENTITY[0], "GIT_AUTHOR_EMAIL": IDENTITY[1], "GIT_AUTHOR_DATE": DATE,
        "GIT_COMMITTER_NAME": IDENTITY[0], "GIT_COMMITTER_EMAIL": IDENTITY[1], "GIT_COMMITTER_DATE": DATE,
        "GIT_CONFIG_NOSYSTEM": "1",
    })
    # Ignore user/global config (templates, hooks, autocrlf) for reproducible commits.
    env["HOME"] = str(index_file.parent)
    env.pop("XDG_CONFIG_HOME", None)
    return env


def existing_commit(bare: Path, ref: str) -> str | None:
    if not (bare / "HEAD").exists():
        return None
    try:
        return git.Repo(bare).git.rev_parse("--verify", "--quiet", f"{ref}^{{commit}}")
    except git.GitCommandError:
        return None


def commit_tree(bare: Path, tree_dir: Path, message: str, branch: str, tag: str | None,
                gitlinks: dict[str, str] | None = None) -> str:
    """Make `bare` a bare repo whose `branch` (and HEAD) is one commit holding tree_dir's files."""
    if bare.exists():
        shutil.rmtree(bare)
    bare.parent.mkdir(parents=True, exist_ok=True)
    git.Repo.init(bare, bare=True, initial_branch=branch)
    with tempfile.TemporaryDirectory(prefix="mirror-idx-") as tmp:
        env = git_env(bare, Path(tmp) / "index", tree_dir)
        g = git.Git(str(tree_dir))  # run inside the tree: `git add .` is relative to the cwd
        # -f: Debian's tarball is the tree; .gitignore patterns in it must not drop files.
        g.add("-A", "-f", ".", env=env)
        for path, sha in sorted((gitlinks or {}).items()):
            g.update_index("--add", "--cacheinfo", f"160000,{sha},{path}", env=env)
        tree = g.write_tree(env=env)
        sha = g.commit_tree(tree, "-m", message, env=env)
        g.update_ref(f"refs/heads/{branch}", sha, env=env)
        g.symbolic_ref("HEAD", f"refs/heads/{branch}", env=env)
        if tag:
            g.tag("-a", tag, sha, "-m", f"{tag} (builder-bench mirror)", env=env)
    return sha


def gitmodules_text() -> str:
    lines = []
    for name, path, url in SUBMODULES:
        lines.append(f'[submodule "{name}"]')
        if path not in NO_IGNORE_DIRTY:
            lines.append("\tignore = dirty")
        lines.append(f"\tpath = {path}")
        lines.append(f"\turl = {url}")
        for key, value in SUBMODULE_EXTRA.get(path, {}).items():
            lines.append(f"\t{key} = {value}")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------- main
def build(root: Path, seeds: list[Path], force: bool) -> dict:
    mirror, downloads = root / "mirror", root / "downloads"
    mirror.mkdir(parents=True, exist_ok=True)
    manifest_path = mirror / "MANIFEST.json"
    old = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
    manifest: dict = {"prefix": f"file://{mirror}/", "rewrites": "https://github.com/",
                      "pytorch": {}, "submodules": {}}
    urls = {path: url for _, path, url in SUBMODULES}

    gitlinks: dict[str, str] = {}
    for path, (package, tag, branch) in MIRRORED.items():
        bare = url_to_mirror_path(mirror, urls[path])
        sha = None if force else existing_commit(bare, f"refs/heads/{branch}")
        tarball = None
        if sha:
            log(f"{path}: cached {bare} @ {sha[:12]}")
            tarball = old.get("submodules", {}).get(path, {}).get("tarball")
        else:
            tb = obtain_tarball(package, downloads, seeds)
            tarball = tb.name
            with tempfile.TemporaryDirectory(prefix="mirror-src-") as tmp:
                src = extract_single_root(tb, Path(tmp))
                sha = commit_tree(bare, src, f"{package}: Debian source {tb.name}", branch, tag)
            log(f"{path}: made {bare} @ {sha[:12]} from {tb.name}")
        gitlinks[path] = sha
        manifest["submodules"][path] = {"url": urls[path], "repo": str(bare), "commit": sha,
                                        "branch": branch, "tag": tag, "tarball": tarball,
                                        "debian_source": package}
    for _, path, url in SUBMODULES:
        if path not in gitlinks:
            gitlinks[path] = placeholder_commit(path)
            manifest["submodules"][path] = {"url": url, "commit": gitlinks[path], "mirrored": False}

    bare = mirror / "pytorch" / "pytorch.git"
    sha = None if force else existing_commit(bare, f"refs/tags/{TAG}")
    if sha:
        # Gitlinks are part of the pytorch commit: if a submodule repo was remade with another
        # commit, the pytorch commit must be remade too.
        repo = git.Repo(bare)
        stale = [p for p, s in gitlinks.items()
                 if repo.git.rev_parse(f"{TAG}^{{commit}}:{p}") != s]
        if stale:
            log(f"pytorch: gitlinks out of date for {stale}; remaking")
            sha = None
    if sha:
        log(f"pytorch: cached {bare} @ {sha[:12]}")
        tarball = old.get("pytorch", {}).get("tarball")
    else:
        tb = obtain_tarball(PYTORCH_PACKAGE, downloads, seeds)
        tarball = tb.name
        with tempfile.TemporaryDirectory(prefix="mirror-src-") as tmp:
            src = extract_single_root(tb, Path(tmp))
            for _, path, _url in SUBMODULES:
                d = src / path
                if d.exists() and any(d.iterdir()):
                    raise SystemExit(f"{tb.name}: submodule folder {path} is not empty")
                d.mkdir(parents=True, exist_ok=True)
            (src / ".gitmodules").write_text(gitmodules_text())
            msg = (f"PyTorch {TAG} (Debian source {tb.name})\n\n"
                   f"Upstream {TAG} is {UPSTREAM_COMMIT}; this commit is a stand-in\n"
                   "made by benchmarks/realtorch_mirror.py (use builder --allow-unpinned).\n")
            sha = commit_tree(bare, src, msg, "main", TAG, gitlinks)
        log(f"pytorch: made {bare} @ {sha[:12]} (tag {TAG}) from {tb.name}")
    manifest["pytorch"] = {"url": "https://github.com/pytorch/pytorch.git", "repo": str(bare),
                           "commit": sha, "tag": TAG, "branch": "main", "tarball": tarball,
                           "upstream_commit": UPSTREAM_COMMIT}
    manifest_path.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return manifest


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--root", type=Path, default=DEFAULT_ROOT, help=f"default {DEFAULT_ROOT}")
    ap.add_argument("--from", dest="seeds", type=Path, action="append", default=[],
                    help="a folder holding already downloaded Debian orig tarballs (repeatable)")
    ap.add_argument("--force", action="store_true", help="remake every repository")
    ap.add_argument("--print-prefix", action="store_true", help="only print the --mirror prefix and exit")
    args = ap.parse_args(argv)
    root = args.root.expanduser().resolve()
    if args.print_prefix:
        print(f"file://{root / 'mirror'}/")
        return 0
    manifest = build(root, [s.expanduser().resolve() for s in args.seeds], args.force)
    log(f"done: pass --mirror {manifest['prefix']} (rewrites {manifest['rewrites']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
