"""What `pip install .` ships: builder's release knowledge (recipes/, patches/) goes into the wheel (a non-editable
install once answered "no recipe for tag 'v1.13.1'")."""
from __future__ import annotations

import fnmatch
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_every_recipe_and_patch_is_package_data():
    tool = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    dirs, data = tool["package-dir"], tool["package-data"]
    assert set(dirs) <= set(tool["packages"])
    for package, folder in dirs.items():
        files = [p.relative_to(ROOT / folder).as_posix() for p in (ROOT / folder).rglob("*") if p.is_file()]
        shipped = [f for f in files if any(fnmatch.fnmatch(f, g) for g in data[package])]
        assert files and sorted(shipped) == sorted(files), (folder, set(files) - set(shipped))
    assert dirs == {"builder._release.recipes": "recipes", "builder._release.patches": "patches"}
