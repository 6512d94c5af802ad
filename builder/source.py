"""PyTorch source checkouts: a shared bare mirror, one work tree per tag, pinned and patched.

Layout under ``SourceSpec.cache_dir``::

    mirror.git/            one persistent bare repo; every tag is shallow-fetched into it
    mirror.lock            held while anything reads or writes mirror.git
    worktrees/<tag>/       a shallow clone of mirror.git at <tag>, with the needed submodules
    worktrees/<tag>.lock   held for a whole checkout of <tag>

Work trees are clones of the local mirror, not ``git worktree``s: git documents submodule support in
linked worktrees as incomplete (``git worktree remove`` refuses trees with submodules, and their
module repos would live inside the shared mirror), and an independent clone can be deleted or
rebuilt on its own and needs the mirror lock only while cloning.  The clone's ``origin`` is set to
the upstream URL so relative submodule URLs resolve as they do upstream; the mirror prefix is applied
with ``url.<mirror>.insteadOf`` so git's own ``--recursive`` update rewrites nested submodules too.

Builder never modifies a tree with local changes.  Changes it made itself (its patches) are recorded
in ``<git dir>/builder-patches.json`` (file digests) with a copy of each patch in
``<git dir>/builder-patches/`` so they can be told apart from the user's and undone when needed (``patching``).
"""
from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager, ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import platformdirs

from builder import locks, patching
from builder.errors import SourceError, did_you_mean
from builder.gitcmd import git, git_dir, git_message, rev, run_git
from builder.proc import quote

log = logging.getLogger("builder")

DEFAULT_REPO_URL = "https://github.com/pytorch/pytorch.git"
GITHUB_PREFIXES = ("https://github.com/", "git@github.com:", "ssh://git@github.com/")
# Other hosts a release's .gitmodules names, mirrored under <mirror><host>/...: v1.13.1's real .gitmodules has
# third_party/eigen at https://gitlab.com/libeigen/eigen.git (Debian's pytorch 1.13.1 tarball carries the file).
OTHER_HOSTS = ("https://gitlab.com/",)
SUBMODULE_JOBS = 8
LOCK_TIMEOUT_S = 3600.0

ActionKind = Literal["fetch", "verify", "worktree", "submodules", "patch"]
ProgressFn = Callable[["GitAction", int, int], None]


@dataclass(frozen=True)
class SourceSpec:
    repo_url: str = DEFAULT_REPO_URL
    mirror: str | None = None          # replaces "https://github.com/" (and ssh forms) everywhere
    source_dir: Path | None = None     # existing checkout, used as-is: never fetched
    cache_dir: Path = field(default_factory=lambda: Path(platformdirs.user_cache_dir("builder")) / "source")
    allow_unpinned: bool = False

    @property
    def mirror_dir(self) -> Path:
        return self.cache_dir / "mirror.git"

    def worktree_dir(self, tag: str) -> Path:
        return self.cache_dir / "worktrees" / _safe_name(tag)


@dataclass(frozen=True)
class GitAction:
    kind: ActionKind
    title: str
    shell: tuple[str, ...]              # equivalent commands a human could paste
    worktree: Path                      # the checkout this plan prepares
    repo: Path                          # where this action runs (mirror.git or the work tree)
    url: str = ""                       # fetch: source URL; worktree: upstream URL for origin
    tag: str = ""
    ref: str = ""                       # verify: what must resolve to ``commit``
    commit: str = ""                    # the recipe's pinned commit
    paths: tuple[str, ...] = ()         # submodules to initialize
    patch: Path | None = None
    source: Path | None = None          # worktree: the local mirror it is cloned from
    git_config: tuple[str, ...] = ()    # "key=value" passed as ``git -c``
    allow_unpinned: bool = False
    require_clean: bool = False         # verify: also refuse a dirty work tree
    lock: Path | None = None            # held for the whole checkout


