"""The whole printed plan (text and JSON) of the golden requests is what tests/golden/plan_snapshots/plan-* say.
Regenerate them with ``python -m tests.golden.plans`` when a change to the plan is intended."""
from __future__ import annotations

import pytest

from tests.golden.plans import EXPECTED, REQUESTS, golden_environment, render
from tests.unit.conftest import ProcessForbidden, _forbidden, fake_tools, no_processes  # noqa: F401


@pytest.mark.parametrize("target", sorted(REQUESTS))
def test_plan_is_the_snapshot(target, tmp_path, fake_tools):  # noqa: F811
    env = golden_environment(tmp_path)
    as_json, text = render(target, env, tmp_path)
    assert as_json == (EXPECTED / f"plan-{target}.json").read_text(), \
        f"plan-{target}.json changed: python -m tests.golden.plans rewrites it when that is intended"
    assert text == (EXPECTED / f"plan-{target}.txt").read_text()
