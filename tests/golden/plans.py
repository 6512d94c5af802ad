"""Snapshots of whole plans: ``builder <target> --tag v1.13.1 --dry-run [--json]`` for the golden requests, as text
and JSON, with this machine's paths replaced by placeholders so the files compare anywhere.

    python -m tests.golden.plans          # rewrite tests/golden/plan_snapshots/plan-*.{json,txt}

The tests (test_plan_snapshots.py) compare a fresh plan with these files: a refactor that changes a plan shows up as
a diff of the files, and an intended change is made by rewriting them (and saying why in the commit).
"""
from __future__ import annotations

import json
import re
import sys
import sysconfig
import tempfile
from pathlib import Path
from typing import Any

EXPECTED = Path(__file__).parent / "plan_snapshots"   # v1.13.1
REQUESTS: dict[str, dict[str, Any]] = {
    "android": {"target": "android", "abis": ("arm64-v8a",)},
    "ios": {"target": "ios", "platforms": ("SIMULATOR",), "arches": ("x86_64",)},
    "host": {"target": "host"},
}
KEY_RE = re.compile(r"\b[0-9a-f]{64}\b")
DIR_KEY_RE = re.compile(r"-[0-9a-f]{12}\b")


def golden_environment(root: Path) -> Any:
    """The environment of the golden tests: a stand-in NDK 21.4 (shader tools for macOS), a private cache, no PATH,
    two jobs (not this machine's core count), host macOS (so the iOS plan is a plan for a machine that can build it)."""
    from builder.config import Environment
    from tests.fixtures.standin_ndk import make_standin_ndk

    ndk = make_standin_ndk(root / "ndk", revision="21.4.7075529")
    (ndk / "shader-tools" / "linux-x86_64").rename(ndk / "shader-tools" / "darwin-x86_64")
    from tests.fixtures.standin_android import make_java_layout_files

    java = make_java_layout_files(root)   # the AAR's Java inputs (JDK, android.jar, Maven jars) as placeholder files
    work = root / "work"
    work.mkdir(exist_ok=True)
    return Environment(environ={"ANDROID_NDK": str(ndk), "BUILDER_CACHE_DIR": str(root / "cache"),
                                "PATH": "/nonexistent", "MAX_JOBS": "2", **java}, home=root, host_os="Darwin",
                       cwd=work)


def normalise(text: str, root: Path) -> str:
    """This machine's paths and the content keys that depend on them -> placeholders."""
    repo = Path(__file__).resolve().parent.parent.parent
    for path, name in ((str(root.resolve()), "<tmp>"), (str(root), "<tmp>"), (str(repo), "<repo>"),
                       (sysconfig.get_path("purelib"), "<purelib>"), (sys.executable, "<python>")):
        text = text.replace(path, name)
    text = KEY_RE.sub("<key>", text)
    text = re.sub(r"-builder\.[0-9a-f]{8}", "-builder.<key8>", text)     # custom AAR versions carry a key too
    return DIR_KEY_RE.sub("-<key12>", text)


def render(target: str, env: Any, root: Path) -> tuple[str, str]:
    """(JSON, text) of the golden request for ``target``, normalised."""
    from builder.config import BuildRequest, resolve
    from builder.plan import plan

    p = plan(resolve(BuildRequest(tag="v1.13.1", **REQUESTS[target]), env))
    as_json = json.dumps(p.to_json(), indent=2) + "\n"
    return normalise(as_json, root), normalise(p.to_text(), root)


def main() -> int:
    from builder.toolchains import tools
    from tests.unit.conftest import FAKE_CMAKE, FAKE_NINJA

    tools.find_cmake = lambda spec, **kw: FAKE_CMAKE  # type: ignore[assignment]
    tools.find_ninja = lambda spec=None, **kw: FAKE_NINJA  # type: ignore[assignment]
    tools.compiler_identity = lambda environ, **kw: "c++ (fake) 12.0 (/usr/bin/c++)"  # type: ignore[assignment]
    tools.find_launcher = lambda choice, environ=None: None  # type: ignore[assignment]
    with tempfile.TemporaryDirectory(prefix="golden-plans-") as tmp:
        root = Path(tmp)
        env = golden_environment(root)
        for target in REQUESTS:
            as_json, text = render(target, env, root)
            (EXPECTED / f"plan-{target}.json").write_text(as_json)
            (EXPECTED / f"plan-{target}.txt").write_text(text)
            print(f"wrote plan-{target}.json, plan-{target}.txt")
    return 0


if __name__ == "__main__":
    sys.exit(main())
