"""examples/: the GitHub Actions release workflow has the structure its comments promise."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
WORKFLOW = ROOT / "examples" / "github-actions-release.yml"
ABIS = {"arm64-v8a", "armeabi-v7a", "x86", "x86_64"}


@pytest.fixture(scope="module")
def workflow() -> dict:
    data = yaml.safe_load(WORKFLOW.read_text())
    assert isinstance(data, dict)
    return data


def _steps_text(job: dict) -> str:
    return "\n".join(str(step.get("run", "")) + str(step.get("uses", "")) + str(step.get("with", ""))
                     for step in job["steps"])


def test_triggers_and_jobs(workflow):
    triggers = workflow.get("on", workflow.get(True))   # YAML 1.1 reads a bare `on` as true
    assert "workflow_dispatch" in triggers
    assert set(workflow["jobs"]) == {"image", "build", "assemble"}
    for job in workflow["jobs"].values():
        assert job["runs-on"] and job["steps"]
        for step in job["steps"]:
            if "uses" in step:
                assert "@" in step["uses"], f"actions must be pinned to a version: {step['uses']}"


def test_image_job_builds_the_android_dockerfile(workflow):
    image = workflow["jobs"]["image"]
    build_push = next(s for s in image["steps"] if s.get("uses", "").startswith("docker/build-push-action"))
    assert build_push["with"]["file"] == "docker/android.Dockerfile"
    assert (ROOT / build_push["with"]["file"]).is_file()
    assert image["permissions"]["packages"] == "write"


def test_build_matrix_covers_four_abis_with_shared_sccache(workflow):
    build = workflow["jobs"]["build"]
    assert set(build["strategy"]["matrix"]["abi"]) == ABIS
    assert build["strategy"]["fail-fast"] is False
    assert "image" in _needs(build)
    env = {**workflow["env"], **build.get("env", {})}
    assert "SCCACHE_BUCKET" in env and "SCCACHE_GHA_ENABLED" in env
    text = _steps_text(build)
    assert "${IMAGE}" in text and "--env SCCACHE_BUCKET" in text and "--env SCCACHE_GHA_ENABLED" in text
    assert "--abi \"${{ matrix.abi }}\"" in text
    assert "mozilla-actions/sccache-action" in text
    upload = next(s for s in build["steps"] if s.get("uses", "").startswith("actions/upload-artifact"))
    assert "${{ matrix.abi }}" in upload["with"]["name"] and "${{ matrix.abi }}" in upload["with"]["path"]


def test_assemble_needs_build_and_publishes_maven_and_manifest(workflow):
    assemble = workflow["jobs"]["assemble"]
    assert "build" in _needs(assemble)
    text = _steps_text(assemble)
    assert "builder assemble" in text and "--parts" in text and "--out dist/" in text
    for abi in ABIS:
        assert f"parts/part-{abi}" in text
    download = next(s for s in assemble["steps"] if s.get("uses", "").startswith("actions/download-artifact"))
    assert download["with"]["pattern"] == "part-*"
    uploads = {s["with"]["name"]: s["with"]["path"] for s in assemble["steps"]
               if s.get("uses", "").startswith("actions/upload-artifact")}
    assert uploads == {"aar": "dist/pytorch_android_lite.aar"}


def _needs(job: dict) -> list[str]:
    needs = job.get("needs", [])
    return [needs] if isinstance(needs, str) else list(needs)


def test_classes_jar_comes_from_the_build_not_the_user(workflow):
    """issue 16: nothing left to the user: `builder android` makes classes.jar; the parts are its stripped JNI output."""
    build = _steps_text(workflow["jobs"]["build"])
    assert "jni/aar-input" in build and "build/android-aar-*/classes.jar" in build
    assemble = _steps_text(workflow["jobs"]["assemble"])
    assert "--classes-jar classes/classes.jar" in assemble
