"""Release knowledge lives in recipes/*.toml and patches/<tag>/ only (engineering rule 7): no release tag and no
comparison of release versions anywhere in builder/ outside recipe loading (builder/recipes.py)."""
from __future__ import annotations

import re
from pathlib import Path

BUILDER = Path(__file__).resolve().parents[2] / "builder"
ALLOWED = {BUILDER / "recipes.py"}                       # recipe loading: tags are file names there
TAG = re.compile(r"\bv\d+\.\d+\.\d+\b")                  # v1.13.1, v2.6.0 ...
RELEASE_NUMBER = re.compile(r"(?<![\d.])[12]\.\d{1,2}\.\d+(?![\d.])")   # 1.13.1, 2.6.0 (not NDK/CMake revisions)
NOT_RELEASES = ('"1.0.0"',)                               # the default podspec/Info.plist version of a user's package
VERSION_COMPARE = re.compile(r"\b(recipe|release)\.version\b|\btag\s+[<>]=?\s|[<>]=?\s*[\"']v\d")


def _without_non_releases(line: str) -> str:
    for text in NOT_RELEASES:
        line = line.replace(text, "")
    return line


def _code_files() -> list[Path]:
    return [p for p in sorted(BUILDER.rglob("*.py")) if p not in ALLOWED]


def test_no_release_tag_in_code():
    hits = [f"{p.relative_to(BUILDER.parent)}:{n}: {line.strip()}" for p in _code_files()
            for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
            if TAG.search(line) or RELEASE_NUMBER.search(_without_non_releases(line))]
    assert not hits, "release knowledge belongs in recipes/*.toml:\n" + "\n".join(hits)


def test_no_release_version_comparison_in_code():
    hits = [f"{p.relative_to(BUILDER.parent)}:{n}: {line.strip()}" for p in _code_files()
            for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1) if VERSION_COMPARE.search(line)]
    assert not hits, "ask the recipe, not the version number:\n" + "\n".join(hits)


def test_the_patterns_catch_what_they_are_for():
    assert TAG.search('tag = "v2.6.0"') and RELEASE_NUMBER.search("1.13.1-builder") and not RELEASE_NUMBER.search(
        "19.2.5345600")
    assert VERSION_COMPARE.search("if recipe.version >= Version('2.0'):") and VERSION_COMPARE.search('tag >= "v2"')
