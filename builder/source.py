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

import dataclasses
import logging
import re
import shutil
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager, ExitStack
from dataclasses import dataclass
from pathlib import Path

from builder import atomic, gitcmd, locks, patching
from builder.errors import SourceError, did_you_mean
from builder.gitcmd import GitFailed, git_command, git_dir, git_message, rev, rev_command, run, run_git
from builder.proc import Command
from builder.steps import FetchTagStep, PatchStep, SourceStep, SubmodulesStep, VerifyCommitStep, WorkTreeStep

log = logging.getLogger("builder")

DEFAULT_REPO_URL = "https://github.com/pytorch/pytorch.git"
GITHUB_PREFIXES = ("https://github.com/", "git@github.com:", "ssh://git@github.com/")
# Other hosts a release's .gitmodules names, mirrored under <mirror><host>/...: real .gitmodules files name
# third_party/eigen at https://gitlab.com/libeigen/eigen.git (docs/real_pytorch_notes.md, the Android mirror).
OTHER_HOSTS = ("https://gitlab.com/",)
SUBMODULE_JOBS = 8
LOCK_TIMEOUT_S = 3600.0
INCOMPLETE = "builder-incomplete"       # in a work tree's git dir while builder changes its checkout

ProgressFn = Callable[[SourceStep, int, int], None]


@dataclass(frozen=True)
class SourceSpec:
    cache_dir: Path                    # <cache>/git: the mirror and the work trees
    repo_url: str = DEFAULT_REPO_URL
    mirror: str | None = None          # replaces "https://github.com/" (and ssh forms) everywhere
    source_dir: Path | None = None     # existing checkout, used as-is: never fetched
    allow_unpinned: bool = False

    @property
    def mirror_dir(self) -> Path:
        return self.cache_dir / "mirror.git"

    def worktree_dir(self, tag: str) -> Path:
        return self.cache_dir / "worktrees" / _safe_name(tag)


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
                  patches: tuple[Path, ...] = ()) -> tuple[SourceStep, ...]:
    """The git steps that produce a verified, patched checkout of ``tag``, with the exact git commands each runs
    (``execute_checkout`` runs those, nothing else). Does no I/O."""
    if not re.fullmatch(r"[^\s~^:?*\[\\]+", tag) or ".." in tag or tag.startswith("-"):
        raise SourceError(f"invalid tag {tag!r}", hint="check the recipe's tag")
    cfg = _submodule_config(spec)
    steps: list[SourceStep] = []
    if spec.source_dir is not None:
        tree, lock = spec.source_dir, None
        steps.append(_verify_source(spec, tree, commit))
    else:
        tree = spec.worktree_dir(tag)
        lock = tree.with_name(tree.name + ".lock")
        steps += [_fetch(spec, tree, tag, commit), _verify_tag(spec, tree, tag, commit),
                  _worktree(spec, tree, tag, lock)]
    if submodules:
        steps.append(SubmodulesStep(
            title=f"submodules: {', '.join(submodules)} (recursive)", worktree=tree, lock=lock, tree=tree,
            paths=tuple(submodules), git_config=cfg,
            update=git_command(*_config_args(tree, cfg), "submodule", "update", "--init", "--recursive", "--depth",
                               "1", "--jobs", str(SUBMODULE_JOBS), "--", *submodules),
            unshallow=git_command(*_config_args(tree / "{path}", cfg), "fetch", "-q", "--unshallow", "origin",
                                  note="for each submodule {path} whose server refuses a shallow fetch, then the "
                                       "update again")))
    for patch in patches:
        steps.append(PatchStep(
            title=f"apply {patch.name}", worktree=tree, lock=lock, tree=tree, patch=patch,
            check=patching.apply_command(tree, patch, "--check", note="does it apply?"),
            check_reverse=patching.apply_command(tree, patch, "--reverse", "--check",
                                                 note="or is it applied already? (asked first when builder "
                                                      "applied it before)"),
            apply=patching.apply_command(tree, patch, note="when it applies and is not applied yet")))
    return tuple(steps)


def _submodule_config(spec: SourceSpec) -> tuple[str, ...]:
    cfg: list[str] = []
    if _is_file_url(spec.mirror or spec.repo_url):
        cfg.append("protocol.file.allow=always")
    if spec.mirror:
        cfg += [f"url.{_mirror_prefix(spec.mirror)}.insteadOf={p}" for p in GITHUB_PREFIXES]
        cfg += [f"url.{_mirror_prefix(spec.mirror)}{p[len('https://'):]}.insteadOf={p}" for p in OTHER_HOSTS]
    return tuple(cfg)


