"""Tiled (sliding-window) prediction over a predictor callable; numpy only.

The network never enters this module: :func:`predict_tiled` cuts a
channels-last image into overlapping windows, hands batches of them to a
``predictor`` callable (float32 ``(N, C, th, tw)`` in, float32
``(N, K, th, tw)`` out) and stitches the answers into one ``(K, H, W)``
float32 array, after MONAI's ``sliding_window_inference``.  Which device the
windows run on is the predictor's business; the stitched result is a numpy
array in host memory.

It is a generator function (one generator, two entry points): it yields a
:class:`TileProgress` after every batch and *returns* the result, so scripts
call :func:`run_to_end` and napari's ``thread_worker`` makes it a
``GeneratorWorker``.  Nothing runs, and no argument is checked, before the
first ``next()``.

Cancellation: ``gen.close()`` between two batches (what napari's
``GeneratorWorker.quit()`` does) stops it before the next batch is cut or
predicted; nothing needs cleaning up and the partial output is dropped.

Stitching is a running weighted mean, ``mean += w / (W + w) * (p - mean)``,
kept in float32: memory is ``K*H*W`` for the result plus ``H*W`` for the
summed weights plus one batch of tiles, never a full-image copy per tile.
Where overlapping tiles agree exactly (a pointwise predictor) the result is
bit-for-bit the untiled one.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Generator, Sequence

import numpy as np

from ..core.batch import run_to_end  # re-exported: drive the generator synchronously

__all__ = ["BLEND_MODES", "TileProgress", "auto_tile_size", "halve_tile", "predict_tiled",
           "run_to_end", "tile_grid", "window_side"]

BLEND_MODES = ("gaussian", "linear", "constant")
MIN_TILE = 128
# Floor of the 1-D weight profiles (their 2-D product is >= 1e-30, still a normal
# float32): pixels in the margin at an inner tile edge get a weight far below
# float32 resolution next to any real one, but never zero, so every pixel gets
# a defined value.
_TINY_WEIGHT = 1e-15
_GAUSS_SIGMA = 1.0 / 3.0  # of the ramp length: weight exp(-4.5) ~ 0.011 at its start


@dataclass(frozen=True)
class TileProgress:
    """Tiles predicted so far (``done``) out of ``total``; one event per batch."""

    done: int
    total: int


def _pair(value) -> tuple[int, int]:
    if isinstance(value, (int, np.integer)):
        return int(value), int(value)
    a, b = value
    return int(a), int(b)


def _starts(size: int, tile: int, overlap: int) -> list[int]:
    """Window starts along one axis: evenly spread, first at 0, last flush with the end."""
    if size <= tile:
        return [0]
    n = math.ceil((size - overlap) / (tile - overlap))
    span = size - tile
    # floor(i * span / (n - 1)): consecutive starts differ by at most tile - overlap
    return [(i * span) // (n - 1) for i in range(n)]


def tile_grid(shape_hw: Sequence[int], tile=512, overlap=64) -> list[tuple[slice, slice]]:
    """Windows ``(rows, cols)`` that cover an image of shape ``shape_hw``.

    ``tile`` and ``overlap`` are an int or a ``(rows, cols)`` pair.  Along an
    axis shorter than the tile there is one window, the whole axis.  Otherwise
    there are ``ceil((size - overlap) / (tile - overlap))`` windows of exactly
    ``tile`` pixels, evenly spread, the first at 0 and the last flush with the
    border; neighbours overlap by at least ``overlap`` pixels.  Row-major order.
    """
    h, w = (int(s) for s in shape_hw[:2])
    th, tw = _pair(tile)
    oh, ow = _pair(overlap)
    if h < 1 or w < 1:
        raise ValueError(f"cannot tile an empty image of shape {(h, w)}")
    for t, o in ((th, oh), (tw, ow)):
        if t < 1:
            raise ValueError(f"tile must be at least 1 pixel, got {t}")
        if not 0 <= o < t:
            raise ValueError(f"overlap must be in [0, tile); got overlap={o} for tile={t}")
    rows = [slice(s, min(s + th, h)) for s in _starts(h, th, oh)]
    cols = [slice(s, min(s + tw, w)) for s in _starts(w, tw, ow)]
    return [(r, c) for r in rows for c in cols]


def _round_up(n: int, multiple: int) -> int:
    return -(-n // multiple) * multiple


def auto_tile_size(shape_hw: Sequence[int], max_pixels: int, *, multiple: int = 32,
                   minimum: int = MIN_TILE) -> int:
    """Largest square tile (a multiple of ``multiple``) whose windows hold at most ``max_pixels``.

    Windows are clipped to the image, so a 1536x2048 image with
    ``max_pixels=4_000_000`` gets tile 2048 (one 1536x2048 window).  Never
    returns less than ``minimum`` nor more than the image's longer side
    rounded up to ``multiple``.
    """
    h, w = (int(s) for s in shape_hw[:2])
    if h < 1 or w < 1:
        raise ValueError(f"empty image shape {(h, w)}")
    minimum = _round_up(max(int(minimum), 1), multiple)
    hp, wp = _round_up(h, multiple), _round_up(w, multiple)
    t = max(hp, wp, minimum)
    while t > minimum and min(hp, t) * min(wp, t) > max_pixels:
        t -= multiple
    return t


#: an image whose padded area is at most (WHOLE_WINDOW_GROWTH * tile)^2 is predicted as one
#: window: tiling it would compute up to 2.7x its pixels in the overlaps (a 2048x1536 field
#: at the default scale, 703x527, costs 4 overlapping 512 px tiles = 64 GFLOP, or 23 GFLOP
#: whole; benchmarks/bench_segment.py), for a window only 1.5x the tile's side
WHOLE_WINDOW_GROWTH = 1.5


def window_side(shape_hw: Sequence[int], tile: int, multiple: int = 32) -> int:
    """The tile side to use for an image of ``shape_hw``: ``tile``, or the image's padded
    longer side when the whole image fits one window of at most ``(1.5 * tile)^2`` pixels.

    The evaluators predict whole images too, so a field segmented in one window is
    predicted as the model was scored.
    """
    h, w = (_round_up(max(int(s), 1), max(int(multiple), 1)) for s in shape_hw[:2])
    if max(h, w) <= tile or h * w > (WHOLE_WINDOW_GROWTH * tile) ** 2:
        return int(tile)
    return max(h, w)


def halve_tile(tile: int, minimum: int = MIN_TILE) -> int:
    """Next tile size to try after running out of GPU memory: ``tile // 2``, not below ``minimum``.

    Raises ValueError when ``tile`` is already at the minimum.
    """
    tile = int(tile)
    if tile <= minimum:
        raise ValueError(
            f"out of memory with the smallest tile ({tile} px, minimum {minimum}); "
            "use a smaller model, free GPU memory, or run on the CPU"
        )
    return max(tile // 2, minimum)


def _ramp(n: int, margin: int, blend: str) -> np.ndarray:
    """Weights for the ``n`` pixels nearest an inner tile edge, edge first, rising to 1."""
    d = np.arange(n, dtype=np.float64)
    width = n - 2 * margin
    if width <= 0:  # hard seam in the middle of the overlap
        return np.where(d >= margin, 1.0, 0.0)
    t = np.clip((d - margin + 0.5) / width, 0.0, 1.0)
    if blend == "linear":
        r = t
    elif blend == "gaussian":
        r = np.exp(-0.5 * ((1.0 - t) / _GAUSS_SIGMA) ** 2)
    else:  # constant
        r = np.ones_like(t)
    return np.where(d < margin, 0.0, r)


def _profile(length: int, lead: int, trail: int, margin: int, blend: str) -> np.ndarray:
    """1-D weight along one axis of a window that overlaps its neighbours by ``lead``/``trail``.

    A side on the image border (overlap 0) keeps full weight up to the edge.
    """
    prof = np.ones(length, dtype=np.float64)
    if lead > 0:
        n = min(lead, length)
        prof[:n] = np.minimum(prof[:n], _ramp(lead, margin, blend)[:n])
    if trail > 0:
        n = min(trail, length)
        prof[length - n:] = np.minimum(prof[length - n:], _ramp(trail, margin, blend)[:n][::-1])
    return prof


def _axis_profiles(starts_stops: list[tuple[int, int]], margin: int, blend: str) -> dict:
    """Map each window ``(start, stop)`` along one axis to its float32 weight profile."""
    cache: dict[tuple[int, int, int], np.ndarray] = {}
    out = {}
    for i, (a, b) in enumerate(starts_stops):
        lead = starts_stops[i - 1][1] - a if i > 0 else 0
        trail = b - starts_stops[i + 1][0] if i + 1 < len(starts_stops) else 0
        key = (b - a, max(lead, 0), max(trail, 0))
        if key not in cache:
            prof = _profile(*key, margin, blend)
            cache[key] = np.maximum(prof, _TINY_WEIGHT).astype(np.float32)
        out[(a, b)] = cache[key]
    return out


def _pad_amounts(size: int, multiple: int) -> tuple[int, int]:
    total = _round_up(size, multiple) - size
    return total // 2, total - total // 2


def _pad_window(win: np.ndarray, pad_y: tuple[int, int], pad_x: tuple[int, int], mode: str) -> np.ndarray:
    """np.pad a (C, h, w) window; "reflect" becomes "edge" along an axis too short to reflect."""
    for axis, amount in ((1, pad_y), (2, pad_x)):
        if any(amount):
            widths = [(0, 0)] * 3
            widths[axis] = amount
            short = mode in ("reflect", "symmetric") and win.shape[axis] < 2
            win = np.pad(win, widths, mode="edge" if short else mode)
    return win


def predict_tiled(
    image: np.ndarray,
    predictor: Callable[[np.ndarray], np.ndarray],
    *,
    tile=512,
    overlap=64,
    batch_size: int = 1,
    out_channels: int | None = None,
    blend: str = "gaussian",
    pad_multiple: int = 32,
    pad_mode: str = "reflect",
    margin: int | None = None,
) -> Generator[TileProgress, None, np.ndarray]:
    """Predict ``image`` window by window; yields :class:`TileProgress`, returns ``(K, H, W)`` float32.

    image
        ``(H, W, C)`` (or ``(H, W)``) uint8 or float array, channels last.
        Values are passed on unscaled (cast to float32); normalising is the
        predictor's job.
    predictor
        ``predictor(batch)`` with ``batch`` float32 ``(N, C, th, tw)`` returns
        ``(N, K, th, tw)`` (anything ``np.asarray`` turns into that).  Called
        once per batch of at most ``batch_size`` same-shaped tiles.
    tile, overlap
        Window size and minimum overlap in pixels (int or ``(rows, cols)``);
        see :func:`tile_grid`.  A tile that is not a multiple of
        ``pad_multiple`` is rounded up to one, so the extra pixels are real
        image context rather than padding.
    out_channels
        Expected K; checked against the predictor's answer (inferred if None).
    blend
        How overlapping tiles are weighted: ``"gaussian"`` (smooth ramp) or
        ``"linear"`` ramp over the overlap, rising from an inner tile edge, or
        ``"constant"`` (plain average).  Sides on the image border keep full
        weight; no weight is ever zero.
    pad_multiple, pad_mode
        An image axis shorter than the tile becomes one window, padded
        (``np.pad`` mode, ``"reflect"`` by default, ``"edge"`` where the axis
        is too short to reflect) to the next multiple of ``pad_multiple``
        (networks with five poolings need 32), half on each side; the
        prediction is cropped back.  ``pad_multiple=1`` disables padding.
    margin
        Pixels next to an inner tile edge that get (almost) no weight, because
        the network saw no context beyond them; default ``overlap // 4``, at
        most ``overlap // 2``.  A predictor whose receptive field has radius
        ``r <= margin`` gives the untiled result (up to float rounding) away
        from the padded image border.

    Close the generator (``gen.close()``) between batches to cancel.
    """
    if blend not in BLEND_MODES:
        raise ValueError(f"unknown blend {blend!r}; choose one of: {', '.join(BLEND_MODES)}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    pad_multiple = max(int(pad_multiple or 1), 1)
    image = np.asarray(image)
    if image.ndim == 2:
        image = image[:, :, None]
    if image.ndim != 3:
        raise ValueError(f"expected an (H, W, C) or (H, W) image, got shape {tuple(image.shape)}")
    h, w, c = image.shape
    th, tw = (_round_up(t, pad_multiple) for t in _pair(tile))
    oh, ow = _pair(overlap)
    if margin is None:
        mh, mw = oh // 4, ow // 4
    else:
        mh = mw = int(margin)
        if mh < 0 or mh > min(oh, ow) // 2:
            raise ValueError(f"margin must be in [0, overlap // 2], got {margin} for overlap {overlap}")

    grid = tile_grid((h, w), (th, tw), (oh, ow))
    total = len(grid)
    rows = sorted({(r.start, r.stop) for r, _ in grid})
    cols = sorted({(s.start, s.stop) for _, s in grid})
    wrow = _axis_profiles(rows, mh, blend)
    wcol = _axis_profiles(cols, mw, blend)

    # every window has the same shape: an axis is either tiled at (th, tw) or taken whole
    win_h, win_w = grid[0][0].stop - grid[0][0].start, grid[0][1].stop - grid[0][1].start
    pad_y, pad_x = _pad_amounts(win_h, pad_multiple), _pad_amounts(win_w, pad_multiple)
    ph, pw = win_h + sum(pad_y), win_w + sum(pad_x)

    out = None
    wsum = np.zeros((h, w), dtype=np.float32)
    done = 0
    for b0 in range(0, total, batch_size):
        chunk = grid[b0:b0 + batch_size]
        batch = np.empty((len(chunk), c, ph, pw), dtype=np.float32)
        for i, (r, s) in enumerate(chunk):
            win = image[r, s].transpose(2, 0, 1)  # view, (C, h, w)
            if ph == win_h and pw == win_w:
                batch[i] = win  # casts to float32 in place
            else:
                batch[i] = _pad_window(win.astype(np.float32), pad_y, pad_x, pad_mode)
        pred = np.asarray(predictor(batch), dtype=np.float32)
        del batch
        if pred.ndim != 4 or pred.shape[0] != len(chunk) or pred.shape[2:] != (ph, pw):
            raise ValueError(
                f"predictor returned shape {tuple(pred.shape)} for a batch of shape "
                f"{(len(chunk), c, ph, pw)}; expected ({len(chunk)}, K, {ph}, {pw})"
            )
        if out is None:
            k = pred.shape[1]
            if out_channels is not None and k != out_channels:
                raise ValueError(f"predictor returned {k} channels, expected out_channels={out_channels}")
            out = np.zeros((k, h, w), dtype=np.float32)
        elif pred.shape[1] != out.shape[0]:
            raise ValueError(f"predictor returned {pred.shape[1]} channels, earlier batches {out.shape[0]}")
        for i, (r, s) in enumerate(chunk):
            p = pred[i, :, pad_y[0]:pad_y[0] + win_h, pad_x[0]:pad_x[0] + win_w]
            wt = np.multiply.outer(wrow[(r.start, r.stop)], wcol[(s.start, s.stop)])  # float32
            wview = wsum[r, s]
            wview += wt
            frac = wt / wview  # 1 for the first tile on a pixel
            mview = out[:, r, s]
            diff = p - mview
            diff *= frac
            mview += diff
        del pred
        done += len(chunk)
        yield TileProgress(done, total)
    return out