@dataclass(frozen=True)
class CheckoutResult:
    worktree: Path
    commit: str
    submodules: Mapping[str, str]       # path -> checked-out commit, recursive
    patches: tuple[tuple[str, str], ...]  # (file name, sha256) in effect, in order


# --------------------------------------------------------------------------- URLs (pure)
def rewrite_url(url: str, mirror: str | None, base: str | None = None) -> str:
    """Resolve a (possibly relative) submodule URL against ``base`` and route GitHub through ``mirror``.

    ``https://github.com/x/y(.git)``, ``git@github.com:x/y`` and ``ssh://git@github.com/x/y`` become
    ``<mirror>x/y(.git)``; ``https://gitlab.com/x/y`` becomes ``<mirror>gitlab.com/x/y``; other hosts are unchanged.
    """
    if url.startswith(("./", "../")):
        if not base:
            raise SourceError(f"relative URL {url} needs the superproject URL to resolve against")
        url = _resolve_relative(url, base)
    if not mirror:
        return url
    for prefix in GITHUB_PREFIXES:
        if url.startswith(prefix):
            return _mirror_prefix(mirror) + url[len(prefix):]
    for prefix in OTHER_HOSTS:
        if url.startswith(prefix):
            return _mirror_prefix(mirror) + url[len("https://"):]
    return url


def _resolve_relative(url: str, base: str) -> str:
    """git's rules: each ``../`` drops one path component of base (``/`` or scp ``:``)."""
    base, sep = base.rstrip("/"), "/"
    while url.startswith(("./", "../")):
        if url.startswith("./"):
            url = url[2:]
            continue
        url = url[3:]
        cut = max(base.rfind("/"), base.rfind(":"))
        if cut <= 0 or base[:cut].endswith("/"):
            raise SourceError(f"relative submodule URL goes above the root of {base}")
        sep = base[cut]
        base = base[:cut]
    return f"{base}{sep}{url}"


def _mirror_prefix(mirror: str) -> str:
    return mirror if mirror.endswith(("/", ":")) else mirror + "/"


def _is_file_url(url: str) -> bool:
    return url.startswith(("file://", "/", "./", "../")) or bool(re.match(r"^[A-Za-z]:[\\/]", url))


def _safe_name(tag: str) -> str:
    name = re.sub(r"[^A-Za-z0-9._-]", "_", tag).replace("..", "_")
    return "_" + name if name.startswith((".", "-")) else name


# --------------------------------------------------------------------------- planning (pure)
def plan_checkout(spec: SourceSpec, tag: str, commit: str, submodules: tuple[str, ...] = (),
                  patches: tuple[Path, ...] = ()) -> tuple[GitAction, ...]:
    """The git steps that produce a verified, patched checkout of ``tag``. Does no I/O."""
    if not re.fullmatch(r"[^\s~^:?*\[\\]+", tag) or ".." in tag or tag.startswith("-"):
        raise SourceError(f"invalid tag {tag!r}", hint="check the recipe's tag")
    cfg = _submodule_config(spec)
    if spec.source_dir is not None:
        tree, lock = spec.source_dir, None
        actions = [_verify_source(spec, tree, commit)]
    else:
        tree = spec.worktree_dir(tag)
        lock = tree.with_name(tree.name + ".lock")
        actions = [_fetch(spec, tree, tag, commit), _verify_tag(spec, tree, tag, commit),
                   _worktree(spec, tree, tag, lock)]
    if submodules:
        actions.append(GitAction("submodules", f"submodules: {', '.join(submodules)} (recursive)",
                                 (quote(_submodule_argv(tree, cfg, submodules)),), tree, tree,
                                 paths=tuple(submodules), git_config=cfg, lock=lock))
    for patch in patches:
        shell = (f"{quote(patching.apply_argv(tree, patch, '--reverse', '--check'))} 2>/dev/null || "
                 f"{quote(patching.apply_argv(tree, patch))}",)
        actions.append(GitAction("patch", f"apply {patch.name}", shell, tree, tree, patch=patch,
                                 lock=lock))
    return tuple(actions)


