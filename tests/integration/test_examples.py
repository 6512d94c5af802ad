"""examples/: the GitHub Actions release workflow has the structure its comments promise."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
WORKFLOW = ROOT / "examples" / "github-actions-release.yml"
SCRIPT = ROOT / "examples" / "release-local.sh"
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
    assert "builder docker --engine docker --image \"${IMAGE}\"" in text and "--run --" in text
    assert "--abi \"${{ matrix.abi }}\"" in text and "--cache sccache" in text
    assert "mozilla-actions/sccache-action" in text
    uploads = [s for s in build["steps"] if s.get("uses", "").startswith("actions/upload-artifact")]
    assert {s["with"]["name"] for s in uploads} == {"part-${{ matrix.abi }}", "publication-${{ matrix.abi }}"}


def test_assemble_needs_build_and_publishes_aar_and_maven_folder(workflow):
    assemble = workflow["jobs"]["assemble"]
    assert "build" in _needs(assemble)
    text = _steps_text(assemble)
    assert "builder assemble" in text or "in_image assemble" in text
    assert "--publication" in text and "--version" in text and "--out \"${PWD}/dist\"" in text
    for abi in ABIS:
        assert f"parts/part-{abi}" in text
    download = next(s for s in assemble["steps"] if s.get("uses", "").startswith("actions/download-artifact"))
    assert download["with"]["pattern"] == "part-*"
    uploads = {s["with"]["name"]: s["with"]["path"] for s in assemble["steps"]
               if s.get("uses", "").startswith("actions/upload-artifact")}
    assert uploads == {"aar": "dist"}


def _needs(job: dict) -> list[str]:
    needs = job.get("needs", [])
    return [needs] if isinstance(needs, str) else list(needs)


def _commands(text: str) -> list[str]:
    """The builder commands a script or job runs, normalised: `builder docker ... -- CMD ARGS` -> CMD + options."""
    return sorted(set(re.findall(r"in_image (android|package part|assemble)\b", text)))


def test_the_local_script_runs_the_workflows_builder_commands():
    """examples/release-local.sh and the workflow run the same builder commands with the same options."""
    script = SCRIPT.read_text()
    workflow_text = WORKFLOW.read_text()
    assert _commands(script) == _commands(workflow_text) == ["android", "assemble", "package part"]
    for option in ("--runtime-lib libfbjni.so --shared-stl", "--publication", "--version", "jni/aar-input",
                   "--json", "raw_decode", "--run --"):
        assert option in script and option in workflow_text, option
    assert re.search(r'--out "\$OUT/out"', script) and '--out "${PWD}/out"' in workflow_text   # one folder for all ABIs


def test_nothing_is_left_to_the_user(workflow):
    """issue 16/21: `builder android` makes classes.jar and the Maven folder; no file the user must bring."""
    build = _steps_text(workflow["jobs"]["build"])
    assert "jni/aar-input" in build and "classes.jar" not in build