def _fetch(spec: SourceSpec, tree: Path, tag: str, commit: str) -> FetchTagStep:
    url, mirror = rewrite_url(spec.repo_url, spec.mirror), spec.mirror_dir
    return FetchTagStep(
        title=f"fetch tag {tag} into {mirror} (skipped if already there)", worktree=tree, mirror=mirror, url=url,
        tag=tag, commit=commit,
        init=git_command("init", "-q", "--bare", mirror, note=f"if {mirror / 'HEAD'} is missing"),
        fetch=_fetch_command(mirror, url, tag, note=f"unless {mirror}'s refs/tags/{tag} is already "
                                                   f"{commit[:12] or 'there'}"))


def _verify_tag(spec: SourceSpec, tree: Path, tag: str, commit: str) -> VerifyCommitStep:
    ref, mirror = f"refs/tags/{tag}", spec.mirror_dir
    return VerifyCommitStep(
        title=f"verify {tag} is commit {commit[:12] or '(unpinned)'}", worktree=tree, repo=mirror, ref=ref, tag=tag,
        commit=commit, allow_unpinned=spec.allow_unpinned,
        rev=rev_command(mirror, ref, note=_must_print(commit, spec.allow_unpinned)))


def _verify_source(spec: SourceSpec, tree: Path, commit: str) -> VerifyCommitStep:
    return VerifyCommitStep(
        title=f"verify {tree} is clean and at {commit[:12] or '(unpinned)'}", worktree=tree, repo=tree,
        ref="HEAD", commit=commit, allow_unpinned=spec.allow_unpinned, require_clean=True,
        toplevel=git_command("-C", tree, "rev-parse", "--show-toplevel", note=f"must print {tree}"),
        status=patching.status_command(tree, note="no local changes (submodules with changes are asked too)"),
        rev=rev_command(tree, "HEAD", note=_must_print(commit, spec.allow_unpinned)))


def _must_print(commit: str, allow_unpinned: bool) -> str:
    if not commit:
        return "the recipe pins no commit" + ("" if allow_unpinned else ": refused without --allow-unpinned")
    return f"must print {commit}" + (" (--allow-unpinned: else a warning)" if allow_unpinned else "")


def _worktree(spec: SourceSpec, tree: Path, tag: str, lock: Path) -> WorkTreeStep:
    mirror, ref = spec.mirror_dir, f"refs/tags/{tag}"
    return WorkTreeStep(
        title=f"work tree for {tag} at {tree}", worktree=tree, lock=lock, tree=tree, tag=tag, mirror=mirror,
        url=spec.repo_url,
        clone=git_command("clone", "-q", "--depth", "1", "--no-tags", "--branch", tag, mirror.absolute().as_uri(),
                          tree, note=f"if {tree / '.git'} is missing"),
        status=patching.status_command(tree, note="otherwise: refuses local changes (builder's patches excepted)"),
        update=_fetch_command(tree, mirror.absolute().as_uri(), tag,
                              note=f"if the tree's {ref} is not the mirror's"),
        checkout=git_command("-C", tree, "checkout", "-q", "--detach", ref,
                             note=f"if HEAD is not {ref} (builder's patches are reverted first)"),
        set_url=git_command("-C", tree, "remote", "set-url", "origin", spec.repo_url))


def _fetch_command(repo: Path, url: str, tag: str, note: str) -> Command:
    return git_command("-C", repo, "fetch", "-q", "--depth", "1", "--no-tags", url,
                       f"+refs/tags/{tag}:refs/tags/{tag}", note=note)


def _config_args(repo: Path, cfg: Sequence[str]) -> list[str]:
    return ["-C", str(repo), *[arg for item in cfg for arg in ("-c", item)]]


# --------------------------------------------------------------------------- execution
def execute_checkout(steps: Sequence[SourceStep], on_progress: ProgressFn | None = None) -> CheckoutResult:
    """Run the steps of ``plan_checkout``. Raises SourceError for anything the user can fix."""
    if not steps:
        raise ValueError("empty checkout plan")
    tree, total = steps[0].worktree, len(steps)
    with ExitStack() as stack:
        for lock in sorted({s.lock for s in steps if s.lock is not None}):
            stack.enter_context(_cache_locked(lock))
        try:
            for index, step in enumerate(steps, 1):
                if on_progress is not None:
                    on_progress(step, index, total)
                log.info("%s", step.title)
                if isinstance(step, FetchTagStep):
                    _run_fetch(step)
                elif isinstance(step, VerifyCommitStep):
                    _run_verify(step)
                elif isinstance(step, WorkTreeStep):
                    _run_worktree(step)
                elif isinstance(step, SubmodulesStep):
                    _run_submodules(step)
            applied = _sync_patches(tree, steps)
            head = rev(tree, "HEAD") or ""
            return CheckoutResult(tree, head, submodule_status(tree), applied)
        except GitFailed as exc:
            raise SourceError(f"git failed in {tree}: {git_message(exc)}",
                              hint="see the log for the full command") from exc


