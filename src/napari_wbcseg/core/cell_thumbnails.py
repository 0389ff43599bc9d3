"""Cell thumbnails for review galleries and reports (numpy / OpenCV only).

A thumbnail is ``(size, size, 3)`` uint8 RGB: the field around one cell, the cell
centred, at a fixed magnification ``scale`` (thumbnail px per image px) chosen by the
caller, so that every cell of a gallery or report is shown at the same scale (see
:func:`thumbnail_scale`).  Parts of the window outside the image are filled with
:data:`PAD_RGB`; the cell's outline is drawn :data:`OUTLINE_PX` px wide in the class
colour.  :func:`cell_boxes` finds every cell's bounding box in one pass, so that a
thousand thumbnails do not rescan the labels a thousand times.
"""
from __future__ import annotations

import cv2
import numpy as np

__all__ = ["OUTLINE_PX", "PAD_RGB", "ThumbnailError", "cell_boxes", "cell_thumbnail",
           "hex_to_rgb", "thumbnail_scale"]

PAD_RGB = (40, 40, 40)  # outside the image: dark, unlike any stained smear
OUTLINE_PX = 2
MIN_SIZE, MAX_SIZE = 8, 1024
#: the typical cell fills this share of the thumbnail side (see :func:`thumbnail_scale`)
CELL_FILL = 0.6


class ThumbnailError(ValueError):
    """Arguments a thumbnail cannot be made from; the message says why in one line."""


def hex_to_rgb(color: str) -> tuple[int, int, int]:
    """``"#9b30ff"`` -> ``(155, 48, 255)`` (the class table's colour format)."""
    text = str(color).lstrip("#")
    if len(text) != 6:
        raise ThumbnailError(f"colour must be #rrggbb, got {color!r}")
    try:
        return tuple(int(text[i:i + 2], 16) for i in (0, 2, 4))  # type: ignore[return-value]
    except ValueError:
        raise ThumbnailError(f"colour must be #rrggbb, got {color!r}") from None


def thumbnail_scale(size: int, *, cell_diameter_px: float | None = None,
                    pixel_size_um: float | None = None, cell_diameter_um: float = 12.0
                    ) -> float:
    """Thumbnail px per image px such that a typical cell fills :data:`CELL_FILL` of
    the side: from the image's typical cell diameter in px, else from its pixel size
    (µm/px, with ``cell_diameter_um`` as the typical cell), else 1.0."""
    if cell_diameter_px is None and pixel_size_um:
        cell_diameter_px = cell_diameter_um / float(pixel_size_um)
    if cell_diameter_px is None or not np.isfinite(cell_diameter_px) or cell_diameter_px <= 0:
        return 1.0
    return CELL_FILL * size / float(cell_diameter_px)


def _cells(nucleus, cytoplasm) -> np.ndarray:
    nucleus, cytoplasm = np.asarray(nucleus), np.asarray(cytoplasm)
    if nucleus.shape != cytoplasm.shape or nucleus.ndim != 2:
        raise ThumbnailError(f"nucleus {nucleus.shape} and cytoplasm {cytoplasm.shape} must "
                             "be 2D label images of one size")
    if not (np.issubdtype(nucleus.dtype, np.integer)
            and np.issubdtype(cytoplasm.dtype, np.integer)):
        raise ThumbnailError(f"labels must be integers, got {nucleus.dtype} and "
                             f"{cytoplasm.dtype}")
    return np.where(nucleus > 0, nucleus, cytoplasm)


def cell_boxes(nucleus, cytoplasm) -> dict[int, tuple[int, int, int, int]]:
    """Cell id -> ``(y0, x0, y1, x1)`` (half-open) over nucleus + cytoplasm, one pass."""
    from scipy.ndimage import find_objects

    cells = _cells(nucleus, cytoplasm)
    present = np.unique(cells)
    present = present[present > 0]
    if not present.size:
        return {}
    if int(present[-1]) <= 4 * present.size + 1024:
        dense = cells.astype(np.int64, copy=False)
        boxes = find_objects(dense)
        return {int(c): _box(boxes[int(c) - 1]) for c in present}
    # sparse huge ids: find_objects allocates one entry per id up to the largest
    dense = np.searchsorted(present, cells) + 1
    dense[cells <= 0] = 0
    boxes = find_objects(dense)
    return {int(c): _box(boxes[i]) for i, c in enumerate(present)}


def _box(slices) -> tuple[int, int, int, int]:
    return (slices[0].start, slices[1].start, slices[0].stop, slices[1].stop)


