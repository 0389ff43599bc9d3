"""One training sample, its label codes and the scale convention (numpy / OpenCV only).

Label codes of :class:`Sample`:

``semantic`` (uint8)
    0 background, 1 cytoplasm, 2 nucleus, 3 cell of unknown part (whole-cell masks
    such as BCISC's: the pixel is in a white cell, but nucleus or cytoplasm is not
    known), 255 fully unknown (ignored by every loss term).
``cell_class`` (uint8)
    0 background, class code 1..K on cell pixels (1 neutrophil, 2 lymphocyte,
    3 monocyte, 4 eosinophil, 5 basophil), 255 unknown (a cell whose class is not
    known, or a pixel that may or may not be a cell).

Scale: the networks work at a *native scale* where a white cell is about
:data:`NATIVE_CELL_DIAMETER` pixels across.  ``Sample.scale`` is the factor by which
the sample must be resampled to reach it (Dataset 2 of segmentation_WBC: ~0.5).
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import cv2
import numpy as np

# semantic codes
BACKGROUND = 0
CYTOPLASM = 1
NUCLEUS = 2
CELL = 3  # inside a cell, nucleus or cytoplasm not known
IGNORE = 255  # fully unknown
SEMANTIC_CODES = (BACKGROUND, CYTOPLASM, NUCLEUS, CELL, IGNORE)
UNKNOWN_CLASS = 255

NATIVE_CELL_DIAMETER = 80.0
#: median equivalent diameter (px) of the white-cell masks, measured on the staged data
MEDIAN_CELL_DIAMETER = {
    "segmentation_WBC-1": 75.0,
    "segmentation_WBC-2": 157.0,
    "BCISC-sub": 120.0,
    "BCISC-field": 234.0,
}
#: median white-cell diameter of core.synthetic.synthetic_smear, in micrometres
#: (56 px at its default 0.2 um per pixel)
SYNTHETIC_CELL_DIAMETER_UM = 11.2
#: factor that resamples each source to the native scale
DEFAULT_SCALE = {name: NATIVE_CELL_DIAMETER / d for name, d in MEDIAN_CELL_DIAMETER.items()}
DEFAULT_SCALE["synthetic"] = NATIVE_CELL_DIAMETER / (SYNTHETIC_CELL_DIAMETER_UM / 0.2)


def synthetic_scale(pixel_size_um: float) -> float:
    """Native-scale factor of a synthetic smear drawn at ``pixel_size_um``."""
    return NATIVE_CELL_DIAMETER * float(pixel_size_um) / SYNTHETIC_CELL_DIAMETER_UM


@dataclass
class Sample:
    """An image with its training targets (see the module docstring for the codes).

    ``group`` keys leakage-free splits: samples that may show the same cell share it.
    ``complete`` is False where white cells in the image may be unlabelled (their
    pixels would then be wrongly called background); ``image_class`` is the class the
    source gives the whole image (CSV row, folder name; 0 none, 255 unknown), used to
    stratify splits; it may disagree with ``cell_class`` where the loader found the
    image-level label does not apply to a cell.
    """

    image: np.ndarray
    semantic: np.ndarray
    cell_class: np.ndarray
    source: str
    group: str
    name: str
    scale: float = 1.0
    complete: bool = True
    image_class: int = 0
    meta: dict = field(default_factory=dict)

    def __post_init__(self):
        img = np.asarray(self.image)
        if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
            raise ValueError(f"{self.name}: image must be HxWx3 uint8, got {img.shape} {img.dtype}")
        for what in ("semantic", "cell_class"):
            lab = np.asarray(getattr(self, what))
            if lab.shape != img.shape[:2] or lab.dtype != np.uint8:
                raise ValueError(f"{self.name}: {what} must be uint8 of shape {img.shape[:2]}, "
                                 f"got {lab.shape} {lab.dtype}")
        if not (np.isfinite(self.scale) and self.scale > 0):
            raise ValueError(f"{self.name}: scale must be a positive number, got {self.scale!r}")

    @property
    def shape(self) -> tuple[int, int]:
        return tuple(self.image.shape[:2])

    def with_arrays(self, image, semantic, cell_class, **changes) -> "Sample":
        """A copy with new arrays (and any other field changed), meta copied."""
        return replace(self, image=image, semantic=semantic, cell_class=cell_class,
                       meta=dict(self.meta), **changes)

    def cell_mask(self) -> np.ndarray:
        """Pixels known to be inside a white cell."""
        return (self.semantic >= CYTOPLASM) & (self.semantic <= CELL)


def find_folder(root, name: str) -> Path:
    """``root/name`` if it exists, else ``root`` itself (accept the data root or the folder)."""
    root = Path(root)
    sub = root / name
    if sub.is_dir():
        return sub
    if root.name == name and root.is_dir():
        return root
    raise FileNotFoundError(f"no {name!r} folder under {root}")


def mark_unlabelled_cells(image: np.ndarray, cell: np.ndarray, *, work_scale: float = 1.0,
                          threshold: float = 0.75, min_area: float = 0.15,
                          margin: float = 0.7) -> np.ndarray:
    """Pixels outside ``cell`` that probably belong to an unlabelled white cell.

    A colour heuristic calibrated on the image itself: the darkest 35 % (CIE L) of the
    labelled cell pixels stand for stained nucleus, the median of the rest of the image
    for background; pixels whose colour lies more than ``threshold`` of the way from
    background to nucleus form candidates, which are opened (removing platelets and thin
    debris), kept if at least ``min_area`` times the reference nucleus area, and dilated
    by ``margin`` times the labelled cell's radius.  Returns an HxW bool array (never
    inside ``cell``).  It errs on the safe side: dark red-cell clumps and debris are
    often flagged too, which only costs ignored background pixels.  ``work_scale``
    < 1 runs it on a downsampled copy (whole fields).
    """
    cell = np.asarray(cell, bool)
    out = np.zeros(cell.shape, bool)
    if cell.sum() < 50 or (~cell).sum() < 50:
        return out
    H, W = cell.shape
    img, ref = image, cell
    if work_scale < 1.0:
        size = (max(int(round(W * work_scale)), 8), max(int(round(H * work_scale)), 8))
        img = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
        ref = cv2.resize(cell.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST) > 0
        if ref.sum() < 20:
            return out
    lab = cv2.cvtColor(np.ascontiguousarray(img), cv2.COLOR_RGB2LAB).astype(np.float32)
    light = lab[..., 0]
    nuc = ref & (light <= np.percentile(light[ref], 35))
    bg_px = lab[~ref]
    mu_n = lab[nuc].mean(0)
    mu_b = np.median(bg_px[:: max(1, len(bg_px) // 20000)], 0)
    d = mu_n - mu_b
    if float(d @ d) < 25.0:  # the cell is not distinguishable from background by colour
        return out
    t = ((lab - mu_b) @ d) / float(d @ d)
    cand = ((t > threshold) & ~ref).astype(np.uint8)
    nuc_area = float(nuc.sum())
    k = max(3, int(np.sqrt(nuc_area) * 0.08)) | 1
    disk = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k))
    cand = cv2.morphologyEx(cand, cv2.MORPH_OPEN, disk)
    n, cc, stats, _ = cv2.connectedComponentsWithStats(cand, connectivity=8)
    keep = np.zeros(n, bool)
    keep[1:] = stats[1:, cv2.CC_STAT_AREA] >= min_area * nuc_area
    sus = keep[cc]
    if not sus.any():
        return out
    r = max(1, int(round(margin * np.sqrt(ref.sum() / np.pi))))
    disk = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))
    sus = cv2.dilate(sus.astype(np.uint8), disk)
    if sus.shape != (H, W):
        sus = cv2.resize(sus, (W, H), interpolation=cv2.INTER_NEAREST)
    return (sus > 0) & ~cell


def ignore_unlabelled(semantic: np.ndarray, cell_class: np.ndarray, image: np.ndarray,
                      **kwargs) -> int:
    """Set pixels flagged by :func:`mark_unlabelled_cells` to IGNORE in both label maps.

    Works in place; returns the number of pixels changed.
    """
    cell = (semantic >= CYTOPLASM) & (semantic <= CELL)
    sus = mark_unlabelled_cells(image, cell, **kwargs) & (semantic == BACKGROUND)
    semantic[sus] = IGNORE
    cell_class[sus] = UNKNOWN_CLASS
    return int(sus.sum())
