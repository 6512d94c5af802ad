"""Fetch a release's Java dependencies (nativeloader, jsr305, ...) into a local Maven folder, once.

`builder android --install-ndk` plans this when a jar the release's gradle files pin is in no local Maven folder or
Gradle cache: the jar is downloaded from a Maven repository (Maven Central unless ``--maven-url`` /
``BUILDER_MAVEN_URL``), with the ``.sha1`` the repository publishes beside it, and moved into
``<m2>/<group path>/<artifact>/<version>/`` only when they agree. builder pins no checksum of its own for these jars
(none could be read from a source it trusts): the check is the repository's, as Maven and Gradle do it by default.
"""
from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

from builder import hashing
from builder.errors import ToolchainError
from builder.package.maven import Dependency
from builder.toolchains.ndk_install import download

log = logging.getLogger("builder")

MAVEN_CENTRAL = "https://repo1.maven.org/maven2/"


def jar_path(m2_repo: Path, coordinate: str) -> Path:
    return m2_repo / Dependency(*coordinate.split(":")).jar_path()


def jar_url(base_url: str, coordinate: str) -> str:
    return f"{base_url.rstrip('/')}/{Dependency(*coordinate.split(':')).jar_path()}"


def fetch_jar(coordinate: str, m2_repo: Path, base_url: str, timeout: float = 60.0) -> Path:
    """``coordinate``'s jar in ``m2_repo`` (downloaded when missing), checked against the repository's .sha1."""
    dest = jar_path(m2_repo, coordinate)
    if dest.is_file():
        return dest
    url = jar_url(base_url, coordinate)
    # Names per process and thread: two builders fetching the same jar at once each write their own, and the rename
    # is atomic (the same bytes, checked, whichever lands last); what a failed or interrupted one wrote is removed.
    me = f"{os.getpid()}-{threading.get_ident()}"
    part, sha_part = dest.with_name(f"{dest.name}.{me}.part"), dest.with_name(f"{dest.name}.sha1.{me}.part")
    try:
        log.info("downloading %s", url)
        download(url, part, timeout=timeout)
        download(url + ".sha1", sha_part, timeout=timeout)
        published = sha_part.read_text(encoding="ascii", errors="replace").split()[:1]
        got = hashing.file_digests(part, ("sha1",))["sha1"]
        if published != [got]:
            want = published[0] if published else "(empty)"
            raise ToolchainError(f"refusing {url}: its sha1 {got} is not the repository's {want}",
                                 hint="the download was deleted; if it happens again the repository serves another "
                                      "file")
        os.replace(part, dest)
        return dest
    finally:
        part.unlink(missing_ok=True)
        sha_part.unlink(missing_ok=True)
