"""The slide-level count: the differential over all fields of a case, towards a target.

Counting follows the docks exactly (:func:`..core.image_counts.image_counts`, whose rules
are :class:`..core.image_counts.CountRules`): a cell cut by the image border is left out
unless ``include_border``, and a cell whose code is not in the class table counts as
unidentified (255).  Percentages are of the counted cells *with a class*: unidentified
cells are not in the denominator (as in CellaVision) and are reported on their own, so
``total`` (the cells that count towards the target) excludes them too.

:func:`count_arrays` measures label arrays; :func:`count_tables` gives the same count from
per-cell tables already made (the gallery's live counts: no cell measured again).
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..core.image_counts import CountRules, image_counts
from ..core.measurements import differential_count
from ..io.project import ProjectError, load_entry, read_project
from ..schema import UNIDENTIFIED
from .case import Case, TARGET_RANGE
from .errors import CaseError


@dataclass
class CaseCount:
    """Counts of one case.  ``counts``: class code -> counted cells, every class of the
    table plus 255 (unidentified) as its own key; ``percent`` and ``absolute``: per class
    with a name (255 left out), of ``total``; ``absolute`` in 10^9/L when the case has a
    WBC count, else None.  ``total``: counted cells with a class; ``cells``: every cell
    of the case (border and unidentified included); ``reviewed``: of those ``cells``."""

    counts: dict[int, int]
    percent: dict[int, float]
    total: int
    unidentified: int
    border_left_out: int
    target: int
    reached: bool
    remaining: int
    reviewed: int
    cells: int
    fields: int
    absolute: dict[int, float] | None = None

    @property
    def counted(self) -> int:
        """Counted cells including the unidentified ones (border cells still left out)."""
        return self.total + self.unidentified

    def progress_text(self) -> str:
        """One line for the gallery: the target's progress and the review's."""
        if self.reached:
            text = f"target reached: {self.total} of {self.target} cells counted"
        else:
            text = (f"{self.total} of {self.target} cells counted "
                    f"({self.remaining} to go)")
        text += f"; {self.reviewed} of {self.cells} reviewed"
        if self.unidentified:
            text += f"; {self.unidentified} unidentified left"
        return text


def _check_target(target) -> None:
    if not isinstance(target, int) or isinstance(target, bool) or not (
            TARGET_RANGE[0] <= target <= TARGET_RANGE[1]):
        raise CaseError(f"target {target!r} is not a whole number in "
                        f"{TARGET_RANGE[0]}..{TARGET_RANGE[1]}")


def count_arrays(fields: Iterable[tuple], classes, target: int, wbc_count: float | None = None,
                 include_border: bool = False) -> CaseCount:
    """The count of a case from in-memory label arrays (the gallery's layers).

    ``fields``: ``(nucleus, cytoplasm, cell_type)`` per image, or with a fourth item,
    the ids of the cells reviewed in that image.  ``classes``: the class table
    (``CellClass`` tuple; any number of classes).
    """
    classes = tuple(classes)
    _check_target(target)
    rules = CountRules(include_border=bool(include_border))
    tables = []
    for item in fields:
        if len(item) not in (3, 4):
            raise CaseError("each field is (nucleus, cytoplasm, cell_type[, reviewed ids])")
        done = item[3] if len(item) == 4 and item[3] is not None else ()
        try:
            counts = image_counts(*item[:3], rules=rules, classes=classes, reviewed_cells=done)
        except ValueError as exc:
            raise CaseError(f"field {len(tables) + 1}: {exc}") from None
        tables.append(counts.table)
    return _case_count(tables, classes, target, wbc_count, rules.include_border)


def count_tables(tables: Iterable, classes, target: int, wbc_count: float | None = None,
                 include_border: bool = False, reviewed: Iterable | None = None) -> CaseCount:
    """:func:`count_arrays` from per-cell tables already made (``cell_table`` /
    ``ImageCounts.table`` of each image: the gallery's live counts), without measuring
    any cell again; the same result on the same fields.

    Each table needs ``class_code`` (``touches_border`` where border cells are left out).
    ``reviewed``: the reviewed cell ids, one iterable per table; None: each table's
    ``reviewed`` column (a table without one has none reviewed).
    """
    classes = tuple(classes)
    _check_target(target)
    tables = list(tables)
    done = list(reviewed) if reviewed is not None else None
    if done is not None and len(done) != len(tables):
        raise CaseError(f"{len(done)} reviewed sets for {len(tables)} tables")
    marked = []
    for i, table in enumerate(tables):
        if not isinstance(table, pd.DataFrame) or "class_code" not in table:
            raise CaseError(f"field {i + 1}: not a cell table (no class_code column)")
        table = table.copy()
        if done is not None:
            table["reviewed"] = table.index.isin(sorted(int(c) for c in (done[i] or ())))
        elif "reviewed" not in table:
            table["reviewed"] = False
        marked.append(table)
    return _case_count(marked, classes, target, wbc_count, bool(include_border))


def _case_count(tables: list, classes: tuple, target: int, wbc_count, include_border: bool
                ) -> CaseCount:
    """The case's count from its fields' tables (each with a ``reviewed`` column)."""
    diff = differential_count(tables, classes, include_border=include_border)
    counts = {int(c.code): 0 for c in classes}
    counts[UNIDENTIFIED] = 0
    counts.update({int(k): int(v) for k, v in diff["count"].items()})
    unidentified = counts[UNIDENTIFIED]
    total = int(diff.attrs["total"]) - unidentified
    named = [k for k in counts if k != UNIDENTIFIED]
    percent = {k: (100.0 * counts[k] / total if total else 0.0) for k in named}
    absolute = (None if wbc_count is None else
                {k: percent[k] / 100.0 * float(wbc_count) for k in named})
    return CaseCount(counts=counts, percent=percent, total=total, unidentified=unidentified,
                     border_left_out=int(diff.attrs["border_left_out"]), target=target,
                     reached=total >= target, remaining=max(0, target - total),
                     reviewed=int(sum(int(t["reviewed"].sum()) for t in tables)),
                     cells=int(sum(len(t) for t in tables)),
                     fields=len(tables), absolute=absolute)


def case_count(project_dir, case: Case, classes=None, *, include_border: bool = False) -> CaseCount:
    """The count of ``case`` from its fields' label files in the project.

    ``classes`` defaults to the project's class table.  A cell counts as reviewed when
    its image is marked reviewed or its id is in the image's ``reviewed_cells``.
    """
    try:
        project = read_project(project_dir)
    except ProjectError as exc:
        raise CaseError(str(exc)) from None
    classes = project.classes if classes is None else classes

    def fields():
        for name in case.images:
            try:
                entry = project.entry(name)
                data = load_entry(project_dir, entry)
            except ProjectError as exc:
                raise CaseError(f"case {case.case_id!r}: {exc}") from None
            yield (data.nucleus, data.cytoplasm, data.cell_type,
                   _reviewed_ids(entry, data.nucleus, data.cytoplasm))

    return count_arrays(fields(), classes, case.target, case.wbc_count, include_border)


def reviewed_cells(project_dir, image: str) -> set[int]:
    """Ids of the cells of ``image`` checked so far (all of them for a reviewed image)."""
    try:
        project = read_project(project_dir)
        entry = project.entry(image)
        if not entry.reviewed:
            return set(entry.reviewed_cells or ())
        data = load_entry(project_dir, entry, check=False)
    except ProjectError as exc:
        raise CaseError(str(exc)) from None
    return _reviewed_ids(entry, data.nucleus, data.cytoplasm)


def _reviewed_ids(entry, nucleus, cytoplasm) -> set[int]:
    if not entry.reviewed:
        return set(entry.reviewed_cells or ())
    ids = np.union1d(np.unique(nucleus), np.unique(cytoplasm))
    return {int(i) for i in ids if i > 0}
