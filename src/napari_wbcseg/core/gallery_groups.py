"""What the review gallery shows, without Qt: cells grouped by class, in review order.

Groups: first "needs review" (unidentified cells, cells of a code the class table lacks,
and cells not yet reviewed whose classifier confidence is below the threshold), then one
group per class of the table, in table order.  Each group is sorted by confidence, lowest
first (a cell without a confidence, e.g. one classified by hand, last), then by image and
cell id, so the order is stable.  Every cell is in exactly one group.  :class:`GalleryRows`
flattens the groups into the rows of one list (a header row before each group) and
answers the keyboard's questions: which row is the next cell, where is cell X now.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from ..schema import UNIDENTIFIED, CellClass

__all__ = ["DEFAULT_THRESHOLD", "GalleryCell", "GalleryRows", "Group", "build_groups",
           "class_hotkeys", "merge_classes", "needs_review", "position_keys"]

DEFAULT_THRESHOLD = 0.5  # the Segment dock's "to check" default
NEEDS_REVIEW = "needs review"
MAX_HOTKEYS = 9


@dataclass(frozen=True)
class GalleryCell:
    image: str  # the layer set (image) name
    cell_id: int
    code: int  # class code (255 unidentified)
    confidence: float = math.nan
    touches_border: bool = False
    reviewed: bool = False

    @property
    def key(self) -> tuple[str, int]:
        return (self.image, self.cell_id)


@dataclass
class Group:
    title: str
    code: int | None  # None: the "needs review" group
    color: str
    cells: list[GalleryCell] = field(default_factory=list)


def _finite(x) -> bool:
    try:
        return math.isfinite(float(x))
    except (TypeError, ValueError):
        return False


def needs_review(cell: GalleryCell, known_codes, threshold: float) -> bool:
    if cell.code == UNIDENTIFIED or cell.code not in known_codes:
        return True
    return (not cell.reviewed and _finite(cell.confidence)
            and float(cell.confidence) < threshold)


def _order(cell: GalleryCell):
    conf = float(cell.confidence) if _finite(cell.confidence) else math.inf
    return (conf, cell.image, cell.cell_id)


def build_groups(cells: Iterable[GalleryCell], classes: Sequence[CellClass],
                 threshold: float = DEFAULT_THRESHOLD) -> list[Group]:
    """The gallery's groups (see the module docstring); empty class groups are kept so
    the layout does not jump while cells move between classes."""
    named = [c for c in classes if c.code != UNIDENTIFIED]
    known = {c.code for c in named}
    review = Group(NEEDS_REVIEW, None, "#a0a0a0")
    by_code = {c.code: Group(c.name, c.code, c.color) for c in named}
    for cell in cells:
        if needs_review(cell, known, threshold):
            review.cells.append(cell)
        else:
            by_code[cell.code].cells.append(cell)
    groups = [review] + [by_code[c.code] for c in named]
    for g in groups:
        g.cells.sort(key=_order)
    return groups


def merge_classes(tables: Iterable[Sequence[CellClass]]) -> tuple[CellClass, ...]:
    """One class table over several images: the first table's order, then codes only
    later tables have (a code keeps the first name and colour seen)."""
    seen: dict[int, CellClass] = {}
    for table in tables:
        for c in table:
            seen.setdefault(c.code, c)
    return tuple(seen.values())


def position_keys(classes: Sequence[CellClass]) -> dict[str, int]:
    """"1".."9" -> the classes other than unidentified in table order, "0" unidentified:
    the Correct dock's Ctrl+digit keys."""
    named = [c for c in classes if c.code != UNIDENTIFIED][:MAX_HOTKEYS]
    return {**{str(i + 1): c.code for i, c in enumerate(named)}, "0": UNIDENTIFIED}


def class_hotkeys(classes: Sequence[CellClass]) -> dict[str, int]:
    """Key -> class code for the bare keys.  Each class's own ``hotkey`` first (the
    scheme's: in marrow-icsh "0" is metamyelocyte); a class without one gets its position
    (1-9 among the classes other than unidentified) if no class claims that key.  "u" is
    always unidentified, "0" only where no class claims it."""
    named = [c for c in classes if c.code != UNIDENTIFIED]
    keys: dict[str, int] = {}
    for c in named:
        key = str(getattr(c, "hotkey", "") or "").lower()
        if key:
            keys.setdefault(key, c.code)
    for i, c in enumerate(named[:MAX_HOTKEYS]):
        if not getattr(c, "hotkey", ""):
            keys.setdefault(str(i + 1), c.code)
    keys["u"] = UNIDENTIFIED
    keys.setdefault("0", UNIDENTIFIED)
    return keys


@dataclass(frozen=True)
class Row:
    """One row of the list: a group header (``cell`` None) or a cell."""

    group: int
    cell: GalleryCell | None = None


class GalleryRows:
    """The groups flattened into list rows: ``[header, cells..., header, cells...]``."""

    def __init__(self, groups: list[Group]):
        self.groups = groups
        self.rows: list[Row] = []
        self._row_of: dict[tuple[str, int], int] = {}
        # what is where: a header ("#", group) or a cell's key per row; equal layouts, a
        # view that needs no new layout (only the cells' data changed)
        self.layout: list[tuple] = []
        for gi, g in enumerate(groups):
            self.rows.append(Row(gi))
            self.layout.append(("#", gi))
            for cell in g.cells:
                key = (cell.image, cell.cell_id)
                self._row_of[key] = len(self.rows)
                self.rows.append(Row(gi, cell))
                self.layout.append(key)

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def cells(self) -> list[GalleryCell]:
        return [r.cell for r in self.rows if r.cell is not None]

    def row_of(self, key: tuple[str, int]) -> int | None:
        return self._row_of.get(key)

    def cell_at(self, row: int) -> GalleryCell | None:
        return self.rows[row].cell if 0 <= row < len(self.rows) else None

    def next_cell_row(self, row: int, step: int = 1) -> int | None:
        """The first cell row after (``step`` 1) or before (-1) ``row``, headers skipped."""
        r = row + step
        while 0 <= r < len(self.rows):
            if self.rows[r].cell is not None:
                return r
            r += step
        return None

    def header_text(self, group: int) -> str:
        g = self.groups[group]
        done = sum(c.reviewed for c in g.cells)
        return f"{g.title}: {len(g.cells)} cells, {done} reviewed"

    def reviewed_text(self) -> str:
        cells = self.cells
        return f"{sum(c.reviewed for c in cells)} of {len(cells)} reviewed"
