"""One settings model for every command, and one source chain: command line > environment > builder.toml >
(the release recipe, in config.resolve) > defaults.

``Settings`` holds what the user asked (``None``/empty: not given, so a later source may fill it); ``layer()`` fills
it from the machine's environment variables and builder.toml, through one table (``OPTIONS``: each setting's
environment variable, whether builder.toml may give it, its type) and records where every value came from
(``Settings.origin``). Every problem (an unknown builder.toml key or table, a value of the wrong type, a malformed
environment variable) is reported at once, with did-you-mean. Nothing here reads ``os.environ``: the CLI passes the
machine (``Environment``) in.
"""
from __future__ import annotations

import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from .errors import UsageError, ValidationErrors, did_you_mean

CONFIG_FILE = "builder.toml"
TARGET_TABLES = ("android", "ios", "host")


@dataclass(frozen=True)
class Environment:
    """The machine a command runs on: passed in (the CLI builds it), so tests control it."""

    environ: Mapping[str, str]
    home: Path
    host_os: str           # platform.system(): Linux, Darwin, Windows
    cwd: Path


@dataclass(frozen=True)
class Settings:
    """What the user asked, for any command. ``None`` (or empty) means "not given"."""

    target: str = ""                     # android | ios | host for the build commands; "" for the others
    tag: str | None = None
    abis: tuple[str, ...] = ()
    api_level: int | None = None
    ops_file: Path | None = None
    lite: bool | None = None
    features: tuple[str, ...] = ()
    without: tuple[str, ...] = ()          # features turned off (--no-vulkan), even where the release has them on
    platforms: tuple[str, ...] = ()
    arches: tuple[str, ...] = ()
    deployment_target: str | None = None
    defines: tuple[tuple[str, str], ...] = ()
    system_libs: tuple[str, ...] = ()
    skip_submodules: tuple[str, ...] = ()
    out: Path | None = None
    ndk: str | None = None
    force_ndk: bool = False
    install_ndk: bool = False
    repo: str | None = None
    mirror: str | None = None
    source_dir: Path | None = None
    allow_unpinned: bool = False
    cache: str | None = None
    jobs: int | None = None
    page_size_16k: bool = False
    config_file: Path | None = None
    size_levers: bool = False            # --size-levers: the release's default levers for the target
    levers: tuple[str, ...] = ()         # --lever NAME (repeatable)
    models: tuple[Path, ...] = ()        # --model: build for these models (their operators are the op list)
    verify_models: bool = True           # and run each on the build against torch (targets that can)
    shapes: str = "1x3x224x224"          # random inputs of these shapes for that check
    aar: bool = True                     # android: the JNI library, classes.jar, AAR and Maven folder (--no-aar)
    android_sdk: Path | None = None      # android: an SDK holding android.jar of the release's compileSdk
    maven_repo: Path | None = None       # android: a Maven repository folder with the release's Java dependencies
    maven_url: str | None = None         # android, --install-ndk: the Maven repository missing jars are fetched from
    # every command
    cache_dir: Path | None = None        # builder's cache: git mirror and work trees, downloads, runners, versions
    recipes_dir: Path | None = None      # recipes/ to read (patches/ beside it); default: builder's own
    source_date_epoch: int | None = None  # archive timestamps; default: the commit's date, else 1980
    real_install: Path | None = None     # `builder verify` without --build: this install
    origin: Mapping[str, str] = field(default_factory=dict)   # setting -> where its value came from

    @property
    def ndk_from(self) -> str:
        """Where ``ndk`` came from: --ndk, or builder.toml (which comes after ANDROID_NDK*)."""
        return "builder.toml" if self.origin.get("ndk", "").startswith(CONFIG_FILE) else "--ndk"


@dataclass(frozen=True)
class Option:
    """How one setting may be given besides the command line."""

    name: str
    kind: str                            # str | int | bool | path | strings | defines
    env: str | None = None               # the environment variable that may give it
    toml: bool = True                    # builder.toml may give it (top level or in a target's table)


OPTIONS: tuple[Option, ...] = (
    Option("tag", "str", env="BUILDER_TAG"),
    Option("abis", "strings"),
    Option("api_level", "int"),
    Option("ops_file", "path", env="SELECTED_OP_LIST"),
    Option("lite", "bool"),
    Option("features", "strings"),
    Option("platforms", "strings"),
    Option("arches", "strings"),
    Option("deployment_target", "str"),
    Option("defines", "defines"),
    Option("system_libs", "strings"),
    Option("skip_submodules", "strings"),
    Option("out", "path"),
    Option("ndk", "str"),                # the ANDROID_NDK* variables are searched with the NDKs (toolchains.ndk)
    Option("repo", "str"),
    Option("mirror", "str", env="BUILDER_MIRROR"),
    Option("source_dir", "path"),
    Option("cache", "str", env="BUILDER_CACHE"),
    Option("jobs", "int", env="MAX_JOBS"),
    Option("levers", "strings"),
    Option("android_sdk", "path"),
    Option("maven_repo", "path", env="BUILDER_MAVEN_REPO"),
    Option("maven_url", "str", env="BUILDER_MAVEN_URL"),
    Option("cache_dir", "path", env="BUILDER_CACHE_DIR"),
    Option("recipes_dir", "path", env="BUILDER_RECIPES_DIR", toml=False),
    Option("source_date_epoch", "int", env="SOURCE_DATE_EPOCH", toml=False),
    Option("real_install", "path", env="BUILDER_REAL_INSTALL", toml=False),
)
BY_NAME = {o.name: o for o in OPTIONS}
TOML_KEYS = tuple(o.name for o in OPTIONS if o.toml)


def given(value: Any) -> bool:
    return value is not None and value != () and value != ""