def _rgb_window(image: np.ndarray, y0: int, x0: int, side: int) -> np.ndarray:
    """``side x side`` window of the image from (y0, x0), padded outside it."""
    H, W = image.shape[:2]
    out = np.empty((side, side, 3), np.uint8)
    out[:] = PAD_RGB
    sy0, sx0, sy1, sx1 = max(0, y0), max(0, x0), min(H, y0 + side), min(W, x0 + side)
    if sy1 > sy0 and sx1 > sx0:
        part = image[sy0:sy1, sx0:sx1]
        if part.ndim == 2:
            part = part[..., None]
        out[sy0 - y0:sy1 - y0, sx0 - x0:sx1 - x0] = part[..., :3]
    return out


def _mask_window(nucleus, cytoplasm, cell_id, y0, x0, side) -> np.ndarray:
    H, W = nucleus.shape
    out = np.zeros((side, side), np.uint8)
    sy0, sx0, sy1, sx1 = max(0, y0), max(0, x0), min(H, y0 + side), min(W, x0 + side)
    if sy1 > sy0 and sx1 > sx0:
        win = np.s_[sy0:sy1, sx0:sx1]
        out[sy0 - y0:sy1 - y0, sx0 - x0:sx1 - x0] = (
            (nucleus[win] == cell_id) | (cytoplasm[win] == cell_id))
    return out


def _check_image(image) -> np.ndarray:
    image = np.asarray(image)
    if image.dtype != np.uint8 or not (image.ndim == 2 or (image.ndim == 3
                                                           and image.shape[2] in (3, 4))):
        raise ThumbnailError(f"the image must be uint8 grayscale, RGB or RGBA, got shape "
                             f"{image.shape} {image.dtype} (convert once with "
                             "core.image.as_rgb_uint8)")
    return image


def cell_thumbnail(image, nucleus, cytoplasm, cell_id: int, *, size: int = 96,
                   scale: float = 1.0, outline=None, bbox=None) -> np.ndarray:
    """``(size, size, 3)`` uint8 thumbnail of cell ``cell_id`` centred, ``scale``
    thumbnail px per image px, outline in ``outline`` (``(r, g, b)`` or ``"#rrggbb"``;
    None: no outline).  ``bbox`` (from :func:`cell_boxes`) saves a scan of the labels.
    A cell larger than the window is cut, never shrunk: the scale stays fixed.
    Raises :class:`ThumbnailError` for bad arguments or an id not in the labels."""
    image = _check_image(image)
    nucleus, cytoplasm = np.asarray(nucleus), np.asarray(cytoplasm)
    if nucleus.shape != image.shape[:2] or cytoplasm.shape != image.shape[:2]:
        raise ThumbnailError(f"labels {nucleus.shape} / {cytoplasm.shape} disagree with the "
                             f"image size {image.shape[:2]}")
    if not (isinstance(size, (int, np.integer)) and MIN_SIZE <= size <= MAX_SIZE):
        raise ThumbnailError(f"size must be an integer in {MIN_SIZE}..{MAX_SIZE}, got {size!r}")
    if not (isinstance(scale, (int, float, np.number)) and np.isfinite(scale) and scale > 0):
        raise ThumbnailError(f"scale must be a positive number, got {scale!r}")
    if bbox is None:
        bbox = cell_boxes(nucleus, cytoplasm).get(int(cell_id))
        if bbox is None:
            raise ThumbnailError(f"cell {cell_id} is not in the labels")
    y0, x0, y1, x1 = (int(v) for v in bbox)
    # the window in image px, an integer side (capped: a tiny scale cannot ask for GBs)
    side = int(min(max(1, round(size / float(scale))), 4 * max(image.shape[:2]) + size))
    wy0 = int(round((y0 + y1) / 2.0 - side / 2.0))
    wx0 = int(round((x0 + x1) / 2.0 - side / 2.0))
    rgb = _rgb_window(image, wy0, wx0, side)
    interp = cv2.INTER_AREA if side > size else cv2.INTER_LINEAR
    thumb = cv2.resize(rgb, (size, size), interpolation=interp)
    if outline is not None:
        colour = hex_to_rgb(outline) if isinstance(outline, str) else tuple(
            int(c) for c in outline[:3])
        mask = _mask_window(nucleus, cytoplasm, int(cell_id), wy0, wx0, side)
        mask = cv2.resize(mask, (size, size), interpolation=cv2.INTER_NEAREST)
        inner = cv2.erode(mask, np.ones((3, 3), np.uint8), iterations=OUTLINE_PX,
                          borderType=cv2.BORDER_CONSTANT, borderValue=0)
        thumb[(mask > 0) & (inner == 0)] = colour
    return thumb
