"""Pieces of the headless ``napari-wbcseg demo``: the overlay picture and the cell-type
accuracy against the synthetic smear's ground truth.

Both work per cell id of the nucleus / cytoplasm layers (the schema of DESIGN.md); time
and memory grow with the pixels, never with the size of the ids.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np


def _cells(nucleus: np.ndarray, cytoplasm: np.ndarray):
    """``(id, slices, whole-cell mask in the slices)`` for every cell of the two layers."""
    from scipy import ndimage

    ids = np.where(nucleus > 0, nucleus, cytoplasm)
    if ids.size == 0:
        return
    uniq, dense = np.unique(ids, return_inverse=True)  # 0.. whatever the ids' size
    dense = dense.reshape(ids.shape)
    if uniq[0] == 0:
        cell_ids, labels = uniq[1:], dense
    else:  # no background pixel
        cell_ids, labels = uniq, dense + 1
    for k, box in enumerate(ndimage.find_objects(labels), 1):
        if box is not None:
            yield int(cell_ids[k - 1]), box, labels[box] == k


def _majority(codes: np.ndarray) -> int:
    """The most frequent non-zero code of ``codes`` (0 when there is none)."""
    codes = codes[codes > 0]
    if codes.size == 0:
        return 0
    values, counts = np.unique(codes, return_counts=True)
    return int(values[counts.argmax()])


def cell_type_accuracy(truth, cell_type: np.ndarray) -> tuple[int, int]:
    """``(right, total)`` over the true cells of ``truth`` (a ``SyntheticSmear``): a cell is
    right when the most frequent predicted type over its true pixels is its true type (a
    missed cell, or one left *unidentified*, is wrong)."""
    right = total = 0
    for cell_id, box, mask in _cells(truth.nucleus, truth.cytoplasm):
        total += 1
        right += _majority(cell_type[box][mask]) == int(truth.classes[cell_id])
    return right, total


def _display_rgb(image: np.ndarray) -> np.ndarray:
    """An (H, W, 3) uint8 copy of a grey, RGB or RGBA plane for drawing on."""
    img = np.asarray(image)
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=-1)
    img = img[..., :3]
    if img.dtype != np.uint8:
        top = float(img.max()) if img.size else 0.0
        img = (img.astype(np.float64) * (255.0 / top if top > 0 else 0.0)).round()
        img = img.clip(0, 255).astype(np.uint8)
    return np.ascontiguousarray(img)


def _rgb(hex_color: str) -> tuple[int, int, int]:
    h = hex_color.lstrip("#")
    return int(h[0:2], 16), int(h[2:4], 16), int(h[4:6], 16)


def overlay(image: np.ndarray, nucleus: np.ndarray, cytoplasm: np.ndarray,
            cell_type: np.ndarray) -> np.ndarray:
    """The image with each cell's outline (2 px) in the colour of its cell type (``schema``
    class colours; grey for *unidentified*), its nucleus outline (1 px, white) and the
    type's name above it."""
    import cv2

    from .schema import class_by_code

    classes = class_by_code()
    out = _display_rgb(image)
    for _, box, cell in _cells(nucleus, cytoplasm):
        code = _majority(cell_type[box][cell])
        colour = _rgb(classes[code].color) if code in classes else (160, 160, 160)
        origin = (box[1].start, box[0].start)
        for mask, width, ink in ((cell, 2, colour), (cell & (nucleus[box] > 0), 1, (255,) * 3)):
            contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL,
                                           cv2.CHAIN_APPROX_SIMPLE, offset=origin)
            cv2.drawContours(out, contours, -1, ink, width)
        if code in classes:
            cv2.putText(out, classes[code].name, (origin[0], max(origin[1] - 4, 10)),
                        cv2.FONT_HERSHEY_SIMPLEX, 0.4, colour, 1, cv2.LINE_AA)
    return out


def save_overlay(path: Path, image, result) -> bool:
    """Write ``overlay`` of a segmentation ``result`` as a PNG, atomically.  False (nothing
    written) for a page stack, which has no single picture."""
    import cv2

    from .io.atomic import atomic_path

    if np.asarray(result.nucleus).ndim != 2:
        return False
    picture = overlay(image, result.nucleus, result.cytoplasm, result.cell_type)
    with atomic_path(path, suffix=".png") as tmp:
        if not cv2.imwrite(tmp, cv2.cvtColor(picture, cv2.COLOR_RGB2BGR)):
            raise OSError(f"the PNG encoder failed for {path}")
    return True


__all__ = ["cell_type_accuracy", "overlay", "save_overlay"]
