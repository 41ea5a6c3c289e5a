"""Logging that never prints credentials, signatures or session tokens.

botocore's debug logs print every request's headers (Authorization with its
Credential and Signature, X-Amz-Security-Token), its canonical request and
its signature; presigned URLs carry them as query parameters. A filter on
every handler rewrites each record's final text, at every level, so none of
it reaches a terminal or a CI log (docs/design.md §2).
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable

REDACTED = "***"
# Header and parameter names whose values are secret, and botocore's own
# labels for a signature and its credential scope.
_NAMES = (
    r"Authorization|X-Amz-Security-Token|X-Amz-Credential|X-Amz-Signature"
    r"|Signature|Credential|aws_secret_access_key|aws_session_token"
)
# `Name: value` (a header line, a dict entry): a quoted value, or the rest of
# the line (botocore logs `Signature:` and the value on the next line).
_AS_HEADER = re.compile(
    rf"""(?i)(?<![\w-])((?:{_NAMES})['"]?\s*:\s*)(b?'[^']*'|b?"[^"]*"|[^\r\n]*)"""
)
# `Name=value` (a query parameter, an Authorization header's parts).
_AS_PARAMETER = re.compile(rf"""(?i)(?<![\w-])((?:{_NAMES})=)([^&\s'",]*)""")
# Environment variables whose values are secrets wherever they show up.
SECRET_VARIABLES = ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN")
_SHORTEST_SECRET = 6  # shorter values would redact ordinary words


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """`text` with secret header values, parameters and `secrets` replaced."""
    for secret in secrets:
        text = text.replace(secret, REDACTED)
    text = _AS_HEADER.sub(lambda m: m.group(1) + REDACTED, text)
    return _AS_PARAMETER.sub(lambda m: m.group(1) + REDACTED, text)


class RedactingFilter(logging.Filter):
    """Rewrites each record's message (and traceback) with `redact`."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.secrets: set[str] = set()
        for secret in secrets:
            self.add_secret(secret)

    def add_secret(self, secret: str | None) -> None:
        """Redact this value too (credentials resolved after logging started)."""
        if secret and len(secret) >= _SHORTEST_SECRET:
            self.secrets.add(secret)

    def filter(self, record: logging.LogRecord) -> bool:
        # Longest first, so a secret containing another is replaced whole.
        secrets = sorted(self.secrets, key=len, reverse=True)
        record.msg = redact(record.getMessage(), secrets)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text, secrets)
        if record.stack_info:
            record.stack_info = redact(record.stack_info, secrets)
        return True


_FILTER = RedactingFilter()


def install_redaction(secrets: Iterable[str] = ()) -> RedactingFilter:
    """Put the redacting filter on every handler that exists now (a handler's
    filter sees records from every logger below it), with the values of
    SECRET_VARIABLES and `secrets` as known secrets."""
    for name in SECRET_VARIABLES:
        _FILTER.add_secret(os.environ.get(name))
    for secret in secrets:
        _FILTER.add_secret(secret)
    loggers = [logging.getLogger(), *logging.Logger.manager.loggerDict.values()]
    for logger in loggers:
        for handler in getattr(logger, "handlers", ()):
            if _FILTER not in handler.filters:
                handler.addFilter(_FILTER)
    return _FILTER
