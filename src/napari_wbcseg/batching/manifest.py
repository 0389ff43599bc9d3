"""``OUT/manifest.json``: what each field of a batch gave, rewritten after every field.

Only the client writes it (one writer: no duplicate rows), atomically, so a Ctrl-C, a
killed worker or a full disk leaves the previous complete version.  A rerun skips a
field whose entry is ``done`` with the same input and model checksums and whose outputs
are all there; failed and changed fields are redone.
"""
from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

from .errors import BatchError

MANIFEST = "manifest.json"
VERSION = 1
MAX_MANIFEST_BYTES = 256 << 20  # ~1 kB a field: room for 200,000 fields
STATUSES = ("done", "failed")
# rewriting the whole file after each of thousands of fields would be quadratic
SAVE_ALWAYS_UP_TO = 500
SAVE_EVERY_S = 5.0


def sha256_file(path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def sha256_path(path) -> str:
    """sha256 of a file, or of a folder (a .zarr field): its files' names and contents."""
    path = Path(path)
    if not path.is_dir():
        return sha256_file(path)
    h = hashlib.sha256()
    for f in sorted(p for p in path.rglob("*") if p.is_file()):
        h.update(f.relative_to(path).as_posix().encode() + b"\0")
        h.update(sha256_file(f).encode())
    return h.hexdigest()


class Manifest:
    """The entries of one output folder, ``stem -> dict``; :meth:`record` rewrites the file."""

    def __init__(self, out):
        self.out = Path(out)
        self.path = self.out / MANIFEST
        self.entries: dict[str, dict] = {}
        self._dirty = False
        self._saved_at = 0.0

    @classmethod
    def load(cls, out) -> "Manifest":
        """The folder's manifest (empty when there is none); ``BatchError`` for one that
        cannot be read, rather than overwriting it."""
        from ..io.safe_json import UnsafeJSONError, load_json_file

        m = cls(out)
        if not m.path.exists():
            return m
        try:
            data = load_json_file(m.path, max_bytes=MAX_MANIFEST_BYTES)
        except UnsafeJSONError as exc:
            raise BatchError(f"{m.path}: {exc}; move it away to start the batch over") \
                from None
        fields = data.get("fields") if isinstance(data, dict) else None
        if not isinstance(fields, dict) or data.get("version") != VERSION:
            raise BatchError(f"{m.path} is not a version-{VERSION} batch manifest; move it "
                             "away to start the batch over")
        for stem, entry in fields.items():
            if isinstance(entry, dict) and entry.get("status") in STATUSES:
                m.entries[str(stem)] = entry
        return m

    def stems_by_input(self) -> dict[str, str]:
        return {str(e.get("input")): stem for stem, e in self.entries.items()}

    def output_paths(self, stem: str) -> list[Path] | None:
        """The entry's outputs as paths inside the folder; None when one points outside it
        or is not a plain name."""
        entry = self.entries.get(stem) or {}
        names = entry.get("outputs")
        if not isinstance(names, list) or not names:
            return None
        root = self.out.resolve()
        paths = []
        for name in names:
            if not isinstance(name, str):
                return None
            p = (root / name).resolve()
            if p.parent != root:
                return None
            paths.append(p)
        return paths

    def is_current(self, stem: str, input_sha256: str, model_checksum: str) -> bool:
        """Whether ``stem`` is done with these checksums and all its outputs exist."""
        entry = self.entries.get(stem)
        if not entry or entry.get("status") != "done":
            return False
        if entry.get("input_sha256") != input_sha256 or entry.get("model") != model_checksum:
            return False
        paths = self.output_paths(stem)
        return paths is not None and all(p.is_file() for p in paths)

    def record(self, stem: str, entry: dict) -> None:
        """Set ``stem``'s entry and rewrite the file atomically.  With many entries the
        file is rewritten at most every ``SAVE_EVERY_S`` seconds (a crash then costs a few
        redone fields, never a wrong one); :meth:`save` at the end writes the rest."""
        self.entries[stem] = entry
        self._dirty = True
        if len(self.entries) <= SAVE_ALWAYS_UP_TO or \
                time.monotonic() - self._saved_at >= SAVE_EVERY_S:
            self.save()

    def save(self) -> None:
        """Rewrite the file atomically; an OSError (full disk) propagates and leaves the
        previous file whole."""
        from ..io.atomic import write_text_atomic

        if not self._dirty and self.path.exists():
            return
        text = json.dumps({"version": VERSION, "fields": self.entries}, indent=1,
                          default=str)  # key order kept: classes in table order
        write_text_atomic(self.path, text + "\n")
        self._dirty = False
        self._saved_at = time.monotonic()
