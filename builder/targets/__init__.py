"""The targets builder builds for; each module owns what differs between them (see base.Target)."""
from __future__ import annotations

from .base import Target

NAMES = ("android", "ios", "host")


def get_target(name: str) -> Target:
    """The target called ``name`` (one of NAMES)."""
    from . import android, host, ios

    targets: dict[str, Target] = {"android": android.TARGET, "ios": ios.TARGET, "host": host.TARGET}
    return targets[name]
