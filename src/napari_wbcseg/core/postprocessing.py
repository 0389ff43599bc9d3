"""Per-pixel network output -> white-cell instances in the label schema.

A segmentation network gives, per pixel, semantic probabilities ``sem_prob``
(3, H, W) for {0 background, 1 cytoplasm, 2 nucleus} and cell-type probabilities
``cls_prob`` (K, H, W).  :func:`instances_from_probabilities` turns them into the
three schema layers (nucleus, cytoplasm, cell type; see ``DESIGN.md``).

Approach
--------
1. Foreground = P(cytoplasm) + P(nucleus) >= ``cell_threshold``; nucleus = pixels
   whose argmax is "nucleus", inside the foreground.
2. Foreground blobs (4-connected) smaller than ``min_cell_area`` or without
   ``min_nucleus_area`` nucleus pixels are dropped at once; every other blob is
   handled alone inside its bounding box (holes filled first when ``fill_holes``).
3. Splitting touching cells (``split_touching``): a marker-based watershed over the
   negated Euclidean distance transform (EDT) of the blob.  Markers are every nucleus
   fragment of at least ``min_nucleus_area`` pixels *and* every EDT h-maximum that is
   not on a nucleus (so a nucleus-free lobe glued to a cell, e.g. a red cell predicted
   as cytoplasm, gets a region of its own).  This over-segments on purpose: the
   regions are then merged greedily, most-connected pair first, while
   ``saddle / min(peak_a, peak_b) >= neck_ratio``, where ``peak`` is a region's
   largest EDT value (its half-thickness) and ``saddle`` the largest EDT value on the
   boundary shared by the two regions (the half-width of the passage between them).
   Lobes of one neutrophil, or a nucleus and the cytoplasm around it, are joined
   through the thick body of the cell (ratio near 1) and become one cell whatever
   the gaps between the lobes; two cells pressed together meet at a narrow neck
   (ratio ~0.3-0.55 for round cells, up to ~0.7 on blurred maps) and stay apart.
   Within-cell ratios measured on synthetic smears were >= ~0.95, hence the default
   ``neck_ratio`` 0.85.  Nucleus fragments are never cut by the watershed.
4. Regions smaller than ``min_cell_area`` and, unless ``require_nucleus=False``,
   regions with fewer than ``min_nucleus_area`` nucleus pixels (a white cell always
   has a nucleus: cytoplasm-only blobs are red cells or artefacts) are removed.
   With ``fill_holes`` the holes of each nucleus are filled too.  Each kept cell gets
   one id, 1..n in raster order of its blob, on its nucleus and on its cytoplasm
   (cell minus nucleus); its class is the argmax of the class probabilities averaged
   over the whole cell, its confidence that average.

Limits
------
* Cells that overlap broadly, with no neck narrower than ``neck_ratio`` times the
  smaller cell's half-thickness, are kept as one cell even if they have two nuclei;
  a strongly elongated or dumbbell-shaped single cell may be cut at its waist and
  lose the nucleus-free part.
* The split line follows the EDT ridge (the neck), not the true membrane, so a few
  pixels near the contact may go to the wrong cell.
* Nucleus fragments smaller than ``min_nucleus_area`` are not markers; they stay
  nucleus pixels of whatever cell the watershed gives them to.
* Only numpy / scipy / scikit-image / OpenCV; work is done per blob inside its
  bounding box, so time grows with the number of foreground blobs, not the image size.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np
from scipy import ndimage as ndi
from skimage.morphology import h_maxima
from skimage.segmentation import watershed

from ..schema import DEFAULT_CLASSES, UNIDENTIFIED

MIN_CELL_AREA_PX = 100  # default, in pixels; see min_area_px() for physical sizes
MIN_NUCLEUS_AREA_PX = 20
MIN_CELL_AREA_UM2 = 20.0  # smallest white-cell fragment worth keeping
MIN_NUCLEUS_AREA_UM2 = 4.0
NECK_RATIO = 0.85
PEAK_H = 1.0  # px: EDT maxima lower than this above their surroundings are not markers

__all__ = ["Instances", "instances_from_probabilities", "min_area_px", "MIN_CELL_AREA_PX",
           "MIN_NUCLEUS_AREA_PX", "MIN_CELL_AREA_UM2", "MIN_NUCLEUS_AREA_UM2", "NECK_RATIO"]


@dataclass
class Instances:
    nucleus: np.ndarray  # uint16 (uint32 past 65535 cells), cell id on its nucleus
    cytoplasm: np.ndarray  # same dtype, cell id on its cytoplasm (cell minus nucleus)
    cell_type: np.ndarray  # uint8, class code on the whole cell
    classes: dict[int, int] = field(default_factory=dict)  # cell id -> class code
    confidence: dict[int, float] = field(default_factory=dict)  # cell id -> mean P(class)

    @property
    def n_cells(self) -> int:
        return len(self.classes)

    @property
    def cells(self) -> np.ndarray:
        """Cell ids on the whole cell area."""
        return np.where(self.nucleus > 0, self.nucleus, self.cytoplasm)


def min_area_px(area_um2: float, pixel_size_um: float) -> int:
    """Pixel count of ``area_um2`` square micrometres at ``pixel_size_um`` um per pixel."""
    if not pixel_size_um > 0:
        raise ValueError(f"pixel_size_um must be positive, got {pixel_size_um!r}")
    return max(1, int(round(float(area_um2) / float(pixel_size_um) ** 2)))


def instances_from_probabilities(sem_prob, cls_prob, *, class_codes=None,
                                 min_cell_area: int = MIN_CELL_AREA_PX,
                                 min_nucleus_area: int = MIN_NUCLEUS_AREA_PX,
                                 fill_holes: bool = True, split_touching: bool = True,
                                 require_nucleus: bool = True, cell_threshold: float = 0.5,
                                 neck_ratio: float = NECK_RATIO) -> Instances:
    """Schema layers from semantic (3, H, W) and class (K, H, W) probability maps.

    ``cls_prob`` may be ``None`` (segmentation-only model): every cell then gets the
    code :data:`~napari_wbcseg.schema.UNIDENTIFIED` and confidence NaN.  ``class_codes``
    gives the code of each of the K class channels (a model card's table; default: the
    codes of :data:`~napari_wbcseg.schema.DEFAULT_CLASSES`, the bundled heads').
    See the module docstring for the
    method; ``neck_ratio`` (0..1) is how narrow, relative to the thinner cell, a
    passage must be to split two cells (lower splits less).
    """
    sem = np.asarray(sem_prob)
    if sem.ndim != 3 or sem.shape[0] != 3:
        raise ValueError(f"sem_prob must have shape (3, H, W), got {sem.shape}")
    H, W = sem.shape[1:]
    if class_codes is None:
        class_codes = [c.code for c in DEFAULT_CLASSES if c.code != UNIDENTIFIED]
    codes = [int(c) for c in class_codes]
    if cls_prob is not None:
        cls_prob = np.asarray(cls_prob)
        if cls_prob.ndim != 3 or cls_prob.shape[1:] != (H, W):
            raise ValueError(f"cls_prob must have shape (K, {H}, {W}), got {cls_prob.shape}")
        if cls_prob.shape[0] != len(codes):
            raise ValueError(f"cls_prob has {cls_prob.shape[0]} channels but class_codes "
                             f"lists {len(codes)} codes (pass the model's class codes)")
    if any(not 0 < c < 256 for c in codes):
        raise ValueError(f"class codes must be 1..255, got {codes}")
    min_cell_area, min_nucleus_area = max(int(min_cell_area), 1), max(int(min_nucleus_area), 1)

    fg = (sem[1] + sem[2]) >= cell_threshold
    nuc = fg & (sem[2] > sem[0]) & (sem[2] > sem[1])  # argmax == 2 (ties go to lower class)
    n, lab, stats, _ = cv2.connectedComponentsWithStats(fg.view(np.uint8), connectivity=4,
                                                        ltype=cv2.CV_32S)
    nuc_count = np.bincount(lab[nuc], minlength=n)
    keep = stats[:, cv2.CC_STAT_AREA] >= min_cell_area
    if require_nucleus:
        keep &= nuc_count >= min_nucleus_area
    keep[0] = False

    cells = []  # (slices, cell mask, nucleus mask), raster order of blobs
    for b in np.flatnonzero(keep):
        x, y, w, h = (int(v) for v in stats[b, :4])
        box = (slice(y, y + h), slice(x, x + w))
        blob = lab[box] == b
        if fill_holes:  # holes only, never other blobs lying inside them
            blob |= ndi.binary_fill_holes(blob) & (lab[box] == 0)
        nb = nuc[box] & blob
        regions = (_split(blob, nb, min_nucleus_area, neck_ratio) if split_touching
                   else blob.astype(np.int32))
        for k in range(1, int(regions.max()) + 1):
            cell = regions == k
            ys, xs = np.nonzero(cell.any(1))[0], np.nonzero(cell.any(0))[0]
            if ys.size == 0:
                continue
            sub = (slice(ys[0], ys[-1] + 1), slice(xs[0], xs[-1] + 1))
            cell, cn = cell[sub], nb[sub] & cell[sub]
            area, narea = int(cell.sum()), int(cn.sum())
            if area < min_cell_area or (require_nucleus and narea < min_nucleus_area):
                continue
            if fill_holes and narea:
                cn = ndi.binary_fill_holes(cn) & cell
            cells.append(((slice(y + sub[0].start, y + sub[0].stop),
                           slice(x + sub[1].start, x + sub[1].stop)), cell, cn))

    dtype = np.uint16 if len(cells) < 65535 else np.uint32
    out_n, out_c = np.zeros((H, W), dtype), np.zeros((H, W), dtype)
    out_t = np.zeros((H, W), np.uint8)
    classes, confidence = {}, {}
    for i, (box, cell, cn) in enumerate(cells, start=1):
        if cls_prob is None:
            code, conf = UNIDENTIFIED, float("nan")
        else:
            mean = cls_prob[(slice(None),) + box][:, cell].mean(axis=1, dtype=np.float64)
            j = int(np.argmax(mean))
            code, conf = codes[j], float(np.clip(mean[j], 0.0, 1.0))
        out_n[box][cn] = i
        out_c[box][cell & ~cn] = i
        out_t[box][cell] = code
        classes[i], confidence[i] = code, conf
    return Instances(out_n, out_c, out_t, classes, confidence)


def _split(blob: np.ndarray, nuc: np.ndarray, min_marker: int, neck_ratio: float) -> np.ndarray:
    """Int32 region labels 1..m of one blob (cropped bool mask), touching cells apart."""
    padded = np.pad(blob, 1).astype(np.uint8)  # the crop border is a cell border
    dist = cv2.distanceTransform(padded, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)[1:-1, 1:-1]
    markers, nm = ndi.label(nuc)
    if nm:
        sizes = np.bincount(markers.ravel(), minlength=nm + 1)
        good = sizes >= min_marker
        good[0] = False
        lut = np.zeros(nm + 1, np.int32)
        lut[good] = np.arange(1, int(good.sum()) + 1)
        markers, nm = lut[markers], int(good.sum())
    peaks, npk = ndi.label(h_maxima(dist, PEAK_H).astype(bool) & blob)
    if npk:
        on_nuc = np.zeros(npk + 1, bool)
        on_nuc[peaks[nuc]] = True
        lut = np.zeros(npk + 1, np.int32)
        free = ~on_nuc
        free[0] = False
        lut[free] = np.arange(nm + 1, nm + 1 + int(free.sum()))
        peaks = lut[peaks]
        markers = np.where(peaks > 0, peaks, markers)
        nm += int(free.sum())
    if nm <= 1:
        return blob.astype(np.int32)
    regions = watershed(-dist, markers, mask=blob, connectivity=1)
    return _merge_without_neck(regions, dist, nm, neck_ratio)


def _merge_without_neck(regions, dist, m, neck_ratio):
    """Greedily merge adjacent regions joined by a passage at least ``neck_ratio`` wide."""
    saddle = np.zeros((m + 1, m + 1))
    for a, b, da, db in ((regions[:, :-1], regions[:, 1:], dist[:, :-1], dist[:, 1:]),
                         (regions[:-1], regions[1:], dist[:-1], dist[1:])):
        edge = (a != b) & (a > 0) & (b > 0)
        if edge.any():
            ea, eb, v = a[edge], b[edge], np.minimum(da[edge], db[edge])
            np.maximum.at(saddle, (ea, eb), v)
            np.maximum.at(saddle, (eb, ea), v)
    peak = np.zeros(m + 1)
    np.maximum.at(peak, regions.ravel(), dist.ravel())
    peak[0] = 0
    root = np.arange(m + 1)
    while True:
        ratio = saddle / np.maximum(np.minimum.outer(peak, peak), 1e-6)
        i, j = np.unravel_index(int(np.argmax(ratio)), ratio.shape)
        if ratio[i, j] < neck_ratio or saddle[i, j] <= 0:
            break
        saddle[i] = saddle[:, i] = np.maximum(saddle[i], saddle[j])
        saddle[i, i] = 0
        saddle[j] = saddle[:, j] = 0
        peak[i], peak[j] = max(peak[i], peak[j]), 0
        root[root == j] = i
    _, lut = np.unique(root, return_inverse=True)  # root[0] == 0 stays label 0
    return lut.astype(np.int32)[regions]
