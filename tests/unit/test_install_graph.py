"""install_graph: the install's targets from a file API reply and build.ninja (hand-written here, as CMake writes
them)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from builder import install_graph


def reply(build: Path, source: Path, installers: list[dict[str, Any]], targets: list[dict[str, Any]],
          minor: int = 11) -> None:
    folder = build / install_graph.REPLY
    folder.mkdir(parents=True)
    (folder / "directory-.json").write_text(json.dumps({"installers": installers}))
    entries = []
    for t in targets:
        (folder / f"target-{t['name']}.json").write_text(json.dumps(t))
        entries.append({"name": t["name"], "id": t["id"], "jsonFile": f"target-{t['name']}.json"})
    codemodel = {"version": {"major": 2, "minor": minor}, "paths": {"source": str(source), "build": str(build)},
                 "configurations": [{"directories": [{"source": ".", "jsonFile": "directory-.json"}],
                                     "targets": entries}]}
    (folder / "codemodel-v2-x.json").write_text(json.dumps(codemodel))
    (folder / "index-1.json").write_text(json.dumps({"reply": {"codemodel-v2": {"jsonFile": "codemodel-v2-x.json"}}}))


NINJA = """# CMake
build cmake_object_order_depends_target_a: phony || GEN
build CMakeFiles/a.dir/a.c.o: C_COMPILER__a_ /src/a.c || cmake_object_order_depends_target_a
build liba.a: C_STATIC_LIBRARY_LINKER__a_ CMakeFiles/a.dir/a.c.o || GEN
build CMakeFiles/unused.dir/a.c.o: C_COMPILER__unused_ /src/a.c
build gen/g.h gen/more$ space.h | ${cmake_ninja_workdir}gen/g.h: CUSTOM_COMMAND
build /src/inc/t.h: CUSTOM_COMMAND $
    /src/t.in
build /src/inc/loose.h: CUSTOM_COMMAND
build /src/inc/CMakeLists.txt: phony
build CMakeFiles/install.util: CUSTOM_COMMAND all
build build.ninja: RERUN_CMAKE | /src/CMakeLists.txt
"""

TARGETS = [
    {"name": "a", "id": "a::@1", "type": "STATIC_LIBRARY", "sources": [{"path": "/b/a.c"}]},
    {"name": "unused", "id": "unused::@1", "type": "OBJECT_LIBRARY", "sources": [{"path": "/b/a.c"}]},
    {"name": "iface", "id": "iface::@1", "type": "INTERFACE_LIBRARY"},
    {"name": "GEN", "id": "GEN::@1", "type": "UTILITY",
     "sources": [{"path": "GEN_BUILD/gen/g.h.rule", "isGenerated": True},
                 {"path": "inc/t.h.rule", "isGenerated": True}]},
]


def layout(tmp_path: Path, installers: list[dict[str, Any]], minor: int = 11) -> Path:
    build, source = tmp_path / "b", Path("/src")
    build.mkdir(parents=True)
    (build / "build.ninja").write_text(NINJA)
    targets = json.loads(json.dumps(TARGETS).replace("GEN_BUILD", str(build)))
    reply(build, source, installers, targets, minor)
    return build


def test_targets_installed_and_owners_of_installed_generated_files(tmp_path: Path) -> None:
    build = layout(tmp_path, [
        {"type": "target", "targetId": "a::@1", "destination": "lib"},
        {"type": "target", "targetId": "iface::@1", "destination": "lib"},
        {"type": "cxxModuleBmi", "cxxModuleBmiTarget": {"id": "a::@1"}, "destination": "lib"},
        {"type": "cxxModuleBmi", "cxxModuleBmiTarget": {"id": "torch_library::@1"}},   # an unlisted interface
        {"type": "directory", "paths": [{"from": str(tmp_path / "b" / "gen"), "to": "."}], "destination": "include"},
        {"type": "directory", "paths": ["inc"], "destination": "include"},
        {"type": "export", "destination": "share"}])
    needs = install_graph.needs(build)
    assert needs is not None and needs.everything is None
    assert needs.targets == ("GEN", "a")                          # not `unused`, not the interface library
    assert needs.paths == ("/src/inc/loose.h",)                    # written by an edge no target owns
    assert needs.why["a"] == "install(TARGETS) to lib"
    assert needs.why["GEN"].startswith("writes gen/g.h")
    assert needs.build_args == ("--target", "GEN", "a", "/src/inc/loose.h")


def test_code_rules_and_old_cmake_build_all(tmp_path: Path) -> None:
    code = layout(tmp_path / "code", [{"type": "code"}])
    needs = install_graph.needs(code)
    assert needs is not None and needs.build_args == () and "install(code)" in (needs.everything or "")
    old = layout(tmp_path / "old", [{"type": "target", "targetId": "a::@1"}], minor=3)
    assert install_graph.needs(old) is not None and install_graph.needs(old).build_args == ()  # type: ignore[union-attr]


def test_no_reply_is_none_and_the_query_is_an_empty_file(tmp_path: Path) -> None:
    assert install_graph.needs(tmp_path) is None and not install_graph.has_reply(tmp_path)
    install_graph.write_query(tmp_path)
    install_graph.write_query(tmp_path)
    assert (tmp_path / install_graph.QUERY).read_bytes() == b""


def test_ninja_outputs_unescaped_and_without_phony_edges(tmp_path: Path) -> None:
    build = layout(tmp_path, [])
    edges = list(install_graph.ninja_edges(build))
    assert (build / "gen" / "more space.h",) != edges[0] and any(build / "gen" / "more space.h" in e for e in edges)
    assert all(Path("/src/inc/CMakeLists.txt") not in e for e in edges)
    assert all(build / "build.ninja" not in e and build / "CMakeFiles/install.util" not in e for e in edges)


def test_another_generator_builds_all(tmp_path: Path) -> None:
    build = layout(tmp_path, [{"type": "target", "targetId": "a::@1"}])
    (build / "build.ninja").unlink()
    needs = install_graph.needs(build)
    assert needs is not None and needs.build_args == () and "build.ninja" in (needs.everything or "")
