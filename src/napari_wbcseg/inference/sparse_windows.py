"""Find the cells first, then look closely only there: two passes for tiled images.

White cells cover a few percent of a smear.  An image that needs many windows at the
model's scale is first predicted at 0.7x that scale (cells of ~56 px; at half scale the
network missed a plain neutrophil of a synthetic smear), and then at its own scale only
in boxes around what the coarse pass calls cell (P(cell) >= :data:`CANDIDATE_THRESHOLD`,
grown by :data:`GROW_PX`), each with :data:`CONTEXT_PX` of context that is predicted but
not kept.  Outside the boxes the image is background: there the network saw no cell even
at a low threshold (specks under :data:`MIN_BLOB_PX` are below any cell's size).
:func:`sparse_plan` says whether this pays (at most :data:`MIN_SAVING` of the plain
tiling's network pixels), so an image with cells everywhere is predicted as before.

numpy and OpenCV only; the network is the ``predictor`` callable of
:func:`~.tiling.predict_tiled`.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

COARSE_SCALE = 0.7
CANDIDATE_THRESHOLD = 0.1  # of P(cytoplasm) + P(nucleus) in the coarse pass
GROW_PX = 24  # at the model's scale: a coarse cell's edge may lie this far out
CONTEXT_PX = 64  # predicted around each box, then dropped (the tiles' overlap)
MIN_BLOB_PX = 8  # coarse pixels: smaller specks are noise (a cell there is ~1200)
MIN_WINDOWS = 4  # images predicted in fewer windows are not worth a coarse pass
MIN_SAVING = 0.75  # two passes only when they need at most this share of the network pixels


@dataclass(frozen=True)
class Box:
    """A box to predict (``outer``, with context) and the part of it kept (``inner``)."""

    outer: tuple[slice, slice]
    inner: tuple[slice, slice]

    @property
    def pixels(self) -> int:
        r, c = self.outer
        return (r.stop - r.start) * (c.stop - c.start)


def candidate_boxes(cell_prob: np.ndarray, shape_hw, *, threshold=CANDIDATE_THRESHOLD,
                    grow=GROW_PX, context=CONTEXT_PX, min_area=MIN_BLOB_PX) -> list[Box]:
    """Boxes at full scale (``shape_hw``) around the regions of at least ``min_area``
    pixels where the coarse ``cell_prob`` (any smaller size) reaches ``threshold``."""
    import cv2

    h, w = (int(s) for s in shape_hw)
    ch, cw = cell_prob.shape
    sy, sx = h / ch, w / cw
    mask = (cell_prob >= threshold).astype(np.uint8)
    n, _, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    rects = []
    for x, y, bw, bh, area in stats[1:n]:
        if area < min_area:
            continue
        inner = (max(0, int(y * sy) - grow), max(0, int(x * sx) - grow),
                 min(h, int(np.ceil((y + bh) * sy)) + grow),
                 min(w, int(np.ceil((x + bw) * sx)) + grow))
        rects.append((inner, _outer(inner, context, h, w)))
    return [Box((slice(o[0], o[2]), slice(o[1], o[3])), (slice(i[0], i[2]), slice(i[1], i[3])))
            for i, o in _merge(rects, context, h, w)]


def _outer(inner, context, h, w):
    return (max(0, inner[0] - context), max(0, inner[1] - context),
            min(h, inner[2] + context), min(w, inner[3] + context))


def _area(r) -> int:
    return (r[2] - r[0]) * (r[3] - r[1])


def _merge(rects, context, h, w):
    """Join two boxes while one window over both costs no more pixels than the two
    (neighbouring cells); far-apart cells keep their own small windows.  Where kept parts
    overlap, either window's answer is good: both saw ``context`` pixels around it."""
    rects = list(rects)
    merged = True
    while merged:
        merged = False
        for i in range(len(rects)):
            for j in range(i + 1, len(rects)):
                (a, ao), (b, bo) = rects[i], rects[j]
                inner = (min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3]))
                outer = _outer(inner, context, h, w)
                if _area(outer) <= _area(ao) + _area(bo):
                    rects[i] = (inner, outer)
                    del rects[j]
                    merged = True
                    break
            if merged:
                break
    return rects


