"""Estimate the typical white-cell (WBC) diameter of a smear image from the image itself.

Two cues, read on a copy whose longest side is at most :data:`WORK_SIDE` px:

* red cells (RBCs), the most numerous objects of a smear, of fairly constant size:
  cells are split from the bright background by Otsu on the green channel (nucleus
  pixels left out), holes (central pallor) filled, and the RBC size is twice the
  median of the per-blob maximum of the distance transform (touching cells keep
  one peak per blob).  Blobs cut by the border or holding nucleus pixels are left
  out; trusted from :data:`MIN_RBC` blobs on; times :data:`RBC_TO_WBC`.
* the WBCs themselves: nucleus pixels (dark in green, bluish), lobes grouped,
  :data:`N_RAYS` rays from the nucleus (recentred on the cell) to where the cell
  mask ends; a low percentile of the ray lengths resists touching RBCs.  Trusted
  where most rays stay in the image and the cell does not run into the cap;
  times :data:`RAY_TO_WBC`.

The result is the geometric mean of the cues found, or None without any (the
caller then keeps the model's native scale).  Where cells look tiny at the
working scale, a central crop is measured again at up to full resolution.
``benchmarks/calibrate_scale.py`` fits the two ratios on half of the real data
and reports the accuracy on both halves.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .image import as_rgb_uint8

WORK_SIDE = 640  # longest side of the working copy
REFINE_BELOW = 24  # px: WBCs smaller than this at the working scale are looked at closer
RBC_TO_WBC = 2.22  # WBC diameter / RBC cue (fitted on half A of the real data)
RAY_TO_WBC = 1.0  # WBC diameter / ray cue (fitted: 0.996)
MIN_RBC = 8  # interior RBC blobs needed to trust the RBC cue
MIN_RBC_RADIUS = 3.0  # px at the working scale
N_RAYS = 48
RAY_PERCENTILE = 35
RAY_CAP = 2.5  # rays end at this many nucleus hull radii
RECENTRE = 2  # times the ray origin moves to the mean of the ray ends
NUC_BLUE = 0.6  # nucleus: optical density green - blue above this ...
NUC_DARK = 0.6  # ... and optical density green above this
MIN_NUCLEUS_PX = 30  # at the working scale
MIN_NUCLEUS_SHARE = 0.15  # of the largest nucleus in the image
PIECE_SHARE = 0.1  # nucleus pieces (lobes) kept: at least this share of the largest
_ANGLES = np.linspace(0, 2 * np.pi, N_RAYS, endpoint=False)
_K3 = np.ones((3, 3), np.uint8)


@dataclass(frozen=True)
class ScaleCues:
    """Raw measurements in pixels of the input image, before the calibrated ratios."""

    rbc_diameter: float | None  # 2 x median max distance of the interior RBC blobs
    n_rbc: int  # interior RBC blobs found
    wbc_diameters: tuple  # 2 x RAY_PERCENTILE of the rays, one per measured WBC
    work_scale: float  # scale at which they were measured


def estimate_cell_diameter(rgb) -> float | None:
    """Typical WBC diameter in pixels of ``rgb``, or None when the image gives no cue.

    ``rgb`` is anything :func:`~.image.as_rgb_uint8` accepts (else ImageFormatError).
    """
    return diameter_from_cues(scale_cues(rgb))


def diameter_from_cues(cues: ScaleCues, rbc_to_wbc: float = RBC_TO_WBC,
                       ray_to_wbc: float = RAY_TO_WBC) -> float | None:
    """Geometric mean of the calibrated cues present; None if there is none."""
    est = []
    if cues.rbc_diameter:
        est.append(rbc_to_wbc * cues.rbc_diameter)
    if cues.wbc_diameters:
        est.append(ray_to_wbc * float(np.median(cues.wbc_diameters)))
    return float(np.exp(np.mean(np.log(est)))) if est else None


def scale_cues(rgb) -> ScaleCues:
    """Measure both cues on ``rgb``, again closer on the centre where cells look tiny."""
    rgb = as_rgb_uint8(rgb, what="image")
    h, w = rgb.shape[:2]
    s = min(1.0, WORK_SIDE / max(h, w))
    cues = _cues(rgb, s)
    d = diameter_from_cues(cues) or 0.0
    if s < 1 and d * s < REFINE_BELOW:
        s2 = min(1.0, 2 * REFINE_BELOW / d) if d else 1.0
        ch, cw = min(h, int(WORK_SIDE / s2)), min(w, int(WORK_SIDE / s2))
        y0, x0 = (h - ch) // 2, (w - cw) // 2
        fine = _cues(rgb[y0:y0 + ch, x0:x0 + cw], s2)
        if fine.rbc_diameter or fine.wbc_diameters:
            cues = fine
    return cues


def _cues(rgb, s):
    h, w = rgb.shape[:2]
    size = (max(8, round(w * s)), max(8, round(h * s)))
    small = rgb
    while small.shape[1] >= 2 * size[0] and small.shape[0] >= 2 * size[1]:
        small = cv2.pyrDown(small)  # much faster than one INTER_AREA resize by a large factor
    if small.shape[:2] != size[::-1]:
        small = cv2.resize(small, size, interpolation=cv2.INTER_AREA)
    small = cv2.GaussianBlur(small, (0, 0), 1.0)
    g, b = small[..., 1], small[..., 2]
    t_all, _ = cv2.threshold(g, 0, 1, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    bright = g > t_all
    if bright.sum() < 0.05 * g.size or int(g.max()) - int(g.min()) < 20:  # flat: no cue
        return ScaleCues(None, 0, (), s)
    bg_g, bg_b = _median_u8(g[bright]), _median_u8(b[bright])
    gf, bf = np.maximum(g.astype(np.float32), 1), np.maximum(b.astype(np.float32), 1)
    nuc = (gf < bg_g * np.exp(-NUC_DARK)) & (bf * bg_g > np.exp(NUC_BLUE) * bg_b * gf)
    nuc = nuc.astype(np.uint8)
    cell = (g <= _otsu(np.bincount(g[nuc == 0], minlength=256))).astype(np.uint8)
    cell = _fill_holes(cv2.morphologyEx(cell, cv2.MORPH_CLOSE, _K3))
    rbc, n_rbc = _rbc_cue(cell, nuc)
    wbc = _wbc_cue(cell | cv2.dilate(nuc, _K3), nuc)
    return ScaleCues(rbc and rbc / s, n_rbc, tuple(d / s for d in wbc), s)


def _rbc_cue(cell, nuc):
    blobs = cv2.morphologyEx(cell, cv2.MORPH_OPEN, _disk(1))
    n, lab, st, _ = cv2.connectedComponentsWithStats(blobs, connectivity=8)
    dt = cv2.distanceTransform(blobs, cv2.DIST_L2, 5)
    top = (dt >= cv2.dilate(dt, _K3)) & (dt > 0)  # holds the maximum of every blob
    peak = np.zeros(n, np.float32)
    np.maximum.at(peak, lab[top], dt[top])
    nuc_px = np.bincount(lab.ravel(), weights=nuc.ravel(), minlength=n)
    x0, y0, bw, bh, area = st.T
    H, W = cell.shape
    ok = (x0 > 0) & (y0 > 0) & (x0 + bw < W) & (y0 + bh < H)  # not cut by the border
    ok &= (peak >= MIN_RBC_RADIUS) & (nuc_px < 0.02 * area)
    ok[0] = False  # background
    n_ok = int(ok.sum())
    return (2.0 * float(np.median(peak[ok])) if n_ok >= MIN_RBC else None), n_ok


def _wbc_cue(region, nuc):
    """2 x RAY_PERCENTILE of the ray lengths of each measurable WBC."""
    n, lab, st, _ = cv2.connectedComponentsWithStats(cv2.morphologyEx(nuc, cv2.MORPH_OPEN,
                                                                      _disk(1)))
    if n < 2:
        return []
    area = st[1:, cv2.CC_STAT_AREA]
    keep = np.isin(lab, np.nonzero(area >= max(4, PIECE_SHARE * area.max()))[0] + 1)
    keep = keep.astype(np.uint8)
    gn, glab = cv2.connectedComponents(  # dilation joins the lobes of one nucleus
        cv2.dilate(keep, _disk(max(1, round(0.35 * np.sqrt(area.max()))))))
    H, W = region.shape
    ys, xs = np.nonzero(keep)
    gl = glab[ys, xs]
    garea = np.bincount(gl, minlength=gn)
    garea[0] = 0
    cut = np.unique(np.concatenate([gl[(ys == 0) | (ys == H - 1)], gl[(xs == 0) | (xs == W - 1)]]))
    if np.delete(garea, cut).max(initial=0) >= MIN_NUCLEUS_PX:
        garea[cut] = 0  # nuclei cut by the border, where whole ones exist
    out = []
    for k in np.argsort(-garea)[:10]:
        if garea[k] < max(MIN_NUCLEUS_PX, MIN_NUCLEUS_SHARE * garea.max()):
            break
        pts = np.stack([xs[gl == k], ys[gl == k]], 1).astype(np.int32)
        hull = cv2.convexHull(pts)
        hull_r = np.sqrt(cv2.contourArea(hull) / np.pi) + 0.5
        if garea[k] < 0.15 * np.pi * hull_r ** 2:  # scattered specks, not a nucleus
            continue
        reg = region.copy()
        cv2.fillConvexPoly(reg, hull, 1)
        cy, cx, rmax = pts[:, 1].mean(), pts[:, 0].mean(), max(RAY_CAP * hull_r, 3.0)
        for _ in range(RECENTRE):  # the nucleus may lie off the cell centre
            length, good = _cast(reg, cy, cx, rmax)
            if good.sum() < 0.6 * N_RAYS:
                break
            r = np.minimum(length, 1.5 * np.median(length[good]))[good]
            ny = cy + np.mean(r * np.sin(_ANGLES[good]))
            nx = cx + np.mean(r * np.cos(_ANGLES[good]))
            if not reg[int(round(ny)), int(round(nx))]:
                break
            cy, cx = ny, nx
        length, good = _cast(reg, cy, cx, rmax)
        if good.sum() >= 0.6 * N_RAYS:
            p = float(np.percentile(length[good], RAY_PERCENTILE))
            if p < 0.9 * rmax:  # else the cell runs into its neighbours
                out.append(2.0 * p)
    return out


def _cast(reg, cy, cx, rmax):
    """Ray lengths to two background pixels in a row (or rmax); rays that stay in the image."""
    H, W = reg.shape
    steps = np.arange(0, rmax)
    yy = np.rint(cy + np.sin(_ANGLES)[:, None] * steps).astype(int)
    xx = np.rint(cx + np.cos(_ANGLES)[:, None] * steps).astype(int)
    inside = (yy >= 0) & (yy < H) & (xx >= 0) & (xx < W)
    on = np.zeros(yy.shape, bool)
    on[inside] = reg[yy[inside], xx[inside]] > 0
    stop = ~on[:, :-1] & ~on[:, 1:] & inside[:, 1:]
    length = np.where(stop.any(1), np.argmax(stop, 1), len(steps)).astype(float)
    left = (~inside).any(1) & (np.argmax(~inside, 1) <= length)
    return length, ~left


def _disk(r):
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * int(r) + 1, 2 * int(r) + 1))


def _fill_holes(mask):
    n, lab = cv2.connectedComponents((mask == 0).astype(np.uint8), connectivity=4)
    outer = np.zeros(n, bool)
    outer[np.concatenate([lab[0], lab[-1], lab[:, 0], lab[:, -1]])] = True
    outer[0] = True  # label 0: the mask itself
    return (mask.astype(bool) | ~outer[lab]).astype(np.uint8)


def _median_u8(values):
    c = np.cumsum(np.bincount(values, minlength=256))
    return float(np.searchsorted(c, c[-1] / 2))


def _otsu(hist):
    """Otsu threshold of a 256-bin histogram: the last level of the dark class."""
    w0, m0 = np.cumsum(hist.astype(np.float64)), np.cumsum(hist * np.arange(256.0))
    with np.errstate(divide="ignore", invalid="ignore"):
        between = (m0[-1] * w0 / w0[-1] - m0) ** 2 / (w0 * (w0[-1] - w0))
    return int(np.argmax(np.where(np.isfinite(between), between, -1)))
