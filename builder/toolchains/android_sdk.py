"""android.jar of a compile SDK: where the build (classes.jar) and the Java check (`builder verify --aar`) find it.

Folders in order: ``--android-sdk``, ``ANDROID_HOME``, ``ANDROID_SDK_ROOT``, then Android Studio's defaults
(``~/Android/Sdk``, ``~/Library/Android/sdk``): the same folders the NDK search reads (builder.toolchains.ndk); in
each, ``platforms/android-<api>/android.jar``. Pure apart from looking at files.
"""
from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from builder.errors import BuilderError
from builder.package.java import ClasspathSearch, find_android_jar
from builder.toolchains.ndk import HOME_SDKS, SDK_ENV_VARS


def sdk_roots(explicit: Path | None, environ: Mapping[str, str], home: Path) -> tuple[Path, ...]:
    from_env = (Path(environ[k]) for k in SDK_ENV_VARS if environ.get(k))
    return tuple(p for p in (explicit, *from_env, *(home / rel for rel in HOME_SDKS)) if p is not None)


def locate_android_jar(roots: tuple[Path, ...], api: int, environ: Mapping[str, str], home: Path) -> Path | None:
    """The first ``platforms/android-<api>/android.jar`` under ``roots``; None when none has it."""
    for root in roots:
        try:
            return find_android_jar(ClasspathSearch(sdk_root=root, android_api=api, env=dict(environ), home=home))
        except BuilderError:
            continue
    return None


def missing_message(roots: tuple[Path, ...], api: int) -> str:
    where = ", ".join(str(r / "platforms" / f"android-{api}") for r in roots)
    return f"android.jar of API {api} not found in {where}"
