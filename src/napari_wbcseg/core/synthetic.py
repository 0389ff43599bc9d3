"""Synthetic peripheral blood smear with exact ground truth.

Offline sample data, README demo and test fixture: a Wright/Giemsa-like field of
red cells, platelets and white cells whose nucleus / cytoplasm / cell-type labels
follow the schema of :mod:`napari_wbcseg.schema` and match the drawn cells to the
pixel (see :mod:`.synthetic_cells`).  With ``scheme=`` (e.g. ``"marrow-icsh"``) the cells
carry that table's codes and are drawn as their names look (:mod:`.synthetic_marrow`).
Needs only numpy and OpenCV.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import cv2
import numpy as np

from .synthetic_cells import BACKGROUND_RGB, CELL_CODES, cell_density, density, make_cell, noise

RBC_DIAMETER_UM = 7.5
RBC_OD = density((220, 152, 148))  # salmon pink
PLATELET_OD = density((196, 170, 208))
PLATELET_GRANULE_OD = density((128, 78, 156))
WBC_GAP_PX = 4.0  # least free space between white cells when touching=False
EDGE_PX = 3.0  # least distance from a white cell to the image border


@dataclass
class SyntheticSmear:
    image: np.ndarray  # HxWx3 uint8 RGB
    nucleus: np.ndarray  # uint16, cell id on its nucleus
    cytoplasm: np.ndarray  # uint16, cell id on its cytoplasm
    cell_type: np.ndarray  # uint8, class code on the whole cell
    classes: dict  # cell id -> class code
    pixel_size_um: float


def synthetic_smear(shape=(768, 1024), n_wbc: int = 5, seed=0, classes: Sequence[int] | None = None,
                    pixel_size_um: float = 0.2, rbc_density: float = 0.55, touching: bool = False,
                    illumination: float = 0.25, noise: float = 2.0, scheme=None
                    ) -> SyntheticSmear:
    """Draw a stained blood-smear field and its white-cell labels.

    ``classes`` lists class codes (1 neutrophil, 2 lymphocyte, 3 monocyte,
    4 eosinophil, 5 basophil) used in order for cells 1..n_wbc, repeated if shorter;
    by default the five types in turn.  ``touching=True`` puts cells (1, 2), (3, 4), ...
    against each other.  ``rbc_density`` sets the number of red cells as the slide
    fraction their discs would cover if none overlapped (dense values saturate) and
    scales the platelets with them; 0 gives an empty slide.  ``illumination`` is the
    strength of the uneven lighting (vignetting plus a gradient, corners dimmer and
    slightly yellow), ``noise`` the std of the sensor noise in grey levels.  The same
    seed always gives the same smear.  ``scheme`` (a built-in scheme name, a scheme file or
    a :class:`~napari_wbcseg.schemes.ClassScheme`): ``classes`` are codes of its table
    (default: all its classes in turn), each cell drawn as its class's name looks; None
    (default) is the five blood types above.  Raises ValueError for bad arguments, a class
    without a synthetic appearance, or if the cells do not fit.
    """
    looks = None
    if scheme is not None:
        classes, looks = _scheme_looks(scheme, classes)
    H, W, n_wbc, codes = _check_args(shape, n_wbc, classes, pixel_size_um, rbc_density,
                                     illumination, noise, looks)
    rng = np.random.default_rng(seed)
    if looks is None:
        cells = [make_cell(c, pixel_size_um, rng) for c in codes]
    else:
        from .synthetic_marrow import make_look_cell

        cells = [make_look_cell(looks[c], pixel_size_um, rng) for c in codes]
    partners = _place(cells, H, W, touching, rng)
    px = 1.0 / pixel_size_um
    od = np.zeros((H, W, 3), np.float32)
    _draw_red_cells(od, cells, rbc_density, px, rng)
    _draw_platelets(od, rbc_density, px, rng)

    nucleus = np.zeros((H, W), np.uint16)
    cytoplasm = np.zeros((H, W), np.uint16)
    cell_type = np.zeros((H, W), np.uint8)
    for i, cell in enumerate(cells):
        box = _box(cell, H, W)
        yy, xx = _grid(box)
        f = cell.field(yy, xx)
        if partners.get(i) is not None and partners[i] < i:  # pressed against an earlier cell
            f = np.minimum(f, -cells[partners[i]].field(yy, xx) - 1e-3)
        fn = np.minimum(cell.nucleus_field(yy, xx), f - max(1.5, 0.3 * px))
        in_cell, in_nuc = f >= 0, fn >= 0
        if not in_nuc.any() or not (in_cell & ~in_nuc).any():
            raise ValueError(f"pixel size {pixel_size_um} um is too coarse to draw white cells")
        nucleus[box][in_nuc] = i + 1
        cytoplasm[box][in_cell & ~in_nuc] = i + 1
        cell_type[box][in_cell] = codes[i]
        cov = np.clip(f + 0.5, 0.0, 1.0)[..., None]
        od[box] = od[box] * (1 - cov) + cov * _density(cell, f, fn, rng, pixel_size_um)

    image = _expose(od, illumination, noise, px, rng)
    return SyntheticSmear(image, nucleus, cytoplasm, cell_type,
                          {i + 1: int(c) for i, c in enumerate(codes)}, float(pixel_size_um))


def _density(cell, f, fn, rng, um_per_px):
    if not cell.look:
        return cell_density(cell, f, fn, rng, um_per_px)
    from .synthetic_marrow import look_density

    return look_density(cell, f, fn, rng, um_per_px)


def _scheme_looks(scheme, classes):
    """``(codes, {code: class name})`` of the classes of ``scheme`` that ``classes`` asks
    for (default: every class but unidentified); ValueError for a class without a look."""
    from ..schemes import load_scheme
    from .synthetic_marrow import has_look

    try:
        table = load_scheme(scheme)
    except ValueError as exc:
        raise ValueError(str(exc)) from None
    names = {c.code: c.name for c in table.classes if c.code != 255}
    codes = list(names) if classes is None else list(classes)
    for c in codes:
        if c not in names:
            raise ValueError(f"class code {c!r} is not in scheme {table.name!r} "
                             f"(codes {', '.join(map(str, names))})")
        if not has_look(names[c]):
            raise ValueError(f"class {names[c]!r} (code {c}) of scheme {table.name!r} has no "
                             "synthetic appearance")
    return codes, names


def _check_args(shape, n_wbc, classes, pixel_size_um, rbc_density, illumination, noise,
                looks=None):
    try:
        H, W = (int(s) for s in shape)
        exact = all(float(s) == int(s) for s in shape)
    except (TypeError, ValueError):
        exact = False
    if not exact:
        raise ValueError(f"shape must be two integers (height, width), got {shape!r}")
    if H < 32 or W < 32:
        raise ValueError(f"shape must be at least 32x32 pixels, got {H}x{W}")
    if isinstance(n_wbc, bool) or not isinstance(n_wbc, (int, np.integer)) or n_wbc < 0:
        raise ValueError(f"n_wbc must be a non-negative integer, got {n_wbc!r}")
    if not (isinstance(pixel_size_um, (int, float, np.number)) and 0.05 <= pixel_size_um <= 1.0):
        raise ValueError(f"pixel_size_um must be between 0.05 and 1.0 um, got {pixel_size_um!r}")
    for name, v, hi in (("rbc_density", rbc_density, 1.0), ("illumination", illumination, 0.9),
                        ("noise", noise, 255.0)):
        if not (isinstance(v, (int, float, np.number)) and 0.0 <= v <= hi):
            raise ValueError(f"{name} must be between 0 and {hi}, got {v!r}")
    allowed = CELL_CODES if looks is None else tuple(looks)
    base = CELL_CODES if classes is None else [c for c in classes]
    if classes is not None and n_wbc and (not base or any(c not in allowed for c in base)):
        raise ValueError(f"classes must be codes from {allowed}, got {classes!r}")
    codes = [int(base[i % len(base)]) for i in range(n_wbc)]
    return H, W, int(n_wbc), codes


def _place(cells, H, W, touching, rng, tries=4000):
    """Set cell centres; return {index: partner index} for touching pairs."""
    groups = [[i, i + 1] for i in range(0, len(cells) - 1, 2)] if touching else []
    if touching and len(cells) % 2:
        groups.append([len(cells) - 1])
    groups = groups or [[i] for i in range(len(cells))]
    partners, placed = {}, []  # placed: (y, x, rmax)
    big_first = sorted(groups, key=lambda g: -sum(cells[i].rmax ** 2 for i in g))
    for g in big_first:
        a = cells[g[0]]
        lo = a.rmax + EDGE_PX
        cand = rng.uniform((lo, lo), (H - lo, W - lo), (tries, 2)) if H > 2 * lo and W > 2 * lo \
            else np.empty((0, 2))
        pos = [cand]
        if len(g) == 2:
            b = cells[g[1]]
            theta = rng.uniform(-np.pi, np.pi, len(cand))
            press = max(2.0, 0.06 * (a.radius + b.radius))  # overlap, clipped off the second
            d = a.radius_at(theta) + b.radius_at(theta + np.pi) - press
            pos.append(cand + d[:, None] * np.stack([np.sin(theta), np.cos(theta)], 1))
        ok = np.ones(len(cand), bool)
        for p, i in zip(pos, g):
            r = cells[i].rmax
            ok &= (p[:, 0] >= r + EDGE_PX) & (p[:, 0] <= H - 1 - r - EDGE_PX)
            ok &= (p[:, 1] >= r + EDGE_PX) & (p[:, 1] <= W - 1 - r - EDGE_PX)
            for y, x, rr in placed:
                ok &= np.hypot(p[:, 0] - y, p[:, 1] - x) >= r + rr + WBC_GAP_PX
        if not ok.any():
            raise ValueError(f"{len(cells)} white cells do not fit into a {H}x{W} image at "
                             "this pixel size; use a larger shape or fewer cells")
        j = int(np.argmax(ok))
        for p, i in zip(pos, g):
            cells[i].center = (float(p[j, 0]), float(p[j, 1]))
            placed.append((*cells[i].center, cells[i].rmax))
        if len(g) == 2:
            partners[g[0]], partners[g[1]] = g[1], g[0]
    return partners


def _box(cell, H, W, pad=2.0):
    (cy, cx), r = cell.center, cell.rmax + pad
    return (slice(max(int(cy - r), 0), min(int(cy + r) + 2, H)),
            slice(max(int(cx - r), 0), min(int(cx + r) + 2, W)))


def _grid(box):
    yy, xx = np.mgrid[box[0], box[1]]
    return yy.astype(np.float32), xx.astype(np.float32)


def _draw_red_cells(od, cells, rbc_density, px, rng):
    """Biconcave pink discs with central pallor; they may overlap each other a little."""
    H, W = od.shape[:2]
    r0 = RBC_DIAMETER_UM / 2 * px
    n = int(round(rbc_density * H * W / (np.pi * r0 * r0)))
    if n == 0:
        return
    cand = rng.uniform((-r0, -r0), (H + r0, W + r0), (8 * n, 2))
    wbc = np.array([(*c.center, c.rmax) for c in cells]).reshape(-1, 3)
    keep = np.ones(len(cand), bool)
    for y, x, r in wbc:  # red cells may touch a white cell but not hide under it
        keep &= np.hypot(cand[:, 0] - y, cand[:, 1] - x) >= r + 0.6 * r0
    cand = cand[keep]
    # greedy sequential placement on a coarse grid: slight overlaps only
    cs = 2 * r0
    gh, gw = int((H + 2 * r0) / cs) + 2, int((W + 2 * r0) / cs) + 2
    grid = [[[] for _ in range(gw)] for _ in range(gh)]
    centres, min_d = [], rng.uniform(0.72, 0.95, len(cand)) * 2 * r0
    for (y, x), md in zip(cand, min_d):
        gy, gx = int((y + r0) / cs), int((x + r0) / cs)
        near = [p for row in grid[max(gy - 1, 0):gy + 2] for cell in row[max(gx - 1, 0):gx + 2]
                for p in cell]
        if all((y - p[0]) ** 2 + (x - p[1]) ** 2 >= md * md for p in near):
            grid[gy][gx].append((y, x))
            centres.append((y, x))
            if len(centres) == n:
                break
    for y, x in centres:
        r = r0 * rng.uniform(0.9, 1.08)
        ys = slice(max(int(y - r - 2), 0), min(int(y + r + 3), H))
        xs = slice(max(int(x - r - 2), 0), min(int(x + r + 3), W))
        if ys.start >= ys.stop or xs.start >= xs.stop:
            continue
        yy, xx = _grid((ys, xs))
        ang, e = rng.uniform(0, np.pi), rng.uniform(0.86, 1.0)
        u = (xx - x) * np.cos(ang) + (yy - y) * np.sin(ang)
        v = (-(xx - x) * np.sin(ang) + (yy - y) * np.cos(ang)) / e
        rho = np.hypot(u, v) / r
        cov = np.clip((1 - rho) * r + 0.5, 0, 1)
        pallor, pr = rng.uniform(0.4, 0.65), rng.uniform(0.38, 0.55)
        thick = (0.85 + 0.25 * rho**2 - pallor * np.exp(-((rho / pr) ** 4))) * cov
        od[ys, xs] += thick[..., None] * RBC_OD * rng.uniform(0.9, 1.1)


def _draw_platelets(od, rbc_density, px, rng):
    """Small purple granular dots, 2-3 um, alone or in little clumps."""
    H, W = od.shape[:2]
    n = int(round(rbc_density * H * W / (np.pi * (RBC_DIAMETER_UM / 2 * px) ** 2) / 14))
    for _ in range(n):
        y0, x0 = rng.uniform(0, H), rng.uniform(0, W)
        for _ in range(1 if rng.random() < 0.7 else int(rng.integers(2, 5))):
            y, x = y0 + rng.normal(0, 1.5 * px), x0 + rng.normal(0, 1.5 * px)
            r = rng.uniform(0.8, 1.4) * px
            ys = slice(max(int(y - r - 2), 0), min(int(y + r + 3), H))
            xs = slice(max(int(x - r - 2), 0), min(int(x + r + 3), W))
            if ys.start >= ys.stop or xs.start >= xs.stop:
                continue
            yy, xx = _grid((ys, xs))
            th = np.arctan2(yy - y, xx - x)
            ph = rng.uniform(0, 2 * np.pi, 2)
            rr = r * (1 + 0.15 * np.cos(2 * th + ph[0]) + 0.1 * np.cos(3 * th + ph[1]))
            cov = np.clip(rr - np.hypot(yy - y, xx - x) + 0.5, 0, 1)[..., None]
            g = np.clip(0.5 + 0.5 * noise(rng, cov.shape[:2], 0.25 * px), 0, 1)[..., None]
            od[ys, xs] += cov * (PLATELET_OD * (1 - g) + PLATELET_GRANULE_OD * g)


def _expose(od, illumination, noise_std, px, rng):
    """Transmitted light through the stains, uneven lighting, optical blur, sensor noise."""
    H, W = od.shape[:2]
    y = np.linspace(-1, 1, H, dtype=np.float32)[:, None]
    x = np.linspace(-1, 1, W, dtype=np.float32)[None] * np.float32(W / H)
    cy, cx = rng.uniform(-0.3, 0.3, 2)
    r2 = (y - cy) ** 2 + (x - cx) ** 2
    r2 /= r2.max()
    ang = rng.uniform(0, 2 * np.pi)
    ramp = y * np.float32(np.sin(ang)) + x * np.float32(np.cos(ang))
    ramp = (ramp - ramp.min()) / (np.ptp(ramp) + 1e-6)
    light = 1 - np.float32(illumination) * (0.6 * r2 + 0.4 * ramp)
    img = np.exp(-od)
    for c, gamma in enumerate((1.0, 1.12, 1.3)):  # dimmer corners turn slightly yellow
        img[..., c] *= BACKGROUND_RGB[c] * np.clip(light, 0.05, 1) ** np.float32(gamma)
    img = cv2.GaussianBlur(img, (0, 0), max(0.5, 0.14 * px))
    if noise_std > 0:
        img += rng.standard_normal(img.shape, dtype=np.float32) * np.float32(noise_std)
    return np.clip(img + 0.5, 0, 255).astype(np.uint8)
