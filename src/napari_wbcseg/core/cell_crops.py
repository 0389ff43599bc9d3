"""Cells -> fixed-scale crops for the per-cell classifier (numpy / OpenCV only).

A crop is ``(5, S, S)`` uint8: R, G, B of the field around the cell, then the cell's
own nucleus and cytoplasm masks (255 inside, 0 elsewhere).  Every crop shows the same
physical scale: ``scale`` resamples the field to the networks' native scale (a white
cell about 80 px across), and the crop is ``S`` native pixels wide, centred on the
cell's centre.  Parts of the window outside the field are filled by replicating the
border, and the cell is flagged ``border``.  A cell too large for the window at that
scale is shrunk until it fits (flagged ``shrunk``); a cell under
:data:`MIN_CELL_DIAMETER_NATIVE` native pixels is not cropped (``too_small``).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

__all__ = ["CROP_CHANNELS", "CellCrops", "MIN_CELL_DIAMETER_NATIVE", "cell_crops"]

CROP_CHANNELS = ("red", "green", "blue", "nucleus", "cytoplasm")
#: below this equivalent diameter at the native scale (px) a "cell" is noise, not a cell
MIN_CELL_DIAMETER_NATIVE = 8.0
#: the cell may fill at most this share of the window side before it is shrunk
MAX_FILL = 0.9
MIN_SIZE, MAX_SIZE = 16, 1024  # crop side in px


@dataclass
class CellCrops:
    crops: np.ndarray  # (N, 5, S, S) uint8
    ids: np.ndarray  # (N,) cell ids of the crops, in order
    flags: dict = field(default_factory=dict)  # cell id -> list of "border" / "shrunk"
    skipped: dict = field(default_factory=dict)  # cell id -> reason ("too_small")


def _check(image, nucleus, cytoplasm) -> None:
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"the image must be (H, W, 3) RGB, got shape {image.shape}")
    if nucleus.shape != image.shape[:2] or cytoplasm.shape != image.shape[:2]:
        raise ValueError(f"the masks ({nucleus.shape}, {cytoplasm.shape}) disagree with the "
                         f"image size {image.shape[:2]}")


def cell_crops(image, nucleus, cytoplasm, *, scale: float = 1.0, size: int = 128,
               ids=None) -> CellCrops:
    """Crops of the cells of ``nucleus`` / ``cytoplasm`` (schema label images).

    ``scale``: factor from the field to the native scale (native / actual cell diameter).
    ``ids``: only these cells (default: every id present).  Raises ``ValueError`` for an
    image that is not RGB, masks of another size or a non-positive scale.
    """
    image, nucleus, cytoplasm = np.asarray(image), np.asarray(nucleus), np.asarray(cytoplasm)
    _check(image, nucleus, cytoplasm)
    if not (isinstance(scale, (int, float, np.number)) and np.isfinite(scale) and scale > 0):
        raise ValueError(f"scale must be a positive number, got {scale!r}")
    if not (isinstance(size, (int, np.integer)) and MIN_SIZE <= size <= MAX_SIZE):
        raise ValueError(f"size must be an integer in {MIN_SIZE}..{MAX_SIZE}, got {size!r}")
    if not (np.issubdtype(nucleus.dtype, np.integer) and np.issubdtype(cytoplasm.dtype,
                                                                      np.integer)):
        raise ValueError(f"the masks must be integer label images, got {nucleus.dtype} and "
                         f"{cytoplasm.dtype}")
    if image.dtype != np.uint8:
        raise ValueError(f"the image must be uint8, got {image.dtype}")
    from scipy.ndimage import find_objects

    cells = np.where(nucleus > 0, nucleus, cytoplasm).astype(np.int64)
    present = np.unique(cells[cells > 0])
    if present.size and present[-1] > 4 * present.size + 1024:
        # sparse huge ids: find_objects would allocate one entry per id up to the largest
        lut = np.searchsorted(present, cells)
        cells = np.where(cells > 0, lut + 1, 0)
        nucleus = np.where(nucleus > 0, np.searchsorted(present, nucleus) + 1, 0)
        cytoplasm = np.where(cytoplasm > 0, np.searchsorted(present, cytoplasm) + 1, 0)
        ids_map = {int(v): i + 1 for i, v in enumerate(present)}
        back = dict((i, v) for v, i in ids_map.items())
        wanted_ids = None if ids is None else [ids_map[int(i)] for i in ids if int(i) in ids_map]
        out = cell_crops(image, nucleus, cytoplasm, scale=scale, size=size, ids=wanted_ids)
        out.ids = np.array([back[int(i)] for i in out.ids], np.int64)
        out.flags = {back[k]: v for k, v in out.flags.items()}
        out.skipped = {back[k]: v for k, v in out.skipped.items()}
        return out
    wanted = present if ids is None else np.intersect1d(np.asarray(ids).astype(np.int64), present)
    H, W = cells.shape
    boxes = find_objects(cells) if present.size else []
    out, kept, flags, skipped = [], [], {}, {}
    for cid in wanted:
        cid = int(cid)
        box = boxes[cid - 1]
        rows, cols = np.nonzero(cells[box] == cid)
        rows, cols = rows + box[0].start, cols + box[1].start
        diameter = 2.0 * np.sqrt(rows.size / np.pi) * scale
        if diameter < MIN_CELL_DIAMETER_NATIVE:
            skipped[cid] = "too_small"
            continue
        extent = max(rows.max() - rows.min() + 1, cols.max() - cols.min() + 1) * scale
        s = scale if extent <= MAX_FILL * size else scale * MAX_FILL * size / extent
        notes = [] if s == scale else ["shrunk"]
        half = size / (2.0 * s)  # window half-side in field pixels
        cy, cx = (rows.min() + rows.max() + 1) / 2.0, (cols.min() + cols.max() + 1) / 2.0
        y0, x0 = cy - half, cx - half
        if y0 < 0 or x0 < 0 or cy + half > H or cx + half > W:
            if rows.min() == 0 or cols.min() == 0 or rows.max() == H - 1 or cols.max() == W - 1:
                notes.append("border")
        # only the window's part of the field is touched (a field has many cells)
        ly0, lx0 = max(0, int(np.floor(y0)) - 2), max(0, int(np.floor(x0)) - 2)
        ly1, lx1 = min(H, int(np.ceil(cy + half)) + 2), min(W, int(np.ceil(cx + half)) + 2)
        win = np.s_[ly0:ly1, lx0:lx1]
        # affine map field -> crop: crop = s * (field - (x0, y0)), in window coordinates
        M = np.array([[s, 0, -s * (x0 - lx0)], [0, s, -s * (y0 - ly0)]], np.float64)
        interp = cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR
        rgb = cv2.warpAffine(np.ascontiguousarray(image[win]), M, (size, size), flags=interp,
                             borderMode=cv2.BORDER_REPLICATE)
        masks = np.stack([(nucleus[win] == cid), (cytoplasm[win] == cid)], -1
                         ).astype(np.uint8) * 255
        masks = cv2.warpAffine(masks, M, (size, size), flags=cv2.INTER_LINEAR,
                               borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        out.append(np.concatenate([rgb, masks], -1).transpose(2, 0, 1))
        kept.append(cid)
        if notes:
            flags[cid] = notes
    crops = np.stack(out) if out else np.zeros((0, 5, size, size), np.uint8)
    return CellCrops(np.ascontiguousarray(crops), np.asarray(kept, np.int64), flags, skipped)