def _submodule_config(spec: SourceSpec) -> tuple[str, ...]:
    cfg: list[str] = []
    if _is_file_url(spec.mirror or spec.repo_url):
        cfg.append("protocol.file.allow=always")
    if spec.mirror:
        cfg += [f"url.{_mirror_prefix(spec.mirror)}.insteadOf={p}" for p in GITHUB_PREFIXES]
        cfg += [f"url.{_mirror_prefix(spec.mirror)}{p[len('https://'):]}.insteadOf={p}" for p in OTHER_HOSTS]
    return tuple(cfg)


def _fetch(spec: SourceSpec, tree: Path, tag: str, commit: str) -> GitAction:
    url, mirror = rewrite_url(spec.repo_url, spec.mirror), spec.mirror_dir
    shell = (f"test -d {quote([mirror])} || {quote(['git', 'init', '-q', '--bare', mirror])}",
             quote(_fetch_argv(mirror, url, tag)))
    return GitAction("fetch", f"fetch tag {tag} into {mirror} (skipped if already there)", shell,
                     tree, mirror, url=url, tag=tag, commit=commit)


def _verify_tag(spec: SourceSpec, tree: Path, tag: str, commit: str) -> GitAction:
    ref, mirror = f"refs/tags/{tag}", spec.mirror_dir
    shell = (f'test "$({quote(["git", "-C", mirror, "rev-parse", ref + "^{commit}"])})" = {commit}',)
    return GitAction("verify", f"verify {tag} is commit {commit[:12] or '(unpinned)'}", shell, tree,
                     mirror, tag=tag, ref=ref, commit=commit, allow_unpinned=spec.allow_unpinned)


def _verify_source(spec: SourceSpec, tree: Path, commit: str) -> GitAction:
    shell = (f"test -z \"$({quote(['git', '-C', tree, 'status', '--porcelain'])})\"",
             f'test "$({quote(["git", "-C", tree, "rev-parse", "HEAD"])})" = {commit}')
    return GitAction("verify", f"verify {tree} is clean and at {commit[:12] or '(unpinned)'}",
                     shell, tree, tree, ref="HEAD", commit=commit,
                     allow_unpinned=spec.allow_unpinned, require_clean=True)


def _worktree(spec: SourceSpec, tree: Path, tag: str, lock: Path) -> GitAction:
    shell = (f"test -d {quote([tree / '.git'])} || {quote(_clone_argv(spec.mirror_dir, tree, tag))}",
             quote(["git", "-C", tree, "checkout", "-q", "--detach", f"refs/tags/{tag}"]),
             quote(["git", "-C", tree, "remote", "set-url", "origin", spec.repo_url]))
    return GitAction("worktree", f"work tree for {tag} at {tree}", shell, tree, tree,
                     url=spec.repo_url, tag=tag, source=spec.mirror_dir, lock=lock)


def _fetch_argv(repo: Path, url: str, tag: str) -> list[str]:
    return ["git", "-C", str(repo), "fetch", "-q", "--depth", "1", "--no-tags", url,
            f"+refs/tags/{tag}:refs/tags/{tag}"]


def _clone_argv(mirror: Path, tree: Path, tag: str) -> list[str]:
    return ["git", "clone", "-q", "--depth", "1", "--no-tags", "--branch", tag,
            mirror.absolute().as_uri(), str(tree)]


def _submodule_argv(tree: Path, cfg: Sequence[str], paths: Sequence[str]) -> list[str]:
    return ["git", *_config_args(tree, cfg), "submodule", "update", "--init", "--recursive",
            "--depth", "1", "--jobs", str(SUBMODULE_JOBS), "--", *paths]


