"""Manifest errors that point at a file, line and column."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# A message quotes at most this much of a bad value: a 4 MB name must not
# become a 4 MB log line.
QUOTE_LIMIT = 80


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


@dataclass(frozen=True, order=True)
class ManifestError:
    """One problem in the manifests, positioned 1-based like compilers do."""

    file: str
    line: int
    column: int
    message: str
    hint: str = ""

    def __str__(self) -> str:
        text = f"{self.file}:{self.line}:{self.column}: {self.message}"
        return f"{text}\n    hint: {self.hint}" if self.hint else text


class ManifestInvalid(Exception):
    """Raised with every error found, sorted by position."""

    def __init__(self, errors: list[ManifestError]) -> None:
        self.errors = sorted(set(errors))
        super().__init__("\n".join(str(e) for e in self.errors))