def worth_a_coarse_pass(shape_hw, tile: int, overlap: int) -> bool:
    """True for an image that the plain tiling cuts into at least :data:`MIN_WINDOWS`."""
    return tiled_pixels(shape_hw, tile, overlap)[0] >= MIN_WINDOWS


def sparse_plan(coarse_hw, boxes: list[Box], plain_pixels: int) -> bool:
    """True when the coarse pass plus the boxes cost at most ``MIN_SAVING`` of the plain
    tiling's network pixels."""
    cost = coarse_hw[0] * coarse_hw[1] + sum(b.pixels for b in boxes)
    return cost <= MIN_SAVING * plain_pixels


def tiled_pixels(shape_hw, tile: int, overlap: int) -> tuple[int, int]:
    """``(windows, network pixels)`` of the plain tiling of ``shape_hw``."""
    from .tiling import tile_grid

    grid = tile_grid(shape_hw, tile, overlap)
    return len(grid), sum((r.stop - r.start) * (c.stop - c.start) for r, c in grid)


def balanced_tile(shape_hw, tile: int, overlap: int, multiple: int = 32) -> tuple[int, int]:
    """Per axis, the smallest window (a multiple of ``multiple``, at most ``tile``) that
    covers the axis in as many windows as ``tile`` would need: less overlap to compute
    than windows of exactly ``tile``."""
    sides = []
    for size in (int(s) for s in shape_hw[:2]):
        if size <= tile:
            sides.append(-(-size // multiple) * multiple)
            continue
        n = -(-(size - overlap) // (tile - overlap))
        side = -(-(size + (n - 1) * overlap) // n)
        sides.append(min(tile, -(-side // multiple) * multiple))
    return sides[0], sides[1]


def predict_two_pass(work: np.ndarray, predictor, *, tile: int, overlap: int, batch_size: int,
                     pad_multiple: int):
    """Generator (as :func:`~.tiling.predict_tiled`): yields ``TileProgress`` and returns
    ``(probs, boxes)``, or ``(None, boxes)`` when the boxes would not save enough (the
    caller then predicts the plain way)."""
    import cv2

    from .tiling import predict_tiled, window_side

    h, w = work.shape[:2]
    coarse_hw = (max(pad_multiple, round(h * COARSE_SCALE)),
                 max(pad_multiple, round(w * COARSE_SCALE)))
    small = cv2.resize(work, coarse_hw[::-1], interpolation=cv2.INTER_AREA)
    # windows of at most ``tile``: at 1.5x the tile, peak RSS rose by 130 MB
    coarse_tile = balanced_tile(coarse_hw, tile, overlap, pad_multiple)
    coarse = yield from predict_tiled(small, predictor, tile=coarse_tile, overlap=overlap,
                                      batch_size=batch_size, pad_multiple=pad_multiple)
    boxes = candidate_boxes(coarse[1] + coarse[2], (h, w))
    if not sparse_plan(coarse_hw, boxes, tiled_pixels((h, w), tile, overlap)[1]):
        return None, boxes
    channels = coarse.shape[0]
    del coarse  # before the full-size array: the peak memory of the plain path
    probs = np.zeros((channels, h, w), np.float32)
    probs[0] = 1.0  # background, where the coarse pass saw no cell
    probs[3:] = 1.0 / max(channels - 3, 1)
    for box in boxes:
        (r, c), (ir, ic) = box.outer, box.inner
        crop = work[r, c]
        side = window_side(crop.shape[:2], tile, pad_multiple)
        fine = yield from predict_tiled(crop, predictor, tile=side, overlap=overlap,
                                        batch_size=batch_size, pad_multiple=pad_multiple)
        probs[:, ir, ic] = fine[:, ir.start - r.start:ir.stop - r.start,
                                ic.start - c.start:ic.stop - c.start]
    return probs, boxes