def layer(settings: Settings, env: Environment, problems: list[UsageError]) -> Settings:
    """``settings`` (the command line) with what it leaves unset taken from the environment, then from builder.toml;
    ``cache_dir`` always set. Problems are appended (all of them), never raised."""
    origin = {f.name: "command line" for f in fields(Settings)
              if f.name in BY_NAME and given(getattr(settings, f.name))}
    updates: dict[str, Any] = {}
    for option in OPTIONS:
        if option.env is None or option.name in origin or not env.environ.get(option.env):
            continue
        value = _parse(option, env.environ[option.env], f"{option.env}={env.environ[option.env]!r}", problems,
                       from_text=True, cwd=env.cwd)
        if value is not None:
            updates[option.name], origin[option.name] = value, option.env
    for key, (value, where) in _config_values(settings, env, problems).items():
        option = BY_NAME[key]
        parsed = _parse(option, value, f"{where}: '{key}'", problems, cwd=env.cwd)
        if parsed is None:
            continue
        if key == "defines":                     # -D from the file come before the command line's (last wins)
            updates[key] = tuple(parsed) + settings.defines
            origin.setdefault(key, where)
        elif key not in origin:
            updates[key], origin[key] = parsed, where
    if "cache_dir" not in updates and settings.cache_dir is None:
        updates["cache_dir"] = default_cache_dir()
        origin["cache_dir"] = "default"
    return replace(settings, **updates, origin=origin)


def load(settings: Settings, env: Environment) -> Settings:
    """``layer``, raising every problem at once."""
    problems: list[UsageError] = []
    out = layer(settings, env, problems)
    raise_all(problems)
    return out


def raise_all(problems: list[UsageError]) -> None:
    if problems:
        raise ValidationErrors(problems) if len(problems) > 1 else problems[0]


def default_cache_dir() -> Path:
    """The one default for builder's cache folder (BUILDER_CACHE_DIR or builder.toml's cache_dir override it)."""
    import platformdirs

    return Path(platformdirs.user_cache_dir("builder"))


# ------------------------------------------------------------------ builder.toml


def _config_values(settings: Settings, env: Environment, problems: list[UsageError]) -> dict[str, tuple[Any, str]]:
    """{key: (value, where)} from builder.toml: its top level, then the table of the command's target."""
    path = settings.config_file or env.cwd / CONFIG_FILE
    if not path.is_file():
        if settings.config_file is not None:
            problems.append(UsageError(f"config file {path} not found", hint="check --config"))
        return {}
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        problems.append(UsageError(f"{path}: not valid TOML ({exc})", hint="fix the file or pass --config"))
        return {}
    name = path.name
    out: dict[str, tuple[Any, str]] = {}
    for key, value in data.items():
        if isinstance(value, dict) and key != "defines":
            if key not in TARGET_TABLES:
                problems.append(UsageError(f"{name}: unknown table [{key}]" + did_you_mean(key, TARGET_TABLES),
                                           hint=f"tables: {', '.join(TARGET_TABLES)}, defines"))
                continue
            for sub, sub_value in value.items():
                if _known_key(sub, f"{name} [{key}]", problems) and key == settings.target:
                    out[sub] = (sub_value, f"{name} [{key}]")
        elif _known_key(key, name, problems) and key not in out:
            out[key] = (value, name)
    return out


def _known_key(key: str, where: str, problems: list[UsageError]) -> bool:
    if key in TOML_KEYS:
        return True
    hint = "an environment variable" if key in BY_NAME else f"keys: {', '.join(TOML_KEYS)}"
    problems.append(UsageError(f"{where}: unknown key '{key}'" + did_you_mean(key, TOML_KEYS), hint=hint))
    return False


# ------------------------------------------------------------------ values


def _parse(option: Option, value: Any, where: str, problems: list[UsageError], *, from_text: bool = False,
           cwd: Path) -> Any:
    """``value`` as the setting's type, or None (and a problem) when it is not one."""
    parser = _PARSERS[option.kind]
    try:
        return parser(value, from_text, cwd)
    except (TypeError, ValueError) as exc:
        problems.append(UsageError(f"{where} {exc}"))
        return None


def _str(value: Any, from_text: bool, cwd: Path) -> str:
    if not isinstance(value, str):
        raise TypeError(f"must be a string, not {type(value).__name__}")
    return value


def _int(value: Any, from_text: bool, cwd: Path) -> int:
    if from_text and isinstance(value, str) and value.strip().lstrip("-").isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError("must be a whole number")
    if value < 0:
        raise ValueError("must not be negative")
    return value


def _bool(value: Any, from_text: bool, cwd: Path) -> bool:
    if not isinstance(value, bool):
        raise TypeError("must be true or false")
    return value


def _path(value: Any, from_text: bool, cwd: Path) -> Path:
    return Path(_str(value, from_text, cwd)).expanduser()


def _strings(value: Any, from_text: bool, cwd: Path) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise TypeError("must be a list of strings")
    return tuple(value)


def _defines(value: Any, from_text: bool, cwd: Path) -> tuple[tuple[str, str], ...]:
    if not isinstance(value, dict):
        raise TypeError("must be a table of NAME = value")
    out = []
    for key, item in value.items():
        if isinstance(item, bool):
            out.append((str(key), "ON" if item else "OFF"))
        elif isinstance(item, (str, int, float)):
            out.append((str(key), str(item)))
        else:
            raise TypeError(f"{key} must be true/false, a number or a string")
    return tuple(out)


_PARSERS: dict[str, Callable[[Any, bool, Path], Any]] = {
    "str": _str, "int": _int, "bool": _bool, "path": _path, "strings": _strings, "defines": _defines}
