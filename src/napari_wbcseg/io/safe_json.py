"""Bounded JSON for files a user or a colleague supplies (cards, projects, file tags).

``json.loads`` recurses once per nesting level, so a file nested 100,000 deep raises
``RecursionError`` (not ``ValueError``) out of any caller, and a huge file is read into
memory whole.  Here the size is checked before reading and the nesting depth is found
by one scan of the brackets outside strings, before ``json.loads`` runs.  Every failure
is an :class:`UnsafeJSONError` (a ``ValueError``) with a one-line reason.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

__all__ = ["MAX_BYTES", "MAX_DEPTH", "FileTooLarge", "UnsafeJSONError", "check_depth",
           "load_json_file", "loads_bounded", "read_bounded"]

MAX_BYTES = 16 << 20  # a card or project.json is kilobytes; 16 MiB leaves room for big projects
MAX_DEPTH = 64  # our own files nest 5 deep

# a whole string, a lone quote (an unterminated string: nothing valid follows) or a bracket
_STRING_OR_BRACKET = re.compile(r'"(?:[^"\\]|\\.)*"|"|[\[\]{}]', re.DOTALL)


class UnsafeJSONError(ValueError):
    """JSON that is unreadable, too large or nested too deeply; the message says which."""


class FileTooLarge(ValueError):
    """A file whose size, checked before reading, is over the limit (``size`` bytes)."""

    def __init__(self, size: int):
        super().__init__(f"{size} bytes")
        self.size = size


def read_bounded(path, max_bytes: int) -> bytes:
    """At most ``max_bytes + 1`` bytes of ``path`` (one more tells a file that grew after
    the size check); :class:`FileTooLarge` when its size is over ``max_bytes`` before
    anything is read; ``OSError`` when it cannot be read."""
    size = Path(path).stat().st_size
    if size > max_bytes:
        raise FileTooLarge(size)
    with open(path, "rb") as fh:
        return fh.read(max_bytes + 1)


def check_depth(text: str, max_depth: int = MAX_DEPTH) -> None:
    """``UnsafeJSONError`` if brackets outside strings nest deeper than ``max_depth``."""
    depth = 0
    for match in _STRING_OR_BRACKET.finditer(text):
        token = match.group()
        if token == '"':
            return  # json.loads reports the unterminated string, within the depth seen so far
        if token in "[{":
            depth += 1
            if depth > max_depth:
                raise UnsafeJSONError(f"nested more than {max_depth} levels deep")
        elif token in "]}":
            depth -= 1


def loads_bounded(text, *, max_bytes: int = MAX_BYTES, max_depth: int = MAX_DEPTH):
    """``json.loads(text)`` for untrusted text (``str`` or ``bytes``), bounded in size and depth."""
    if isinstance(text, (bytes, bytearray)):
        if len(text) > max_bytes:
            raise UnsafeJSONError(f"{len(text)} bytes of JSON, more than the {max_bytes} allowed")
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise UnsafeJSONError(f"not UTF-8 text ({exc.reason})") from None
    if not isinstance(text, str):
        raise UnsafeJSONError(f"expected JSON text, got {type(text).__name__}")
    if len(text) > max_bytes:
        raise UnsafeJSONError(f"{len(text)} characters of JSON, more than the {max_bytes} allowed")
    check_depth(text, max_depth)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise UnsafeJSONError(f"not valid JSON ({exc.msg}, line {exc.lineno})") from None
    except RecursionError:  # unreachable after check_depth; kept so nothing else escapes
        raise UnsafeJSONError("nested too deeply") from None


def load_json_file(path, *, max_bytes: int = MAX_BYTES, max_depth: int = MAX_DEPTH):
    """Parse the JSON file ``path``; ``UnsafeJSONError`` naming the file otherwise.

    The size is checked before anything is read; a missing or unreadable file is also an
    ``UnsafeJSONError`` (callers turn it into their own error type).
    """
    path = Path(path)
    try:
        data = read_bounded(path, max_bytes)
    except FileTooLarge as exc:
        raise UnsafeJSONError(f"{path.name}: {exc.size} bytes, more than the {max_bytes} "
                              "allowed for a JSON file") from None
    except OSError as exc:
        raise UnsafeJSONError(f"{path.name}: cannot be read ({exc.strerror or exc})") from None
    try:
        return loads_bounded(data, max_bytes=max_bytes, max_depth=max_depth)
    except UnsafeJSONError as exc:
        raise UnsafeJSONError(f"{path.name}: {exc}") from None
