"""The benchmark scripts' reports (benchmarks/*.py render recorded results into docs/benchmarks.md): pure functions,
checked on small records so a format change cannot silently break the docs' tables."""
from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.fixture(scope="module")
def scripts() -> Iterator[dict[str, ModuleType]]:
    sys.path.insert(0, str(BENCH))
    try:
        import install_only
        import real_android
        import releases
        yield {"install_only": install_only, "real_android": real_android, "releases": releases}
    finally:
        sys.path.remove(str(BENCH))


def _run(cpu: float, **extra: object) -> dict[str, object]:
    return {"exit": 0, "seconds": cpu / 2, "cpu_seconds": cpu, "steps": 10, "installed_files": 3,
            "libraries": ["lib/libc10.a"], **extra}


def test_paired_report_has_a_table_per_target(scripts: dict[str, ModuleType]) -> None:
    host = {"runs": {"builder": _run(50), "build_mobile": _run(100), "only_builder": [], "only_build_mobile": ["x"],
                     "cpu_ratio": 0.5}, "baseline": None, "argv": {"builder": ["builder", "host"]}}
    android = {"runs": {"builder": _run(60), "build_android": _run(100), "only_builder": [],
                        "only_build_android": [], "cpu_ratio": 0.6},
               "baseline": None, "target": "android", "abi": "arm64-v8a", "theirs": "build_android",
               "argv": {"builder": ["builder", "android"], "build_android": ["bash", "build_android.sh"]}}
    text = scripts["install_only"].render({"paired": host, "paired-android-arm64-v8a": android})
    assert "for host started together" in text and "for android arm64-v8a started together" in text
    assert "builder / build_mobile.sh CPU: **0.500**" in text      # a record from before --target (no "theirs")
    assert "builder / build_android.sh CPU: **0.600**" in text
    assert "only by build_mobile.sh: 1" in text
    assert "\n\n\n" not in text


def test_releases_row_names_the_check_and_sizes(scripts: dict[str, ModuleType]) -> None:
    row = {"release": "v2.6.0", "target": "host", "what": "--model", "build": "/b", "link": "registrations",
           "note": "cold", "edges": 1655, "wall_seconds": 1200, "edge_seconds": 2400, "libtorch_cpu": 2**20 * 10,
           "stripped": 2**20 * 4, "verified": "ok: 1 output(s) match torch 2.13.0+cpu (max abs 8.94e-08, max rel 1e-3)",
           "size_exit": 0}
    line = next(x for x in scripts["releases"].render([row]).splitlines() if x.startswith("| v2.6.0"))
    assert line == ("| v2.6.0 | host | --model | 1,655 | 20 min | 40 min | 10.0 MiB | 4.0 MiB | registrations | "
                    "max abs 8.94e-08 | cold |")
    failed = {**row, "verified": None, "size_exit": 1, "stripped": None}
    assert "| - | registrations | size failed |" in scripts["releases"].render([failed])


def test_android_sections_are_per_release(scripts: dict[str, ModuleType]) -> None:
    markers = scripts["real_android"].markers
    assert markers("v1.13.1") == ("<!-- android:begin -->", "<!-- android:end -->")   # the section already in the doc
    assert markers("v2.6.0") == ("<!-- android-v2.6.0:begin -->", "<!-- android-v2.6.0:end -->")


def test_paired_finds_the_folder_the_run_keyed_by_another_commit(scripts: dict[str, ModuleType], tmp_path: Path
                                                                 ) -> None:
    built_folder = scripts["install_only"].built_folder
    build = tmp_path / "out" / "build"
    plan = {"slices": [{"build_dir": str(build / "host-host-recipe0commit")}]}
    (build / "host-host-mirror0commit").mkdir(parents=True)
    (build / "host-host-mirror0commit" / ".ninja_log").write_text("# ninja log v5\n")
    assert built_folder(plan) == build / "host-host-mirror0commit"      # --allow-unpinned: keyed by the mirror's
    (build / "host-host-recipe0commit").mkdir()
    (build / "host-host-recipe0commit" / ".ninja_log").write_text("# ninja log v5\n")
    assert built_folder(plan) == build / "host-host-recipe0commit"      # the planned one, when it was built
    (build / "host-host-recipe0commit" / ".ninja_log").unlink()
    (build / "host-host-other0commit").mkdir()
    (build / "host-host-other0commit" / ".ninja_log").write_text("# ninja log v5\n")
    with pytest.raises(SystemExit, match="cannot tell which"):
        built_folder(plan)


def test_paired_android_report_labels_a_stand_in_ndk(scripts: dict[str, ModuleType], tmp_path: Path) -> None:
    ndk = tmp_path / "ndk"
    ndk.mkdir()
    (ndk / "source.properties").write_text("Pkg.Desc = Android NDK (STAND-IN for builder tests; not Google's NDK)\n"
                                           "Pkg.Revision = 19.2.5345600\n")
    label = scripts["install_only"].ndk_label(str(ndk))
    assert label.startswith("Android NDK (STAND-IN") and "19.2.5345600" in label
    android = {"runs": {"builder": _run(60, steps=1303), "build_android": _run(100, steps=4133)},
               "baseline": None, "target": "android", "abi": "arm64-v8a", "theirs": "build_android", "ndk": label,
               "argv": {"builder": ["builder", "android"]}}
    text = scripts["install_only"].render({"paired-android-arm64-v8a": android})
    assert "STAND-IN" in text and "Linux ELF" in text and "| 1,303 |" in text and "| 4,133 |" in text
