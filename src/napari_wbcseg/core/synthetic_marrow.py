"""Appearances of the marrow (and extended blood) white cells of :mod:`.synthetic`.

Keyed by class *name* (as :func:`napari_wbcseg.schemes.scheme.normalise_name` spells it),
so that any class table naming these cells can be drawn: a code means nothing here.
The five blood types keep the drawings of :mod:`.synthetic_cells`; the others are
distinguishable by size, nucleus shape and size (round, eccentric, kidney, band),
chromatin (fine with nucleoli, clumped, pyknotic), cytoplasm colour (deep blue of the
young erythroid cells, pink of the orthochromatic ones) and granules (azurophilic in
promyelocytes, dark and dense in mast cells).  Sizes follow the usual atlas ranges;
nothing here claims more than "visually distinct enough for a tiny classifier".
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .synthetic_cells import (NUCLEUS_LIGHT_OD, NUCLEUS_OD, WhiteCell, density, granules,
                              make_cell, noise)

__all__ = ["BLOOD_LOOKS", "LOOKS", "Look", "has_look", "look_density", "make_look_cell"]

#: names drawn as the five blood types of :mod:`.synthetic_cells` (their codes there)
BLOOD_LOOKS = {"neutrophil": 1, "segmented neutrophil": 1, "lymphocyte": 2, "monocyte": 3,
               "eosinophil": 4, "basophil": 5}


@dataclass(frozen=True)
class Look:
    diameter_um: tuple[float, float]
    nucleus: str  # "round", "eccentric", "kidney", "band"
    size: tuple[float, float]  # nucleus semi-axis / cell radius
    chromatin: str  # "fine" (with nucleoli), "clumped", "pyknotic"
    cytoplasm: tuple[int, int, int]  # RGB on the empty slide
    granules: tuple | None = None  # (RGB, radius um, area fraction)
    rim: bool = False  # basophilic cytoplasm, darker at the membrane
    hof: bool = False  # pale zone beside the nucleus (plasma cell Golgi)
    over_nucleus: bool = False  # granules cover the nucleus too (mast cell)


_PINK_GRANULES = ((200, 150, 185), 0.15, 0.4)
LOOKS = {
    "blast": Look((14, 18), "round", (0.78, 0.84), "fine", (150, 172, 222), rim=True),
    "promyelocyte": Look((16, 22), "eccentric", (0.5, 0.56), "fine", (176, 182, 226),
                         ((140, 50, 110), 0.28, 0.5)),
    "myelocyte": Look((12, 16), "eccentric", (0.48, 0.54), "clumped", (226, 196, 204),
                      _PINK_GRANULES),
    "metamyelocyte": Look((11, 14), "kidney", (0.5, 0.56), "clumped", (228, 200, 206),
                          _PINK_GRANULES),
    "band neutrophil": Look((10, 12), "band", (0.13, 0.16), "clumped", (226, 199, 212),
                            _PINK_GRANULES),
    "plasma cell": Look((10, 14), "eccentric", (0.42, 0.48), "clumped", (104, 124, 198),
                        rim=True, hof=True),
    "proerythroblast": Look((14, 19), "round", (0.72, 0.78), "fine", (78, 98, 184), rim=True),
    "basophilic erythroblast": Look((12, 16), "round", (0.6, 0.66), "clumped", (98, 110, 178),
                                    rim=True),
    "polychromatic erythroblast": Look((9, 12), "round", (0.48, 0.54), "clumped",
                                       (172, 160, 188)),
    "orthochromatic erythroblast": Look((7, 9), "round", (0.34, 0.4), "pyknotic",
                                        (226, 156, 154)),
    "mast cell": Look((12, 20), "round", (0.36, 0.42), "clumped", (200, 170, 208),
                      ((58, 22, 78), 0.35, 0.85), over_nucleus=True),
    "reactive lymphocyte": Look((12, 16), "eccentric", (0.5, 0.56), "clumped",
                                (142, 170, 230), rim=True),
    "smudge cell": Look((10, 14), "round", (0.82, 0.88), "fine", (222, 214, 230)),
}
LOOKS["immature granulocyte"] = LOOKS["myelocyte"]
LOOKS["nucleated red cell"] = LOOKS["orthochromatic erythroblast"]
LOOKS["myeloblast"] = LOOKS["blast"]


def has_look(name: str) -> bool:
    from ..schemes.scheme import normalise_name

    n = normalise_name(name)
    return n in LOOKS or n in BLOOD_LOOKS


def _nucleus(look: Look, R: float, rng) -> list:
    a = R * rng.uniform(*look.size)
    ang = rng.uniform(0, 2 * np.pi)
    s, c = np.sin(ang), np.cos(ang)
    if look.nucleus == "round":
        off = rng.uniform(0, 0.08) * R
        return [("+", "ellipse", (off * s, off * c, a, a * rng.uniform(0.88, 1.0),
                                  rng.uniform(0, np.pi)))]
    if look.nucleus == "eccentric":  # pushed against the membrane
        off = R * 0.96 - a
        return [("+", "ellipse", (off * s, off * c, a, a * rng.uniform(0.85, 0.97),
                                  ang + np.pi / 2))]
    if look.nucleus == "kidney":  # an ellipse with a bite out of one long side
        b, rb = a * 0.8, a * rng.uniform(0.45, 0.55)
        return [("+", "ellipse", (-0.1 * R * s, -0.1 * R * c, a * 1.2, b, ang + np.pi / 2)),
                ("-", "ellipse", (-0.1 * R * s + (b + 0.4 * rb) * s,
                                  -0.1 * R * c + (b + 0.4 * rb) * c, rb * 1.4, rb,
                                  ang + np.pi / 2))]
    ra, span = R * rng.uniform(0.4, 0.46), rng.uniform(3.6, 4.6)  # band: a thick C
    return [("+", "arc", (-0.25 * ra * s, -0.25 * ra * c, ra, ang - span / 2, ang + span / 2,
                          a))]


def make_look_cell(name: str, um_per_px: float, rng) -> WhiteCell:
    """A white cell drawn as ``name`` looks (see :data:`LOOKS`, :data:`BLOOD_LOOKS`);
    ``KeyError`` for a name without an appearance."""
    from ..schemes.scheme import normalise_name

    n = normalise_name(name)
    if n in BLOOD_LOOKS:
        return make_cell(BLOOD_LOOKS[n], um_per_px, rng)
    look = LOOKS[n]
    R = rng.uniform(*look.diameter_um) / 2.0 / um_per_px
    k = np.arange(2, 7, dtype=np.float64)
    amp = rng.normal(0, 0.028, k.size) / k**0.8
    amp[0] = rng.uniform(0.02, 0.07) * rng.choice((-1, 1))
    if n == "plasma cell":  # oval
        amp[0] = rng.uniform(0.1, 0.14) * rng.choice((-1, 1))
    harm = np.stack([k, amp, rng.uniform(0, 2 * np.pi, k.size)], 1)
    return WhiteCell(0, float(R), harm, _nucleus(look, R, rng), look=n)


def _spots(rng, f_inside, shape, radius, count) -> np.ndarray:
    """Soft round spots (0..1) of ``radius`` px at ``count`` points where ``f_inside``."""
    out = np.zeros(shape, np.float32)
    ys, xs = np.nonzero(f_inside)
    if not ys.size:
        return out
    yy, xx = np.arange(shape[0])[:, None], np.arange(shape[1])[None]
    for _ in range(count):
        j = rng.integers(ys.size)
        out = np.maximum(out, np.clip(radius + 0.5 - np.hypot(yy - ys[j], xx - xs[j]), 0, 1))
    return out


def look_density(cell: WhiteCell, f, fn, rng, um_per_px):
    """Optical density (h, w, 3) of a :func:`make_look_cell` cell (a non-blood look)."""
    look, shape, px = LOOKS[cell.look], f.shape, 1.0 / um_per_px
    nuc = np.clip(fn + 0.5, 0.0, 1.0)[..., None]
    inner = np.clip(f / (0.6 * px), 0.0, 1.0)
    cyto = density(look.cytoplasm) * (0.9 + 0.08 * noise(rng, shape, 0.6 * px))[..., None]
    if look.rim:
        cyto = cyto * (1.25 - 0.3 * inner)[..., None]
    if look.hof:  # pale crescent in the cytoplasm next to the nucleus
        near = np.clip(1 + fn / (1.5 * px), 0, 1) * (fn < 0)
        cyto = cyto * (1 - 0.55 * near)[..., None]
    if look.granules and not look.over_nucleus:
        rgb, radius, frac = look.granules
        g = granules(rng, shape, radius * px, frac)[..., None]
        cyto = cyto * (1 - g) + density(rgb) * g
    if look.chromatin == "fine":
        chrom = NUCLEUS_LIGHT_OD * np.clip(0.85 + 0.2 * noise(rng, shape, 0.2 * px), 0.5, 1.4
                                           )[..., None]
        r = 0.6 * px
        chrom = chrom * (1 - 0.55 * _spots(rng, fn > r + 1, shape, r, 2))[..., None]
    elif look.chromatin == "pyknotic":
        chrom = NUCLEUS_OD * 1.45 * (0.97 + 0.03 * noise(rng, shape, 0.3 * px))[..., None]
    else:
        tex = 0.88 + 0.16 * noise(rng, shape, 0.3 * px) + 0.12 * noise(rng, shape, 0.9 * px)
        tex += 0.12 * (1 - np.clip(fn / (0.8 * px), 0, 1))
        chrom = NUCLEUS_OD * np.clip(tex, 0.45, 1.6)[..., None]
    od = nuc * chrom + (1 - nuc) * cyto
    if look.granules and look.over_nucleus:
        rgb, radius, frac = look.granules
        g = granules(rng, shape, radius * px, frac)[..., None] * (f > 0)[..., None]
        od = od * (1 - 0.6 * g) + density(rgb) * g
    return od.astype(np.float32)
