"""Reading and writing the review package's own JSON files beside ``project.json``.

Each file is ``{"format": ..., "version": 1, <key>: [...]}``, bounded in size before it
is read (:mod:`..io.safe_json`) and replaced whole and atomically (:mod:`..io.atomic`),
so a failed write leaves the previous file as it was.
"""
from __future__ import annotations

import json
from pathlib import Path

from ..io.atomic import write_text_atomic
from ..io.project import ProjectError, read_project
from ..io.safe_json import UnsafeJSONError, load_json_file
from .errors import CaseError

MAX_FILE_BYTES = 32 << 20  # a busy case's audit trail is a few MiB; 32 MiB bounds a hostile one
VERSION = 1


def project_names(project_dir) -> list[str]:
    """The project's image names (``CaseError`` when the folder is not a project)."""
    try:
        return read_project(project_dir).names
    except ProjectError as exc:
        raise CaseError(str(exc)) from None


def read_list(path: Path, fmt: str, key: str, max_items: int) -> list:
    """The list ``doc[key]`` of the file ``path``; ``[]`` when there is no file yet."""
    if not path.exists():
        return []
    try:
        doc = load_json_file(path, max_bytes=MAX_FILE_BYTES)
    except UnsafeJSONError as exc:
        raise CaseError(f"{path}: not readable ({exc})") from None
    if not isinstance(doc, dict) or doc.get("format") != fmt:
        got = doc.get("format") if isinstance(doc, dict) else type(doc).__name__
        raise CaseError(f"{path}: unknown format {str(got)[:80]!r}, expected {fmt!r}")
    version = doc.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise CaseError(f"{path}: bad format version {str(version)[:40]!r}")
    if version > VERSION:
        raise CaseError(f"{path}: format version {version} was written by a newer "
                        f"napari-wbcseg; this one reads version {VERSION}")
    items = doc.get(key)
    if not isinstance(items, list):
        raise CaseError(f"{path}: {key!r} is not a list")
    if len(items) > max_items:
        raise CaseError(f"{path}: {len(items)} {key}, more than the {max_items} allowed")
    return items


def write_list(path: Path, fmt: str, key: str, items: list) -> None:
    text = json.dumps({"format": fmt, "version": VERSION, key: items}, indent=1) + "\n"
    if len(text.encode("utf-8")) > MAX_FILE_BYTES:
        raise CaseError(f"{path}: would be larger than {MAX_FILE_BYTES} bytes; not written")
    try:
        write_text_atomic(path, text)
    except OSError as exc:  # disk full, read-only share: the old file is still whole
        raise CaseError(f"{path}: not written ({exc.strerror or exc}); "
                        "the previous file is unchanged") from None
