"""Find the cells first, then look closely only there: two passes for tiled images.

White cells cover a few percent of a smear.  An image that needs many windows at the
model's scale is first predicted at 0.7x that scale (cells of ~56 px; at half scale the
network missed a plain neutrophil of a synthetic smear), and then at its own scale only
in boxes around what the coarse pass calls cell (P(cell) >= :data:`CANDIDATE_THRESHOLD`,
grown by :data:`GROW_PX`), each with :data:`CONTEXT_PX` of context that is predicted but
not kept.  Outside the boxes the image is background: there the network saw no cell even
at a low threshold (specks under :data:`MIN_BLOB_PX` are below any cell's size).
Whether it pays is judged on the network's cost (:func:`network_cost`: each window's padded
pixels plus a fixed :data:`WINDOW_COST_PX`): the coarse pass runs only where it costs at most
:data:`MAX_COARSE_SHARE` of the plain tiling, and the boxes only where they cost less than
the plain tiling (:func:`sparse_plan`; the coarse pass is spent by then), so an image with
cells everywhere is predicted as before.

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
MAX_COARSE_SHARE = 0.6  # of the plain tiling's cost: above it the boxes can hardly win it back
# a window's fixed cost in pixels: the default network (fp32, one AVX2 core) took 25 ms plus
# 0.9 us a pixel for windows of 128-448 px, and a 128 px window 40 ms
WINDOW_COST_PX = 28_000


@dataclass(frozen=True)
class Box:
    """A box to predict (``outer``, with context) and the part of it kept (``inner``)."""

    outer: tuple[slice, slice]
    inner: tuple[slice, slice]

    @property
    def shape(self) -> tuple[int, int]:
        r, c = self.outer
        return r.stop - r.start, c.stop - c.start


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


def worth_a_coarse_pass(shape_hw, tile: int, overlap: int, pad_multiple: int = 32) -> bool:
    """True for an image that the plain tiling cuts into at least :data:`MIN_WINDOWS`, whose
    coarse pass costs at most :data:`MAX_COARSE_SHARE` of the plain tiling."""
    if len(_grid(shape_hw, tile, overlap, pad_multiple)) < MIN_WINDOWS:
        return False
    coarse_hw = _coarse_hw(shape_hw, pad_multiple)
    coarse = network_cost(coarse_hw, balanced_tile(coarse_hw, tile, overlap, pad_multiple),
                          overlap, pad_multiple)
    return coarse <= MAX_COARSE_SHARE * network_cost(shape_hw, tile, overlap, pad_multiple)


def sparse_plan(boxes: list[Box], shape_hw, tile: int, overlap: int,
                pad_multiple: int = 32) -> bool:
    """True when predicting the boxes costs less than predicting every window of
    ``shape_hw`` (the coarse pass is spent either way)."""
    from .tiling import window_side

    cost = sum(network_cost(b.shape, window_side(b.shape, tile, pad_multiple), overlap,
                            pad_multiple) for b in boxes)
    return cost < network_cost(shape_hw, tile, overlap, pad_multiple)


def network_cost(shape_hw, tile, overlap: int, pad_multiple: int = 32) -> int:
    """What :func:`~.tiling.predict_tiled` spends on ``shape_hw`` with windows of ``tile``
    (an int or a pair), in pixels: every window padded as it pads them, plus
    :data:`WINDOW_COST_PX` each."""
    grid = _grid(shape_hw, tile, overlap, pad_multiple)
    (r, c) = grid[0]  # every window has the same shape
    side = max(int(pad_multiple), 1)
    ph, pw = (-(-(s.stop - s.start) // side) * side for s in (r, c))
    return len(grid) * (ph * pw + WINDOW_COST_PX)


def _grid(shape_hw, tile, overlap, pad_multiple):
    from .tiling import tile_grid

    side = max(int(pad_multiple), 1)
    tiles = (tile, tile) if isinstance(tile, (int, np.integer)) else tile
    return tile_grid(shape_hw, tuple(-(-int(t) // side) * side for t in tiles), overlap)


def _coarse_hw(shape_hw, pad_multiple):
    h, w = (int(s) for s in shape_hw[:2])
    return (max(pad_multiple, round(h * COARSE_SCALE)), max(pad_multiple, round(w * COARSE_SCALE)))


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
    coarse_hw = _coarse_hw((h, w), pad_multiple)
    small = cv2.resize(work, coarse_hw[::-1], interpolation=cv2.INTER_AREA)
    # windows of at most ``tile``: at 1.5x the tile, peak RSS rose by 130 MB
    coarse_tile = balanced_tile(coarse_hw, tile, overlap, pad_multiple)
    coarse = yield from predict_tiled(small, predictor, tile=coarse_tile, overlap=overlap,
                                      batch_size=batch_size, pad_multiple=pad_multiple)
    boxes = candidate_boxes(coarse[1] + coarse[2], (h, w))
    if not sparse_plan(boxes, (h, w), tile, overlap, pad_multiple):
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