def _config_args(repo: Path, cfg: Sequence[str]) -> list[str]:
    return ["-C", str(repo), *[arg for item in cfg for arg in ("-c", item)]]


# --------------------------------------------------------------------------- execution
def execute_checkout(actions: Sequence[GitAction],
                     on_progress: ProgressFn | None = None) -> CheckoutResult:
    """Run a plan from ``plan_checkout``. Raises SourceError for anything the user can fix."""
    if not actions:
        raise ValueError("empty checkout plan")
    tree, total = actions[0].worktree, len(actions)
    runners: dict[str, Callable[[GitAction], None]] = {
        "fetch": _run_fetch, "verify": _run_verify, "worktree": _run_worktree,
        "submodules": _run_submodules}
    with ExitStack() as stack:
        for lock in sorted({a.lock for a in actions if a.lock is not None}):
            stack.enter_context(_cache_locked(lock))
        try:
            for index, action in enumerate(actions, 1):
                if on_progress is not None:
                    on_progress(action, index, total)
                log.info("%s", action.title)
                if action.kind != "patch":
                    runners[action.kind](action)
            applied = patching.sync_patches(tree, [a.patch for a in actions if a.patch is not None])
            head = rev(tree, "HEAD") or ""
            return CheckoutResult(tree, head, submodule_status(tree), applied)
        except git.GitCommandError as exc:
            raise SourceError(f"git failed in {tree}: {git_message(exc)}",
                              hint="see the log for the full command") from exc


def submodule_status(worktree: Path) -> dict[str, str]:
    """{path: checked-out commit} of every initialized submodule, recursively (for manifests)."""
    out = run_git("-C", worktree, "submodule", "status", "--recursive")
    status: dict[str, str] = {}
    for line in out.splitlines():
        if len(line) < 42 or line[0] == "-":
            continue
        path = line[42:]
        if path.endswith(")") and " (" in path:
            path = path.rsplit(" (", 1)[0]
        status[path] = line[1:41]
    return status


def _run_fetch(action: GitAction) -> None:
    mirror = action.repo
    with _cache_locked(mirror.with_name("mirror.lock")):
        if not (mirror / "HEAD").exists():
            mirror.mkdir(parents=True, exist_ok=True)
            run_git("init", "-q", "--bare", mirror)
        cached = rev(mirror, f"refs/tags/{action.tag}")
        if cached and action.commit and cached.startswith(action.commit.lower()):
            log.info("tag %s already in %s", action.tag, mirror)
            return
        try:
            run_git(*_fetch_argv(mirror, action.url, action.tag))
        except git.GitCommandError as exc:
            raise _fetch_error(exc, action.url, action.tag) from exc


def _fetch_error(exc: git.GitCommandError, url: str, tag: str) -> SourceError:
    message = git_message(exc)
    if "couldn't find remote ref" in message.lower():
        hint = did_you_mean(tag, _remote_tags(url))
        return SourceError(f"tag {tag} not found in {url}{hint}",
                           hint="check the recipe's tag and --repo/--mirror")
    return SourceError(f"cannot fetch {url}: {message}",
                       hint="check --repo/--mirror and network access")


def _remote_tags(url: str) -> list[str]:
    try:
        out = run_git("ls-remote", "--tags", "--refs", url, timeout=60)
    except git.GitCommandError:
        return []
    return [line.split("refs/tags/", 1)[1] for line in out.splitlines() if "refs/tags/" in line]


def _run_verify(action: GitAction) -> None:
    if action.require_clean:
        _require_checkout(action.repo)
        patching.ensure_clean(action.repo)
    actual = rev(action.repo, action.ref)
    if actual is None:
        raise SourceError(f"{action.ref} does not name a commit in {action.repo}",
                          hint="check --repo/--mirror/--source")
    what = f"tag {action.tag}" if action.tag else f"{action.repo} (HEAD)"
    expected = action.commit.lower()
    if expected and actual.startswith(expected):
        return
    problem = (f"{what} is commit {actual[:12]}, but the recipe pins {expected[:12]}" if expected
               else f"the recipe pins no commit for {what} (it is {actual[:12]})")
    if not action.allow_unpinned:
        raise SourceError(problem, hint="check --repo/--mirror/--source, or pass --allow-unpinned")
    log.warning("%s; continuing because unpinned sources are allowed", problem)


