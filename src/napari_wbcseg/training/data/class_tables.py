"""The class table that training targets and the per-cell classifier follow (no torch).

A class table is any sequence of :class:`~napari_wbcseg.schema.CellClass` objects or
``{"code", "name", "color"[, "group"]}`` dicts (a project's, a scheme's, a model card's);
"unidentified" (255) is never a class to learn.  Samples keep the table's *codes* in
``cell_class`` (1..254, 255 unknown); the per-cell classifier's index ``i`` is the
position of a code among the table's codes, so gapped codes (blood-extended's 11, 17,
...) need nothing special: :func:`class_index` and :func:`code_of_index` convert.
The segmentation networks' own heads stay as they are (index = code - 1 of codes
1..K): codes beyond their head are simply not learnt by them.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ...schema import DEFAULT_CLASSES, UNIDENTIFIED

__all__ = ["ClassTableError", "class_index", "code_of_index", "data_class_table",
           "default_table", "keep_table_codes", "table_codes", "table_rows"]

UNKNOWN = UNIDENTIFIED  # the training targets' "type unknown" (255)


class ClassTableError(ValueError):
    """Class tables of the training data that disagree or cannot be used (one line)."""


def table_rows(classes) -> list[dict]:
    """``[{"code", "name", "color"[, "group"]}, ...]`` of ``classes`` without 255, in order
    (what a classifier card lists)."""
    from ...schemes.scheme import as_cell_class

    rows = []
    for c in classes:
        c = as_cell_class(c)
        if c.code == UNIDENTIFIED:
            continue
        row = {"code": int(c.code), "name": c.name, "color": c.color}
        if c.group:
            row["group"] = c.group
        rows.append(row)
    return rows


def default_table() -> list[dict]:
    """The five blood classes (``schema.DEFAULT_CLASSES``) as rows."""
    return table_rows(DEFAULT_CLASSES)


def table_codes(classes) -> tuple[int, ...]:
    """The codes of ``classes`` without 255, in table order (index i <-> ``codes[i]``)."""
    return tuple(r["code"] for r in table_rows(classes))


def class_index(cell_codes, codes: Sequence[int]) -> np.ndarray:
    """int64 array of class indices (position in ``codes``) of ``cell_codes``; -1 for any
    code the table lacks (0, 255, foreign codes)."""
    arr = np.asarray(cell_codes, np.int64)
    lut = np.full(256, -1, np.int64)
    for i, c in enumerate(codes):
        lut[int(c)] = i
    return lut[np.clip(arr, 0, 255)]


def code_of_index(indices, codes: Sequence[int]) -> np.ndarray:
    """uint8 codes of class ``indices``; -1 (and anything out of range) -> 255."""
    idx = np.asarray(indices, np.int64)
    table = np.asarray(list(codes) + [UNIDENTIFIED], np.uint8)
    return table[np.where((idx >= 0) & (idx < len(codes)), idx, len(codes))]


def keep_table_codes(code, cell, codes: Sequence[int] | None = None,
                     num_classes: int | None = None) -> np.ndarray:
    """uint8 ``cell_class`` of a training sample: the code on cell pixels where it is one
    of ``codes`` (None: any code 1..254) and, with ``num_classes``, at most that (a model
    head of K classes); 255 on other cell pixels; 0 off the cells."""
    code = np.asarray(code, np.int64)
    ok = (code >= 1) & (code < UNIDENTIFIED)
    if codes is not None:
        ok &= np.isin(code, np.asarray(list(codes), np.int64))
    if num_classes is not None:
        ok &= code <= int(num_classes)
    cell = np.asarray(cell, bool)
    return np.where(cell, np.where(ok, code, UNKNOWN), 0).astype(np.uint8)


def _tables_of_folders(folders) -> list[tuple[str, list[dict]]]:
    from ...io.project import is_project, read_project

    found = []
    for folder in folders:
        if is_project(folder):
            found.append((str(folder), table_rows(read_project(folder).classes)))
    return found


def data_class_table(folders=(), scheme=None, fallback=None) -> list[dict]:
    """The class table to train on: ``scheme`` (a built-in name, a scheme file or a
    :class:`~napari_wbcseg.schemes.ClassScheme`) when given, else the table of the
    annotation projects among ``folders`` (they must agree), else ``fallback`` (a table;
    default: the five blood classes).

    Raises :class:`ClassTableError` (one line) for projects with different tables, a
    ``scheme`` that does not load, or projects whose table differs from ``scheme``'s.
    """
    from ...schemes import SchemeError, load_scheme

    try:
        projects = _tables_of_folders(folders)
    except (OSError, ValueError) as exc:
        raise ClassTableError(str(exc)) from None
    distinct = {tuple(sorted((r["code"], r["name"]) for r in t)) for _, t in projects}
    if len(distinct) > 1:
        raise ClassTableError("the annotation projects given have different class tables; "
                              "train one classifier per class table")
    if scheme is not None:
        try:
            rows = table_rows(load_scheme(scheme).classes)
        except SchemeError as exc:
            raise ClassTableError(str(exc)) from None
        if distinct and distinct != {tuple(sorted((r["code"], r["name"]) for r in rows))}:
            raise ClassTableError(f"project {projects[0][0]} counts with another class table "
                                  "than the scheme given; leave the scheme out for a "
                                  "project (it brings its own)")
        return rows
    if projects:
        return projects[0][1]
    return [dict(r) for r in fallback] if fallback else default_table()
