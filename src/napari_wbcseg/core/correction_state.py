"""Bookkeeping of hand correction that is not pixels: review state and grouped undo.

Pure Python (no napari, no Qt), used by the correction dock widget.

* :class:`ReviewState`: whether an image is fully reviewed and which cells were
  checked so far; kept as a plain dict in the label layers' metadata
  (:data:`METADATA_KEY`) and written to annotation projects (``io.project``:
  ``reviewed``, ``reviewed_cells``).
* :class:`UndoGroups`: one correction step (delete, merge, a brush stroke plus the
  repair after it, ...) changes up to three label layers, each with its own undo
  history in napari.  The widget records which layers every step touched, in order,
  so that one Ctrl+Z undoes the whole step on every layer it touched.
"""
from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field

METADATA_KEY = "wbcseg_review"

__all__ = ["METADATA_KEY", "ReviewState", "UndoGroups"]


@dataclass
class ReviewState:
    """``reviewed``: every white cell of the image checked; ``cells``: ids checked so far."""

    reviewed: bool = False
    cells: set = field(default_factory=set)

    @classmethod
    def from_dict(cls, d) -> "ReviewState":
        """From metadata (``{"reviewed": bool, "reviewed_cells": [ids] or None}``); lenient."""
        if not isinstance(d, Mapping):
            return cls()
        cells = d.get("reviewed_cells") or ()
        return cls(bool(d.get("reviewed", False)),
                   {int(c) for c in cells if int(c) > 0})

    def to_dict(self, existing: Iterable[int] | None = None) -> dict:
        """Metadata / project form; with ``existing`` ids, cells no longer there are dropped.

        ``reviewed_cells`` is None when no cell is marked (the project's "none tracked").
        """
        cells = self.cells if existing is None else self.cells & {int(i) for i in existing}
        return {"reviewed": bool(self.reviewed),
                "reviewed_cells": sorted(int(c) for c in cells) or None}

    def toggle_cell(self, cell_id: int) -> bool:
        """Mark cell ``cell_id`` checked, or unmark it if it was; returns the new state."""
        cid = int(cell_id)
        if cid <= 0:
            raise ValueError(f"cell id must be positive, got {cid}")
        if cid in self.cells:
            self.cells.discard(cid)
            return False
        self.cells.add(cid)
        return True


class UndoGroups:
    """Ordered groups of layer keys; each group is one correction step.

    Every history item a layer records is reported with :meth:`record`.  Inside
    :meth:`step` the items join one group; outside, each item is a group of its
    own (e.g. a brush stroke), which :meth:`extend_last` can reopen (to add the
    repair that follows the stroke).  :meth:`pop_undo` gives the keys whose last
    history item to undo (latest first), :meth:`pop_redo` those to redo (in the
    original order).  A new item clears the redo groups, as napari clears a
    layer's redo history.
    """

    def __init__(self, limit: int = 100):
        self._undo: deque = deque(maxlen=limit)
        self._redo: deque = deque(maxlen=limit)
        self._open: list | None = None

    def __len__(self) -> int:
        return len(self._undo)

    @property
    def can_redo(self) -> bool:
        return bool(self._redo)

    def record(self, key: str) -> None:
        self._redo.clear()
        if self._open is not None:
            if not self._open:
                self._undo.append(self._open)  # pushed with its first item only
            self._open.append(key)
        else:
            self._undo.append([key])

    @contextmanager
    def step(self):
        """Group every item recorded inside into one step (no step if none is recorded)."""
        if self._open is not None:  # nested: join the outer step
            yield
            return
        self._open = []
        try:
            yield
        finally:
            self._open = None

    @contextmanager
    def extend_last(self):
        """Add the items recorded inside to the last step (a new step if there is none)."""
        if self._open is not None or not self._undo:
            with self.step():
                yield
            return
        self._open = self._undo[-1]
        try:
            yield
        finally:
            self._open = None

    def pop_undo(self) -> list | None:
        if not self._undo:
            return None
        group = self._undo.pop()
        self._redo.append(group)
        return list(reversed(group))

    def pop_redo(self) -> list | None:
        if not self._redo:
            return None
        group = self._redo.pop()
        self._undo.append(group)
        return list(group)

    def clear(self) -> None:
        self._undo.clear()
        self._redo.clear()