def _require_checkout(tree: Path) -> None:
    try:
        top = run_git("-C", tree, "rev-parse", "--show-toplevel")
    except git.GitCommandError as exc:
        raise SourceError(f"{tree} is not a git checkout",
                          hint="pass the root of a PyTorch clone to --source") from exc
    if Path(top).resolve() != tree.resolve():
        raise SourceError(f"{tree} is inside the checkout {top}, not its root",
                          hint=f"pass --source {top}")


def _run_worktree(action: GitAction) -> None:
    tree, tag, mirror = action.repo, action.tag, action.source
    assert mirror is not None, "worktree actions come from plan_checkout"
    target = rev(mirror, f"refs/tags/{tag}")
    if target is None:
        raise SourceError(f"tag {tag} is missing from {mirror}", hint="run the fetch step first")
    if not (tree / ".git").exists():
        if tree.exists() and any(tree.iterdir()):
            raise SourceError(f"{tree} exists but is not a git work tree", hint=f"delete {tree}")
        tree.parent.mkdir(parents=True, exist_ok=True)
        with _cache_locked(mirror.with_name("mirror.lock")):
            run_git(*_clone_argv(mirror, tree, tag))
    else:
        patching.ensure_clean(tree)
        if rev(tree, f"refs/tags/{tag}") != target:
            with _cache_locked(mirror.with_name("mirror.lock")):
                run_git(*_fetch_argv(tree, mirror.absolute().as_uri(), tag))
        if rev(tree, "HEAD") != target:
            patching.revert_all(tree)
            run_git("-C", tree, "checkout", "-q", "--detach", f"refs/tags/{tag}")
    run_git("-C", tree, "remote", "set-url", "origin", action.url)


def _run_submodules(action: GitAction) -> None:
    tree, unshallowed = action.repo, set[str]()
    known = _gitmodule_paths(tree)
    for path in action.paths:
        if path not in known:
            raise SourceError(f"submodule {path} is not in {tree / '.gitmodules'}"
                              f"{did_you_mean(path, known)}", hint="check the recipe's submodules")
    while True:
        try:
            run_git(*_submodule_argv(tree, action.git_config, action.paths))
            return
        except git.GitCommandError as exc:
            failed = set(re.findall(r"in submodule path '([^']+)'", str(exc.stderr))) - unshallowed
            if not failed or not all(_is_shallow(tree / path) for path in failed):
                raise SourceError(f"cannot update submodules of {tree}: {git_message(exc, 2)}",
                                  hint="check --mirror and network access") from exc
            for path in sorted(failed):
                log.warning("server refused a shallow fetch of %s; fetching its full history", path)
                run_git(*_config_args(tree / path, action.git_config), "fetch", "-q", "--unshallow",
                     "origin")
            unshallowed |= failed


def _is_shallow(repo: Path) -> bool:
    return (repo / ".git").exists() and (git_dir(repo) / "shallow").exists()


def _gitmodule_paths(tree: Path) -> list[str]:
    if not (tree / ".gitmodules").exists():
        return []
    try:
        out = run_git("-C", tree, "config", "-f", ".gitmodules", "--get-regexp", r"^submodule\..*\.path$")
    except git.GitCommandError:
        return []
    return [line.split(" ", 1)[1] for line in out.splitlines() if " " in line]


def _cache_locked(path: Path) -> AbstractContextManager[None]:
    return locks.locked(path, waiting="another builder process using the source cache", timeout=LOCK_TIMEOUT_S)
