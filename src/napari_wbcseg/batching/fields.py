"""The fields of a batch: INPUT arguments (files, folders, globs) -> ordered :class:`Field`.

A field's output stem is its parent folder's name and its file stem joined by ``__``
(``caseA/f1.png`` -> ``caseA__f1``), with more parent folders only where two fields would
otherwise share a stem.  A field already in the manifest keeps the stem it had, so a
rerun with more inputs never renames (and so never redoes) finished fields.
"""
from __future__ import annotations

import glob
import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

from .errors import BatchError

UNASSIGNED = "unassigned"
CASE_FROM_CHOICES = ("folder", "none")
_UNSAFE = re.compile(r"[^A-Za-z0-9._+-]+")
ZARR_SUFFIX = ".zarr"
MAX_FIELDS = 1_000_000  # a bound on what one batch plans; a lab's day is thousands


@dataclass(frozen=True)
class Field:
    path: Path  # resolved input file
    stem: str  # output file prefix, unique within the batch
    case: str  # case id (folder name, regex group, or "unassigned")


def safe_name(text: str) -> str:
    """``text`` usable as a file-name part: runs of other characters become ``_``."""
    name = _UNSAFE.sub("_", str(text)).strip("._") or "_"
    return name[:120]


def expand_inputs(inputs) -> list[Path]:
    """Files of ``inputs`` (files, folders searched recursively, glob patterns), in order,
    each once; only suffixes :func:`~napari_wbcseg.io.imread.is_supported` offers from
    folders and globs.  ``BatchError`` for an input that names nothing."""
    from ..io.imread import is_supported

    if isinstance(inputs, (str, Path)):
        inputs = [inputs]
    found: dict[Path, None] = {}
    for item in inputs:
        text = str(item)
        p = Path(text)
        if p.is_dir() and p.suffix.lower() == ZARR_SUFFIX:
            hits = [p]  # a zarr array is one (large) field
        elif p.is_dir():
            hits = _folder_fields(p, is_supported)
        elif p.is_file():
            hits = [p]  # named explicitly: read_image says if it is not an image
        elif glob.has_magic(text):
            hits = sorted(Path(f) for f in glob.glob(text, recursive=True)
                          if Path(f).is_file() and is_supported(f))
            if not hits:
                raise BatchError(f"{text}: the pattern matches no image file")
        else:
            raise BatchError(f"{text}: no such file or folder")
        for f in hits:
            found.setdefault(f.resolve(), None)
            if len(found) > MAX_FIELDS:
                raise BatchError(f"more than {MAX_FIELDS} fields in one batch; split it")
    if not found:
        raise BatchError("the inputs hold no image file (PNG, JPEG, BMP or TIFF)")
    return list(found)


def _folder_fields(folder: Path, is_supported) -> list[Path]:
    """Image files under ``folder`` (hidden ones left out) and ``.zarr`` folders, whose
    insides are not fields of their own."""
    hits = []
    for root, dirs, files in os.walk(folder):
        dirs.sort()
        base = Path(root)
        for d in [d for d in dirs if d.lower().endswith(ZARR_SUFFIX)]:
            hits.append(base / d)
            dirs.remove(d)
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        hits.extend(base / f for f in files if not f.startswith(".") and is_supported(f))
    return sorted(hits)


def case_rule(case_from: str):
    """A function ``Path -> case id or None`` for ``--case-from`` (folder, none or a regex
    whose group ``case``, or group 1, is the case id); ``BatchError`` for a bad regex."""
    if case_from == "folder":
        return lambda path: safe_name(path.parent.name)
    if case_from == "none":
        return lambda path: UNASSIGNED
    try:
        rx = re.compile(case_from)
    except re.error as exc:
        raise BatchError(f"--case-from {case_from!r} is not a regular expression ({exc})") \
            from None
    if "case" not in rx.groupindex and rx.groups < 1:
        raise BatchError(f"--case-from {case_from!r} has no group: use (?P<case>...) or "
                         "(...) around the case id")
    group = "case" if "case" in rx.groupindex else 1

    def from_stem(path: Path):
        m = rx.search(path.stem)
        return safe_name(m.group(group)) if m and m.group(group) else None
    return from_stem


def plan_fields(inputs, case_from: str = "folder", known_stems: dict | None = None
                ) -> list[Field]:
    """The batch's fields, stems unique.  ``known_stems`` maps an input path (str) to the
    stem a manifest gave it.  A stem the case regex does not match is "unassigned", with
    one warning for all of them."""
    paths = expand_inputs(inputs)
    rule = case_rule(case_from)
    known = {str(k): v for k, v in (known_stems or {}).items()}
    stems = _unique_stems(paths, known)
    fields, unmatched = [], []
    for path in paths:
        case = rule(path)
        if case is None:
            unmatched.append(path.name)
            case = UNASSIGNED
        fields.append(Field(path, stems[path], case))
    if unmatched:
        shown = ", ".join(unmatched[:5]) + (" ..." if len(unmatched) > 5 else "")
        warnings.warn(f"{len(unmatched)} file name(s) do not match --case-from "
                      f"{case_from!r}, counted as case '{UNASSIGNED}': {shown}", stacklevel=2)
    return fields


def _unique_stems(paths: list[Path], known: dict[str, str]) -> dict[Path, str]:
    """Stems from the parent folder and the file stem, with more parents where they clash
    (compared without case, as on macOS and Windows file systems)."""
    stems = {p: known[str(p)] for p in paths if str(p) in known}
    taken = {s.casefold() for s in known.values()}
    todo = [p for p in paths if p not in stems]
    depth = 1
    while todo:
        wanted: dict[str, list[Path]] = {}
        for p in todo:
            wanted.setdefault(_stem(p, depth).casefold(), []).append(p)
        rest = []
        for key, group in wanted.items():
            if len(group) == 1 and key not in taken:
                stems[group[0]] = _stem(group[0], depth)
                taken.add(key)
            else:
                rest.extend(group)
        if rest and depth > max(len(p.parts) for p in rest):  # identical even in full
            for i, p in enumerate(rest):
                stems[p] = f"{_stem(p, depth)}__{i + 1}"
            rest = []
        todo, depth = rest, depth + 1
    return stems


def _stem(path: Path, depth: int) -> str:
    parents = [safe_name(part) for part in path.parent.parts[1:]][-depth:] if depth else []
    return "__".join(parents + [safe_name(path.stem)])