def _sync_patches(tree: Path, steps: Sequence[SourceStep]) -> tuple[tuple[str, str], ...]:
    """Apply the patch steps; in builder's own work tree, the incomplete mark is set while they change it and
    removed once the whole checkout is done."""
    patches = [s for s in steps if isinstance(s, PatchStep)]
    owned = any(isinstance(s, WorkTreeStep) for s in steps)
    if owned and patching.needs_sync(tree, patches):
        _mark_incomplete(tree)
    applied = patching.sync_patches(tree, patches)
    if owned:
        (tree / ".git" / INCOMPLETE).unlink(missing_ok=True)
    return applied


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


def _run_fetch(step: FetchTagStep) -> None:
    mirror = step.mirror
    with _cache_locked(mirror.with_name("mirror.lock")):
        if not (mirror / "HEAD").exists():
            mirror.mkdir(parents=True, exist_ok=True)
            run(step.init)
        gitcmd.remove_stale_locks(mirror)
        cached = rev(mirror, f"refs/tags/{step.tag}")
        if cached and step.commit and cached.startswith(step.commit.lower()):
            log.info("tag %s already in %s", step.tag, mirror)
            return
        try:
            run(step.fetch)
        except GitFailed as exc:
            raise _fetch_error(exc, step.url, step.tag) from exc


def _fetch_error(exc: GitFailed, url: str, tag: str) -> SourceError:
    message = git_message(exc)
    local = _local_cause(git_message(exc, 3))
    if local:
        return SourceError(f"cannot fetch {url}: {message}", hint=local)
    if "couldn't find remote ref" in message.lower():
        hint = did_you_mean(tag, _remote_tags(url))
        return SourceError(f"tag {tag} not found in {url}{hint}",
                           hint="check the recipe's tag and --repo/--mirror")
    return SourceError(f"cannot fetch {url}: {message}",
                       hint="check --repo/--mirror and network access")


def _local_cause(message: str) -> str | None:
    """A hint for git failures caused on this machine, which no network or --mirror change would fix."""
    lower = message.lower()
    if "no space left on device" in lower:
        return "free disk space, or set BUILDER_CACHE_DIR to a disk with room"
    if "unable to create" in lower and ".lock" in lower:
        return "another git is using the source cache; if none is, delete that lock file"
    if any(word in lower for word in ("corrupt", "bad object", "loose object", "not a git repository")):
        return "builder's source cache is damaged: delete its git folder (under BUILDER_CACHE_DIR) and run again"
    return None


def _remote_tags(url: str) -> list[str]:
    try:
        out = run_git("ls-remote", "--tags", "--refs", url, timeout=60)
    except GitFailed:
        return []
    return [line.split("refs/tags/", 1)[1] for line in out.splitlines() if "refs/tags/" in line]


def _run_verify(step: VerifyCommitStep) -> None:
    if step.require_clean:
        _require_checkout(step)
        patching.ensure_clean(step.repo)
    try:
        actual: str | None = run(step.rev) or None
    except GitFailed:
        actual = None
    if actual is None:
        raise SourceError(f"{step.ref} does not name a commit in {step.repo}",
                          hint="check --repo/--mirror/--source")
    what = f"tag {step.tag}" if step.tag else f"{step.repo} (HEAD)"
    expected = step.commit.lower()
    if expected and actual.startswith(expected):
        return
    problem = (f"{what} is commit {actual[:12]}, but the recipe pins {expected[:12]}" if expected
               else f"the recipe pins no commit for {what} (it is {actual[:12]})")
    if not step.allow_unpinned:
        raise SourceError(problem, hint="check --repo/--mirror/--source, or pass --allow-unpinned")
    log.warning("%s; continuing because unpinned sources are allowed", problem)


def _require_checkout(step: VerifyCommitStep) -> None:
    tree = step.repo
    assert step.toplevel is not None, "a --source verify step asks for the checkout's root"
    try:
        top = run(step.toplevel)
    except GitFailed as exc:
        raise SourceError(f"{tree} is not a git checkout",
                          hint="pass the root of a PyTorch clone to --source") from exc
    if Path(top).resolve() != tree.resolve():
        raise SourceError(f"{tree} is inside the checkout {top}, not its root",
                          hint=f"pass --source {top}")


