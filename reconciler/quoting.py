"""Quoting user-supplied values in messages and Markdown, cut to a readable length."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Any

# A message quotes at most this much of a bad value: a 4 MB name must not
# become a 4 MB log line.
QUOTE_LIMIT = 80
# How many names a message lists before it says "and N more".
LISTED_NAMES = 10


def clip(text: str, limit: int = QUOTE_LIMIT) -> str:
    """`text` cut to about `limit` characters, for a message."""
    return text if len(text) <= limit else f"{text[:limit]}… ({len(text)} chars)"


def excerpt(value: Any, limit: int = QUOTE_LIMIT) -> str:
    """`repr` of a value for a message, cut to about `limit` characters."""
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, str):
        return repr(value) if len(value) <= limit else f"{value[:limit]!r}… ({len(value)} chars)"
    return clip(repr(value), limit)


def markdown_cell(text: str) -> str:
    """`text` safe inside a Markdown table cell (no column break, no HTML)."""
    return text.replace("|", "\\|").replace("<", "&lt;")


def names(items: list[str] | set[str] | frozenset[str]) -> str:
    """A readable, bounded, sorted list of names for a message."""
    ordered = sorted(items)
    text = ", ".join(ordered[:LISTED_NAMES])
    more = len(ordered) - LISTED_NAMES
    return text + (f" and {more} more" if more > 0 else "")


def counted(count: int, noun: str, plural: str | None = None) -> str:
    """`1 attribute`, `2 attributes`: a count with its noun in the right number."""
    return f"{count} {noun if count == 1 else plural or noun + 's'}"


def unknown_names(kind: str, asked: Iterable[str], known: Iterable[str]) -> str | None:
    """The error for names given on the command line that match nothing,
    with the closest known names; None when every name is known."""
    known = sorted(known)
    missing = sorted(set(asked) - set(known))
    if not missing:
        return None
    parts = []
    for name in missing:
        close = difflib.get_close_matches(name, known, n=3)
        parts.append(f"{name!r}" + (f" (did you mean {', '.join(close)}?)" if close else ""))
    return f"no {kind} named {', '.join(parts)}"
