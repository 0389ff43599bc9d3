"""The cells of overlapping blocks, made one set for the whole field (no Qt, no dask).

Each block is segmented with a margin around its core.  :func:`block_cells` turns a
block's labels into :class:`BlockCell` items (a crop of the cell's masks, its bbox and
table row in field coordinates).  :func:`resolve_cells` keeps each cell once:

1. a cell whose centroid lies in its block's core is kept (the cores tile the field, so
   one block owns it) - unless an already kept cell of another block covers more than
   half of it (the two blocks saw the same cell with its centroid on both sides of the
   core line);
2. a cell seen whole in a block's margin (not touching that block's inner edge) is kept
   only if no kept cell covers more than half of it (both blocks put its centroid on the
   other's side);
3. a cell that touches a block's edge inside the field is cut by the block: dropped when
   outside the core (the neighbour sees it whole), kept but counted in ``cut`` when its
   centroid is in the core (bigger than the margin: widen it).

The survivors get ids 1..n in raster order of their bbox (top, then left).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# share of the smaller cell two cells must share to be the same cell seen twice
SAME_CELL_OVERLAP = 0.5
_GRID = 256  # px: the spatial index of kept cells


@dataclass
class BlockCell:
    y0: int  # bbox in field coordinates, half-open
    x0: int
    y1: int
    x1: int
    cell: np.ndarray  # bool (y1-y0, x1-x0): nucleus or cytoplasm
    nucleus: np.ndarray  # bool, same shape
    code: int
    row: object  # the block table's row (pandas Series), centroid in field coordinates
    in_core: bool
    cut: bool  # touches the block's edge where the block ends inside the field
    block: int

    @property
    def area(self) -> int:
        return int(self.cell.sum())


def block_cells(result, index: int, region, core, field_hw) -> list[BlockCell]:
    """The cells of one block's :class:`~napari_wbcseg.inference.segment.Segmentation`.

    ``region``/``core``: ``(y0, y1, x0, x1)`` in field coordinates; cells cut by the block
    outside its core are left out (the neighbour owning them sees them whole)."""
    from scipy import ndimage as ndi

    ry0, ry1, rx0, rx1 = region
    cy0, cy1, cx0, cx1 = core
    H, W = field_hw
    table = result.table
    if len(table) == 0:
        return []
    cells = np.where(result.nucleus > 0, result.nucleus, result.cytoplasm)
    objs = ndi.find_objects(cells)
    inner = (ry0 > 0, ry1 < H, rx0 > 0, rx1 < W)  # block edges inside the field
    out = []
    for cid, row in table.iterrows():
        slc = objs[int(cid) - 1]
        if slc is None:
            continue
        sy, sx = slc
        cut = ((inner[0] and sy.start == 0) or (inner[1] and sy.stop == cells.shape[0])
               or (inner[2] and sx.start == 0) or (inner[3] and sx.stop == cells.shape[1]))
        gy, gx = float(row["centroid_y"]) + ry0, float(row["centroid_x"]) + rx0
        in_core = cy0 <= gy < cy1 and cx0 <= gx < cx1
        if cut and not in_core:
            continue
        row = row.copy()
        row["centroid_y"], row["centroid_x"] = gy, gx
        mask = cells[slc] == cid
        out.append(BlockCell(sy.start + ry0, sx.start + rx0, sy.stop + ry0, sx.stop + rx0,
                             mask, mask & (result.nucleus[slc] == cid),
                             int(result.cell_type[slc][mask][0]), row, in_core, cut, index))
    return out


def _overlap(a: BlockCell, b: BlockCell) -> int:
    y0, y1 = max(a.y0, b.y0), min(a.y1, b.y1)
    x0, x1 = max(a.x0, b.x0), min(a.x1, b.x1)
    if y0 >= y1 or x0 >= x1:
        return 0
    pa = a.cell[y0 - a.y0:y1 - a.y0, x0 - a.x0:x1 - a.x0]
    pb = b.cell[y0 - b.y0:y1 - b.y0, x0 - b.x0:x1 - b.x0]
    return int(np.count_nonzero(pa & pb))


class _Index:
    """Kept cells by the grid squares their bbox covers."""

    def __init__(self):
        self.grid: dict = {}

    def near(self, c: BlockCell):
        seen = set()
        for gy in range(c.y0 // _GRID, (c.y1 - 1) // _GRID + 1):
            for gx in range(c.x0 // _GRID, (c.x1 - 1) // _GRID + 1):
                for other in self.grid.get((gy, gx), ()):
                    if id(other) not in seen:
                        seen.add(id(other))
                        yield other

    def add(self, c: BlockCell):
        for gy in range(c.y0 // _GRID, (c.y1 - 1) // _GRID + 1):
            for gx in range(c.x0 // _GRID, (c.x1 - 1) // _GRID + 1):
                self.grid.setdefault((gy, gx), []).append(c)


def _seen_already(c: BlockCell, index: _Index) -> bool:
    area = c.area
    for other in index.near(c):
        if other.block != c.block and _overlap(c, other) > SAME_CELL_OVERLAP * min(area, other.area):
            return True
    return False


def resolve_cells(cells: list[BlockCell]) -> tuple[list[BlockCell], dict]:
    """The cells kept once each (see the module docstring), in id order, and counts
    ``{"duplicates": ..., "rescued": ..., "cut": ...}``."""
    index, kept = _Index(), []
    counts = {"duplicates": 0, "rescued": 0, "cut": 0}
    for c in sorted((c for c in cells if c.in_core), key=lambda c: c.block):
        if _seen_already(c, index):
            counts["duplicates"] += 1
            continue
        index.add(c)
        kept.append(c)
        counts["cut"] += int(c.cut)
    for c in sorted((c for c in cells if not c.in_core), key=lambda c: c.block):
        if not _seen_already(c, index):
            index.add(c)
            kept.append(c)
            counts["rescued"] += 1
    kept.sort(key=lambda c: (c.y0, c.x0, c.block))
    return kept, counts


def field_table(kept: list[BlockCell], field_hw, columns):
    """The per-cell table of the kept cells: ids 1..n, ``touches_border`` for the field's
    border (a block's own edges do not count)."""
    import pandas as pd

    H, W = field_hw
    if not kept:
        return None
    # rows of mixed types come back as object Series: restore each column's dtype
    table = pd.DataFrame([c.row for c in kept])[list(columns)].infer_objects()
    table.index = pd.Index(np.arange(1, len(kept) + 1, dtype=np.int64), name="cell_id")
    table["touches_border"] = [bool(c.y0 == 0 or c.x0 == 0 or c.y1 == H or c.x1 == W)
                               for c in kept]
    return table


def paint_tile(kept_in_band, ids, y0, y1, x0, x1, kind: str, dtype) -> np.ndarray:
    """One output tile of the ``kind`` label image ("nucleus", "cytoplasm", "celltype");
    later ids are painted over earlier ones where two cells overlap."""
    tile = np.zeros((y1 - y0, x1 - x0), dtype)
    for c, cid in zip(kept_in_band, ids):
        if c.x1 <= x0 or c.x0 >= x1:
            continue
        ay0, ay1, ax0, ax1 = max(c.y0, y0), min(c.y1, y1), max(c.x0, x0), min(c.x1, x1)
        if ay0 >= ay1 or ax0 >= ax1:
            continue
        cs = (slice(ay0 - c.y0, ay1 - c.y0), slice(ax0 - c.x0, ax1 - c.x0))
        ts = (slice(ay0 - y0, ay1 - y0), slice(ax0 - x0, ax1 - x0))
        cell = c.cell[cs]
        if kind == "celltype":
            value = np.where(cell, c.code, 0)
        else:
            part = c.nucleus[cs] if kind == "nucleus" else cell & ~c.nucleus[cs]
            value = np.where(part, cid, 0)
        tile[ts] = np.where(cell, value.astype(dtype), tile[ts])
    return tile
