"""The one way benchmark scripts write their figures into a doc: a section between its begin/end markers."""
from __future__ import annotations

from pathlib import Path


def replace_section(doc: Path, begin: str, end: str, section: str) -> None:
    """``section`` (which starts with ``begin`` and ends with ``end``) replaces the doc's text between those markers,
    markers included; appended when the doc lacks them (a new doc starts with a "# Benchmarks" title)."""
    text = doc.read_text(encoding="utf-8") if doc.is_file() else "# Benchmarks\n"
    if begin in text and end in text[text.index(begin):]:
        start = text.index(begin)
        stop = text.index(end, start) + len(end)
        text = text[:start] + section + text[stop:]
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    doc.parent.mkdir(parents=True, exist_ok=True)
    doc.write_text(text, encoding="utf-8")
