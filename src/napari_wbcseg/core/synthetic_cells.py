"""Shapes, textures and stains of the five white-cell types of :mod:`.synthetic`.

Every outline is a *field*: a function of pixel coordinates that is roughly the
signed distance (in pixels) to the outline, positive inside.  The ground truth is
``field >= 0``; the drawn coverage is ``clip(field + 0.5, 0, 1)``, so the picture
and the labels agree to the pixel.  Colours are optical densities (Beer-Lambert)
relative to the empty-slide background, so stains mix and overlap like dyes.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

NEUTROPHIL, LYMPHOCYTE, MONOCYTE, EOSINOPHIL, BASOPHIL = 1, 2, 3, 4, 5
CELL_CODES = (NEUTROPHIL, LYMPHOCYTE, MONOCYTE, EOSINOPHIL, BASOPHIL)

# whole-cell diameter range in micrometres (peripheral blood, Wright/Giemsa smear)
DIAMETER_UM = {NEUTROPHIL: (10.0, 12.0), LYMPHOCYTE: (7.0, 10.0), MONOCYTE: (14.0, 18.0),
               EOSINOPHIL: (12.0, 14.0), BASOPHIL: (10.0, 13.0)}

BACKGROUND_RGB = np.array([241.0, 232.0, 226.0], np.float32)  # empty slide, full light


def density(rgb) -> np.ndarray:
    """Optical density that turns the background into colour ``rgb``."""
    return -np.log(np.asarray(rgb, np.float32) / BACKGROUND_RGB).astype(np.float32)


NUCLEUS_OD = density((92, 44, 128))  # dark purple chromatin
NUCLEUS_LIGHT_OD = density((128, 84, 160))  # monocyte: lighter, lacy
CYTOPLASM_OD = {
    NEUTROPHIL: density((226, 199, 212)),  # pale pinkish lilac
    LYMPHOCYTE: density((160, 178, 226)),  # sky blue
    MONOCYTE: density((192, 190, 208)),  # grey blue
    EOSINOPHIL: density((226, 196, 190)),
    BASOPHIL: density((206, 180, 212)),
}
NEUTROPHIL_GRANULE_OD = density((196, 150, 190))
EOSINOPHIL_GRANULE_OD = density((212, 118, 92))  # orange-red
BASOPHIL_GRANULE_OD = density((52, 26, 74))  # purple-black


def noise(rng, shape, sigma) -> np.ndarray:
    """Smooth Gaussian random field, zero mean, unit std."""
    n = rng.standard_normal(shape, dtype=np.float32)
    n = cv2.GaussianBlur(n, (0, 0), max(float(sigma), 0.3))
    return n / (n.std() + 1e-6)


def granules(rng, shape, radius, fraction) -> np.ndarray:
    """Round granules of ``radius`` px on a jittered grid covering about ``fraction``, 0..1."""
    sigma = max(0.7 * radius, 0.35)
    step = max(radius * np.sqrt(np.pi / fraction), 1.0)
    gy, gx = np.mgrid[0:shape[0] + step:step, 0:shape[1] + step:step]
    y = np.round(gy.ravel() + rng.uniform(-0.45, 0.45, gy.size) * step).astype(int)
    x = np.round(gx.ravel() + rng.uniform(-0.45, 0.45, gx.size) * step).astype(int)
    ok = (y >= 0) & (y < shape[0]) & (x >= 0) & (x < shape[1])
    pts = np.zeros(shape, np.float32)
    pts[y[ok], x[ok]] = rng.uniform(0.6, 1.0, int(ok.sum()))
    g = cv2.GaussianBlur(pts, (0, 0), sigma) * np.float32(2 * np.pi * sigma * sigma)
    return np.clip(g, 0.0, 1.0)


# --- outline primitives, in cell-centred pixel coordinates (y, x) -------------
def _ellipse(y, x, cy, cx, a, b, ang):
    """a: semi-axis along angle ``ang`` (radians from +x), b: the other one."""
    c, s = np.cos(ang), np.sin(ang)
    u, v = (x - cx) * c + (y - cy) * s, -(x - cx) * s + (y - cy) * c
    q = np.sqrt((u / a) ** 2 + (v / b) ** 2) + 1e-6
    grad = np.sqrt((u / a**2) ** 2 + (v / b**2) ** 2) / q + 1e-6
    return (1.0 - q) / grad


def _segment(y, x, y0, x0, y1, x1, hw):
    dy, dx = y1 - y0, x1 - x0
    t = np.clip(((y - y0) * dy + (x - x0) * dx) / (dy * dy + dx * dx + 1e-9), 0.0, 1.0)
    return hw - np.hypot(y - (y0 + t * dy), x - (x0 + t * dx))


def _arc(y, x, cy, cx, ra, t0, t1, hw):
    """Thick arc of radius ``ra`` from angle t0 to t1 (t1 > t0), half width ``hw``."""
    rho = np.hypot(y - cy, x - cx)
    rel = np.mod(np.arctan2(y - cy, x - cx) - t0, 2 * np.pi)
    ends = [np.hypot(y - cy - ra * np.sin(t), x - cx - ra * np.cos(t)) for t in (t0, t1)]
    dist = np.where(rel <= t1 - t0, np.abs(rho - ra), np.minimum(*ends))
    return hw - dist


_PRIMITIVES = {"ellipse": _ellipse, "segment": _segment, "arc": _arc}


@dataclass
class WhiteCell:
    code: int
    radius: float  # mean outline radius, px
    harmonics: np.ndarray  # rows (k, amplitude, phase) of the outline's wobble
    nucleus: list  # ("+"|"-", primitive name, args) in cell-centred px coordinates
    center: tuple = (0.0, 0.0)
    look: str = ""  # a marrow appearance of :mod:`.synthetic_marrow`; "": the code's own

    @property
    def rmax(self) -> float:
        return float(self.radius * (1.0 + np.abs(self.harmonics[:, 1]).sum()))

    def radius_at(self, theta):
        k, amp, ph = self.harmonics.T
        wobble = (amp[:, None] * np.cos(k[:, None] * np.ravel(theta)[None] + ph[:, None])).sum(0)
        return self.radius * (1.0 + wobble.reshape(np.shape(theta)))

    def field(self, yy, xx):
        dy, dx = yy - self.center[0], xx - self.center[1]
        return (self.radius_at(np.arctan2(dy, dx)) - np.hypot(dy, dx)).astype(np.float32)

    def nucleus_field(self, yy, xx):
        dy, dx = yy - self.center[0], xx - self.center[1]
        f = np.full(np.shape(yy), -1e6, np.float32)
        for op, name, args in self.nucleus:
            p = _PRIMITIVES[name](dy, dx, *args)
            f = np.maximum(f, p) if op == "+" else np.minimum(f, -p)
        return f


def _neutrophil(R, rng, um_per_px):
    n = int(rng.choice((3, 4, 5), p=(0.35, 0.45, 0.2)))
    span = rng.uniform(2.6, 3.4) if n == 3 else rng.uniform(3.4, 4.6)
    ra, mid = R * rng.uniform(0.42, 0.48), rng.uniform(0, 2 * np.pi)
    cy, cx = -0.25 * ra * np.sin(mid), -0.25 * ra * np.cos(mid)
    t0 = mid - span / 2
    spacing = ra * span / (n - 1)
    b = min(R * rng.uniform(0.22, 0.27), 0.37 * spacing)
    filament = max(0.8, rng.uniform(0.15, 0.25) / um_per_px)  # half width, px
    prims = [("+", "arc", (cy, cx, ra, t0, t0 + span, filament))]
    for t in t0 + np.arange(n) * span / (n - 1) + rng.normal(0, 0.04, n):
        a = b * rng.uniform(1.15, 1.5)
        prims.append(("+", "ellipse", (cy + ra * np.sin(t), cx + ra * np.cos(t), a, b,
                                       t + rng.normal(0, 0.3))))
    return prims


def _lymphocyte(R, rng):
    a = R * rng.uniform(0.74, 0.84)
    off, ang = rng.uniform(0, 0.12) * R, rng.uniform(0, 2 * np.pi)
    prims = [("+", "ellipse", (off * np.sin(ang), off * np.cos(ang), a, a * rng.uniform(0.88, 1.0),
                                rng.uniform(0, np.pi)))]
    if rng.random() < 0.3:  # shallow indentation
        t = rng.uniform(0, 2 * np.pi)
        prims.append(("-", "ellipse", (1.08 * a * np.sin(t), 1.08 * a * np.cos(t), 0.1 * R,
                                       0.3 * R, t)))
    return prims


def _monocyte(R, rng):
    mid = rng.uniform(0, 2 * np.pi)
    s, c = np.sin(mid), np.cos(mid)
    if rng.random() < 0.5:  # kidney: ellipse with a bite out of one long side
        b, rb = R * rng.uniform(0.42, 0.5), R * rng.uniform(0.26, 0.34)
        oy, ox = -0.12 * R * s, -0.12 * R * c
        return [("+", "ellipse", (oy, ox, R * rng.uniform(0.62, 0.7), b, mid + np.pi / 2)),
                ("-", "ellipse", (oy + (b + 0.45 * rb) * s, ox + (b + 0.45 * rb) * c, rb * 1.3,
                                  rb, mid + np.pi / 2))]
    ra, span = R * rng.uniform(0.38, 0.46), rng.uniform(3.4, 4.4)  # horseshoe
    return [("+", "arc", (-0.3 * ra * s, -0.3 * ra * c, ra, mid - span / 2, mid + span / 2,
                          R * rng.uniform(0.21, 0.26)))]


def _bilobed(R, rng, lobe, gap, band):
    ang = rng.uniform(0, np.pi)
    s, c = np.sin(ang), np.cos(ang)
    oy, ox = rng.normal(0, 0.06 * R, 2)
    b = R * rng.uniform(*lobe)
    d = b + gap * R
    ends = [(oy - d * s, ox - d * c), (oy + d * s, ox + d * c)]
    prims = [("+", "ellipse", (y, x, b * rng.uniform(1.2, 1.45), b,
                                ang + np.pi / 2 + rng.normal(0, 0.3))) for y, x in ends]
    prims.append(("+", "segment", (*ends[0], *ends[1], max(0.8, band * R))))
    return prims


def make_cell(code: int, um_per_px: float, rng) -> WhiteCell:
    R = rng.uniform(*DIAMETER_UM[code]) / 2.0 / um_per_px
    k = np.arange(2, 7, dtype=np.float64)
    wobble = 0.05 if code == MONOCYTE else 0.028
    amp = rng.normal(0, wobble, k.size) / k**0.8
    amp[0] = rng.uniform(0.02, 0.07) * rng.choice((-1, 1))  # slight ellipticity
    harm = np.stack([k, amp, rng.uniform(0, 2 * np.pi, k.size)], 1)
    if code == NEUTROPHIL:
        nuc = _neutrophil(R, rng, um_per_px)
    elif code == LYMPHOCYTE:
        nuc = _lymphocyte(R, rng)
    elif code == MONOCYTE:
        nuc = _monocyte(R, rng)
    elif code == EOSINOPHIL:
        nuc = _bilobed(R, rng, (0.22, 0.27), rng.uniform(0.05, 0.12), rng.uniform(0.03, 0.08))
    else:
        nuc = _bilobed(R, rng, (0.24, 0.3), rng.uniform(-0.02, 0.06), rng.uniform(0.12, 0.2))
    return WhiteCell(code, float(R), harm, nuc)


def cell_density(cell: WhiteCell, f, fn, rng, um_per_px):
    """Optical density (h, w, 3) of ``cell`` on the box of fields ``f`` (cell), ``fn`` (nucleus)."""
    shape, code, px = f.shape, cell.code, 1.0 / um_per_px
    nuc = np.clip(fn + 0.5, 0.0, 1.0)[..., None]
    inner = np.clip(f / (0.6 * px), 0.0, 1.0)  # 0 at the membrane, 1 from 0.6 um inward
    cyto = CYTOPLASM_OD[code] * (0.9 + 0.08 * noise(rng, shape, 0.6 * px))[..., None]
    if code in (LYMPHOCYTE, MONOCYTE):  # stain gathers at the rim
        cyto = cyto * (1.25 - 0.3 * inner)[..., None]
    if code == NEUTROPHIL:
        g = granules(rng, shape, 0.15 * px, 0.35)[..., None]
        cyto = cyto * (1 - g) + NEUTROPHIL_GRANULE_OD * g
    elif code == EOSINOPHIL:
        g = granules(rng, shape, 0.33 * px, 0.75)[..., None] * (0.6 + 0.4 * inner[..., None])
        cyto = cyto * (1 - g) + EOSINOPHIL_GRANULE_OD * g
    elif code == MONOCYTE:
        for _ in range(int(rng.integers(0, 5))):  # clear vacuoles
            r = rng.uniform(0.3, 0.8) * px
            ry, rx = np.nonzero((f > r + 1) & (fn < -r - 1))
            if ry.size:
                j = rng.integers(ry.size)
                d = np.hypot(np.arange(shape[0])[:, None] - ry[j],
                             np.arange(shape[1])[None] - rx[j])
                cyto = cyto * (1 - 0.75 * np.clip(r + 0.5 - d, 0, 1))[..., None]
    chrom_od = NUCLEUS_LIGHT_OD if code == MONOCYTE else NUCLEUS_OD
    if code == MONOCYTE:  # lacy chromatin
        tex = 0.85 + 0.22 * noise(rng, shape, 0.22 * px) + 0.08 * noise(rng, shape, 0.8 * px)
    else:  # clumped chromatin, darker at the nuclear rim
        tex = 0.88 + 0.14 * noise(rng, shape, 0.3 * px) + 0.12 * noise(rng, shape, 0.9 * px)
        tex += 0.12 * (1 - np.clip(fn / (0.8 * px), 0, 1))
    od = nuc * (chrom_od * np.clip(tex, 0.45, 1.6)[..., None]) + (1 - nuc) * cyto
    if code == BASOPHIL:  # coarse dark granules over nucleus and cytoplasm
        g = granules(rng, shape, 0.45 * px, 0.45)[..., None] * (f > 0)[..., None]
        od = od * (1 - 0.5 * g) + BASOPHIL_GRANULE_OD * g
    return od.astype(np.float32)
