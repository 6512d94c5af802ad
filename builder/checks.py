"""Ranges of build inputs, checked by resolve() before any side effect (issue 18): -j, --out, --api-level per ABI
and NDK, --mirror. Each problem is appended, all reported at once. (Options of one target only are refused by the
other targets: builder/targets/base.py.)"""
from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import UsageError

if TYPE_CHECKING:
    from .targets.base import Slice
    from .toolchains.ndk import NdkInfo


def jobs_and_out(jobs: int | None, out: Path, problems: list[UsageError]) -> None:
    """-j in range; --out a folder builder can create or write (checked before anything is written)."""
    if jobs is not None and jobs < 1:
        problems.append(UsageError(f"-j {jobs}: parallel jobs must be 1 or more",
                                   hint="e.g. -j 4, or leave -j out for one per CPU"))
    existing = next((p for p in (out, *out.absolute().parents) if p.exists()), None)
    if existing is not None and not existing.is_dir():
        problems.append(UsageError(f"--out {out}: {existing} is a file, not a folder", hint="pass a folder to --out"))
    elif existing is not None and not os.access(existing, os.W_OK | os.X_OK):
        problems.append(UsageError(f"--out {out}: {existing} is not writable", hint="pass a writable folder to --out"))


MIN_API_64_BIT = 21     # the first Android with arm64-v8a / x86_64


def api_level(level: int | None, slices: Sequence[Slice], ndk: NdkInfo | None, problems: list[UsageError]) -> None:
    """--api-level within what the NDK and the ABIs support (an NDK build only: other targets refuse the option)."""
    if level is None or ndk is None:
        return
    low = ndk_min_api(ndk)
    wide = [s.name for s in slices if s.name in ("arm64-v8a", "x86_64")]
    if wide:
        low = max(low, MIN_API_64_BIT)
    if level < low:
        why = f"{', '.join(wide)} {'needs' if len(wide) == 1 else 'need'} {MIN_API_64_BIT} or higher" \
            if wide and low == MIN_API_64_BIT else f"the NDK supports {low} and up"
        problems.append(UsageError(f"--api-level {level} is too low: {why}", hint=f"pass --api-level {low} or higher"))


def mirror(url: str | None, problems: list[UsageError]) -> None:
    """A --mirror git can read as a URL (a bare 'github.com/' would be a local folder)."""
    if url and not (re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", url) or re.match(r"^[\w.-]+@[\w.-]+:", url)
                    or Path(url).is_absolute()):
        problems.append(UsageError(f"--mirror {url}: not a URL (git would read it as a local folder)",
                                   hint="e.g. --mirror https://git.example.com/github/ or file:///srv/mirror/"))


def ndk_min_api(ndk: NdkInfo | None) -> int:
    """The lowest API level the NDK builds for (its meta/platforms.json), 16 when it does not say."""
    import json

    if ndk is None:
        return 16
    try:
        low = json.loads((ndk.path / "meta" / "platforms.json").read_text(encoding="utf-8"))["min"]
    except (OSError, ValueError, KeyError, TypeError):
        return 16
    return low if isinstance(low, int) else 16
