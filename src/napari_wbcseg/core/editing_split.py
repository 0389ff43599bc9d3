"""Splitting one cell into several: along a drawn line, or by watershed from seeds.

Part of the correction edits of :mod:`.editing` (same ``arrays`` mapping, same
:class:`~.editing.Edit` result, inputs never modified).  The largest part keeps the
cell id, the other parts get new ids ``max id + 1, + 2, ...`` (in raster order of
their first pixel) and the cell's class; nucleus pixels stay nucleus, cytoplasm
pixels stay cytoplasm.
"""
from __future__ import annotations

import cv2
import numpy as np
from scipy import ndimage as ndi
from skimage.segmentation import watershed

from .editing import Edit, _cell, _check_id_fits, _crops, _layers, _make_edit, new_cell_id

MIN_PART_PX = 16  # a piece cut off by a line smaller than this is not a part of its own

__all__ = ["split_cell_by_line", "split_cell_by_seeds", "MIN_PART_PX"]


def _points(points, what: str, least: int) -> np.ndarray:
    try:
        pts = np.asarray(points, float)
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be a sequence of (row, column) points") from None
    if pts.ndim != 2 or pts.shape[1] != 2 or len(pts) < least:
        raise ValueError(f"{what} must be {least} or more (row, column) points, "
                         f"got an array of shape {pts.shape}")
    if not np.isfinite(pts).all():
        raise ValueError(f"{what} must be finite")
    return pts


def _nearest_fill(parts: np.ndarray, cell: np.ndarray) -> np.ndarray:
    """Give every cell pixel without a part the part of the nearest labelled pixel."""
    rest = cell & (parts == 0)
    if rest.any():
        _, (ri, ci) = ndi.distance_transform_edt(parts == 0, return_indices=True)
        parts = parts.copy()
        parts[rest] = parts[ri[rest], ci[rest]]
    return parts


def _relabel(layers, win, cid: int, parts: np.ndarray, m: int, description: str) -> Edit:
    """Edit giving part 1..m of cell ``cid`` (inside ``win``) its cell id."""
    nuc, cyto, _ = layers
    sizes = np.bincount(parts.ravel(), minlength=m + 1)
    sizes[0] = -1
    keep = int(np.argmax(sizes))  # largest part keeps the id
    first = new_cell_id({"nucleus": nuc, "cytoplasm": cyto, "cell_type": layers[2]})
    _check_id_fits(first + m - 2, nuc, cyto)
    lut = np.zeros(m + 1, np.int64)
    others = [k for k in range(1, m + 1) if k != keep]
    lut[others] = np.arange(first, first + len(others))
    lut[keep] = cid
    old, new = _crops(layers, win)
    new_ids = lut[parts]
    for o, n in zip(old[:2], new[:2]):
        here = o == cid
        n[here] = new_ids[here]
    return _make_edit(old, new, win, description)


def split_cell_by_line(arrays, cell_id, line_points, width: int = 1,
                       min_part_px: int = MIN_PART_PX) -> Edit:
    """Cut cell ``cell_id`` along the polyline ``line_points`` ((row, column) points).

    The line (``width`` pixels wide) must cross the cell right through: the parts are
    the 4-connected pieces of the cell left by the cut with at least ``min_part_px``
    pixels, within a piece of the cell the line really divides.  Pixels under the
    line, smaller pieces and pieces the line did not touch go to the nearest part.
    ValueError if the line does not divide the cell into two parts or more.
    """
    layers = _layers(arrays)
    nuc, cyto, _ = layers
    cid, _, win = _cell(nuc, cyto, cell_id)
    pts = _points(line_points, "line_points", 2)
    if isinstance(width, (bool, np.bool_)) or not isinstance(width, (int, np.integer)) \
            or not 1 <= width <= 1000:
        raise ValueError(f"width must be an integer 1..1000, got {width!r}")
    cell = (nuc[win] == cid) | (cyto[win] == cid)
    xy = pts[:, ::-1] - (win[1].start, win[0].start)
    xy = np.clip(np.floor(xy + 0.5), -(2 ** 20), 2 ** 20).astype(np.int32)
    cut = np.zeros(cell.shape, np.uint8)
    cv2.polylines(cut, [xy.reshape(-1, 1, 2)], False, 1, thickness=int(width),
                  lineType=cv2.LINE_8)
    before, _ = ndi.label(cell)
    after, n = ndi.label(cell & (cut == 0))  # an 8-connected line parts 4-connected pieces
    sizes = np.bincount(after.ravel(), minlength=n + 1)
    owner = np.zeros(n + 1, np.int64)
    owner[after.ravel()] = before.ravel()
    big = sizes >= max(int(min_part_px), 1)
    big[0] = False
    per_piece = np.bincount(owner[big], minlength=int(before.max()) + 1)
    is_part = big & (per_piece[owner] >= 2)
    m = int(is_part.sum())
    if m < 2:
        raise ValueError(f"the line does not cut cell {cid} into two parts of "
                         f"{min_part_px}+ pixels; draw it right across the cell")
    lut = np.zeros(n + 1, np.int64)
    lut[is_part] = np.arange(1, m + 1)
    parts = _nearest_fill(lut[after], cell)
    return _relabel(layers, win, cid, parts, m, f"split cell {cid} along a line into {m}")


def split_cell_by_seeds(arrays, cell_id, seeds, compactness: float = 0.0) -> Edit:
    """Split cell ``cell_id`` into one part per seed point ((row, column), 2 or more).

    Marker watershed over the negated Euclidean distance transform of the cell, as
    ``postprocessing.split_touching`` does: with one seed in each lobe (each of two
    touching cells) the cut follows the neck between them.  Seeds in one round blob
    do not split it evenly that way; ``compactness`` > 0 (skimage's compact
    watershed, about 1 gives nearly straight, Voronoi-like cuts) does.  Every seed
    must lie in the cell, on a pixel of its own; pieces of the cell no seed reaches
    go to the nearest part.
    """
    layers = _layers(arrays)
    nuc, cyto, _ = layers
    cid, _, win = _cell(nuc, cyto, cell_id)
    pts = _points(seeds, "seeds", 2)
    if not (np.isfinite(compactness) and compactness >= 0):
        raise ValueError(f"compactness must be >= 0, got {compactness!r}")
    rc = np.floor(pts + 0.5).astype(np.int64)
    inside = ((rc >= 0) & (rc < nuc.shape)).all(axis=1)
    on_cell = np.zeros(len(rc), bool)
    on_cell[inside] = (nuc[rc[inside, 0], rc[inside, 1]] == cid) | \
                      (cyto[rc[inside, 0], rc[inside, 1]] == cid)
    if not on_cell.all():
        raise ValueError(f"seeds {pts[~on_cell].tolist()} are not on cell {cid}")
    if len(np.unique(rc, axis=0)) < len(rc):
        raise ValueError("two seeds fall on the same pixel")
    cell = (nuc[win] == cid) | (cyto[win] == cid)
    padded = np.pad(cell, 1).astype(np.uint8)  # the crop border is a cell border
    dist = cv2.distanceTransform(padded, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)[1:-1, 1:-1]
    markers = np.zeros(cell.shape, np.int32)
    markers[rc[:, 0] - win[0].start, rc[:, 1] - win[1].start] = np.arange(1, len(rc) + 1)
    parts = watershed(-dist, markers, mask=cell, connectivity=1,
                      compactness=float(compactness)).astype(np.int64)
    parts = _nearest_fill(parts, cell)
    m = len(rc)
    return _relabel(layers, win, cid, parts, m, f"split cell {cid} into {m} by seeds")