def _run_worktree(step: WorkTreeStep) -> None:
    tree, tag, mirror = step.tree, step.tag, step.mirror
    target = rev(mirror, f"refs/tags/{tag}")
    if target is None:
        raise SourceError(f"tag {tag} is missing from {mirror}", hint="run the fetch step first")
    _discard_incomplete(tree)
    if not (tree / ".git").exists():
        if tree.exists() and any(tree.iterdir()):
            raise SourceError(f"{tree} exists but is not a git work tree", hint=f"delete {tree}")
        with _cache_locked(mirror.with_name("mirror.lock")):
            _clone(step)
    else:
        gitcmd.remove_stale_locks(tree / ".git")
        patching.ensure_clean(tree)
        if rev(tree, f"refs/tags/{tag}") != target:
            _mark_incomplete(tree)
            with _cache_locked(mirror.with_name("mirror.lock")):
                run(step.update)
        if rev(tree, "HEAD") != target:
            _mark_incomplete(tree)
            patching.revert_all(tree)
            run(step.checkout)
    run(step.set_url)


def _clone(step: WorkTreeStep) -> None:
    """``step.clone`` into a temp folder renamed into place: a kill leaves a temp folder (removed by the next run),
    never a half tree. The clone is marked incomplete until its whole checkout (submodules, patches) is done."""
    assert step.clone.argv[-1] == str(step.tree), "the clone command's last argument is the tree"
    with atomic.atomic_dir(step.tree) as tmp:
        run(dataclasses.replace(step.clone, argv=(*step.clone.argv[:-1], str(tmp))))
        _mark_incomplete(tmp)


def _mark_incomplete(tree: Path) -> None:
    """Only when the checkout is about to change: a run that changes nothing never leaves the mark, so a kill of
    it never makes the next run delete a tree another builder may be building in."""
    if not (tree / ".git" / INCOMPLETE).exists():
        atomic.write_text(tree / ".git" / INCOMPLETE, "builder is changing this work tree's checkout\n")


def _discard_incomplete(tree: Path) -> None:
    """Delete what a killed builder left of ``tree`` (held: the tree's lock): temp clones, and the tree itself when
    its checkout never completed (a half checkout, a half-cloned submodule): it is cloned again."""
    leftover = re.compile(rf"\.{re.escape(tree.name)}\.[a-z0-9_]{{8}}\.(tmp|old)")
    if tree.parent.is_dir():
        for path in tree.parent.iterdir():
            if leftover.fullmatch(path.name):
                shutil.rmtree(path, ignore_errors=True)
    if (tree / ".git" / INCOMPLETE).exists():
        log.warning("work tree %s was left incomplete by an interrupted run: making it again", tree)
        shutil.rmtree(tree)


def _run_submodules(step: SubmodulesStep) -> None:
    tree, unshallowed = step.tree, set[str]()
    known = _gitmodule_paths(tree)
    for path in step.paths:
        if path not in known:
            raise SourceError(f"submodule {path} is not in {tree / '.gitmodules'}"
                              f"{did_you_mean(path, known)}", hint="check the recipe's submodules")
    if step.lock is not None and _submodules_stale(tree, step.paths):   # builder's own tree
        _mark_incomplete(tree)
    while True:
        try:
            run(step.update)
            return
        except GitFailed as exc:
            failed = set(re.findall(r"in submodule path '([^']+)'", exc.stderr)) - unshallowed
            if not failed or not all(_is_shallow(tree / path) for path in failed):
                raise SourceError(f"cannot update submodules of {tree}: {git_message(exc, 2)}",
                                  hint=_local_cause(git_message(exc, 2))
                                  or "check --mirror and network access") from exc
            for path in sorted(failed):
                log.warning("server refused a shallow fetch of %s; fetching its full history", path)
                run(step.unshallow_for(path))
            unshallowed |= failed


def _submodules_stale(tree: Path, paths: Sequence[str]) -> bool:
    """Some of ``paths`` (or their nested submodules) not checked out at the recorded commit."""
    try:
        out = run_git("-C", tree, "submodule", "status", "--recursive", "--", *paths)
    except GitFailed:
        return True
    return any(line[:1] in "-+U" for line in out.splitlines() if line)


def _is_shallow(repo: Path) -> bool:
    return (repo / ".git").exists() and (git_dir(repo) / "shallow").exists()


def _gitmodule_paths(tree: Path) -> list[str]:
    if not (tree / ".gitmodules").exists():
        return []
    try:
        out = run_git("-C", tree, "config", "-f", ".gitmodules", "--get-regexp", r"^submodule\..*\.path$")
    except GitFailed:
        return []
    return [line.split(" ", 1)[1] for line in out.splitlines() if " " in line]


def _cache_locked(path: Path) -> AbstractContextManager[None]:
    return locks.locked(path, waiting="another builder process using the source cache", timeout=LOCK_TIMEOUT_S)
