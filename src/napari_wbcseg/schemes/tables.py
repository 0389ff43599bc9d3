"""Class tables as projects (and models) store them: JSON rows, and the codes a label
array uses.  Kept here so that :mod:`napari_wbcseg.io.project` stays a file layout."""
from __future__ import annotations

import numpy as np

from ..schema import CellClass
from .builtin import builtin_schemes
from .scheme import ClassScheme, scheme_from_classes

__all__ = ["classes_to_json", "codes_used", "table_scheme", "unknown_codes"]


def classes_to_json(classes) -> list[dict]:
    """``[{"code", "name", "color"[, "group", "hotkey"]}, ...]`` (extras only when set, so
    a 5-part table reads as before)."""
    rows = []
    for c in classes:
        row = {"code": c.code, "name": c.name, "color": c.color}
        row.update({k: getattr(c, k) for k in ("group", "hotkey") if getattr(c, k)})
        rows.append(row)
    return rows


def table_scheme(classes, name: str | None = None, kind: str | None = None) -> ClassScheme:
    """The scheme of a stored class table: the built-in one when the table is a built-in's
    (same codes, names and colours: old projects get its groups and hotkeys back), else a
    validated custom scheme (``name`` or "custom").  Raises :class:`.SchemeError`."""
    rows = tuple(classes)
    for builtin in builtin_schemes().values():
        if name in (None, builtin.name) and _same_table(rows, builtin.classes):
            return builtin
    return scheme_from_classes(rows, name=name or "custom", kind=kind or "blood")


def _same_table(rows: tuple[CellClass, ...], table: tuple[CellClass, ...]) -> bool:
    with_unidentified = rows if rows and rows[-1] == table[-1] else rows + table[-1:]
    return with_unidentified == table


def codes_used(cell_type) -> np.ndarray:
    """Sorted non-zero class codes present in a cell-type array (a count per value for
    8/16-bit arrays, one pass; a sort otherwise)."""
    arr = np.asarray(cell_type)
    if arr.dtype in (np.uint8, np.uint16) and arr.size:
        codes = np.flatnonzero(np.bincount(arr.ravel()))
    else:
        codes = np.unique(arr)
    return codes[codes != 0]


def unknown_codes(cell_type, classes) -> list[int]:
    """Codes in ``cell_type`` (besides 0) that the class table lacks."""
    known = {c.code for c in classes}
    return [int(c) for c in codes_used(cell_type) if int(c) not in known]
