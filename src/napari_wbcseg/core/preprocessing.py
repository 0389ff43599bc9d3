"""AHE-Retinex colour correction (Zhu et al., 2023) and its two pieces.

* :func:`clahe` - contrast-limited adaptive histogram equalisation of the HSV
  value channel (hue and saturation kept).
* :func:`msrcr` - multi-scale Retinex with colour restoration, followed by a
  per-channel "simplest colour balance" stretch to uint8.
* :func:`ahe_retinex` - both, by default CLAHE first ("ahe-first").

All take and return HxWx3 uint8 RGB.  See ``docs/preprocessing.md`` for the
interpretation of the paper and the accuracy of the fast Gaussian surround
against the exact one in ``tests/reference_msrcr.py``.

numpy + OpenCV only: no napari, Qt or torch here.
"""
from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import cv2
import numpy as np

from .image import as_rgb_uint8

__all__ = ["METHODS", "ORDERS", "AheRetinexParams", "ahe_retinex", "apply_preprocessing",
           "clahe", "msrcr"]

METHODS = ("ahe-retinex", "clahe", "msrcr")
ORDERS = ("ahe-first", "retinex-first")

# Fast surround: blur at 1/s resolution, s a power of two with sigma / s >= _MIN_RATIO.
_MIN_RATIO = 3.0
_MAX_SIGMA = 10_000.0
_MIN_LOW_SIDE = 8  # never shrink an image below this many pixels per side
_SAMPLES = 1 << 18  # pixels per channel used for the stretch quantiles
_UP_VAR = 1.0 / 6.0  # mean extra variance of bilinear interpolation, in spacing^2
_FLAT = 1e-4  # a channel whose stretch span is below _FLAT * gain has no contrast
_LOG1P_LUT = np.log(np.arange(1, 257, dtype=np.float64)).astype(np.float32)
_PLUS1_LUT = np.arange(1, 257, dtype=np.float32)


# ---------------------------------------------------------------- validation
def _number(value, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a number, got {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return value


def _check_clahe(clip_limit, tile_grid) -> tuple[float, tuple[int, int]]:
    clip_limit = _number(clip_limit, "clip_limit")
    if clip_limit < 0:
        raise ValueError(f"clip_limit must be >= 0 (0 = plain AHE), got {clip_limit}")
    grid = tuple(tile_grid) if isinstance(tile_grid, (tuple, list, np.ndarray)) else ()
    if len(grid) != 2 or any(isinstance(n, bool) or not isinstance(n, numbers.Integral)
                             or not 1 <= n <= 1024 for n in grid):
        raise ValueError(
            f"tile_grid must be two integers between 1 and 1024 (rows, cols), got {tile_grid!r}"
        )
    return clip_limit, (int(grid[0]), int(grid[1]))


def _check_msrcr(sigmas, gain, offset, low_clip, high_clip):
    if isinstance(sigmas, numbers.Real):
        sigmas = (sigmas,)
    try:
        sigmas = tuple(_number(s, "each sigma") for s in sigmas)
    except TypeError:
        raise ValueError(f"sigmas must be a sequence of positive numbers, got {sigmas!r}") from None
    if not sigmas or min(sigmas) <= 0 or max(sigmas) > _MAX_SIGMA:
        raise ValueError(
            f"sigmas must be one or more positive numbers up to {_MAX_SIGMA:g} pixels, "
            f"got {sigmas!r}"
        )
    gain, offset = _number(gain, "gain"), _number(offset, "offset")
    if gain <= 0:
        raise ValueError(f"gain (alpha) must be > 0, got {gain}")
    if offset <= 0:
        raise ValueError(f"offset (beta) must be > 0, got {offset}")
    low_clip, high_clip = _number(low_clip, "low_clip"), _number(high_clip, "high_clip")
    if not 0.0 <= low_clip < high_clip <= 1.0:
        raise ValueError(
            f"need 0 <= low_clip < high_clip <= 1, got low_clip={low_clip}, high_clip={high_clip}"
        )
    return sigmas, gain, offset, low_clip, high_clip


def _check_order(order) -> str:
    if order not in ORDERS:
        raise ValueError(f"unknown order {order!r}; choose one of {', '.join(ORDERS)}")
    return order


# ------------------------------------------------------------------- CLAHE on V
def _clahe_v(rgb: np.ndarray, clip_limit: float, tile_grid: tuple[int, int]) -> np.ndarray:
    """CLAHE of V = max(R, G, B); RGB is rescaled by V'/V, which keeps H and S.

    This is RGB -> HSV -> CLAHE(V) -> RGB in exact arithmetic (rounded half to
    even), without the hue quantisation of an 8-bit HSV round trip: R*V' is an
    exact float32 integer and OpenCV's float division rounds correctly.  Black
    pixels (V = 0) become grey V'.
    """
    v = cv2.extractChannel(cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV), 2)  # max(R, G, B)
    rows, cols = tile_grid
    v_new = cv2.createCLAHE(clipLimit=clip_limit, tileGridSize=(cols, rows)).apply(v)
    num = cv2.multiply(rgb, cv2.merge([v_new, v_new, v_new]), dtype=cv2.CV_32F)
    out = cv2.divide(num, cv2.merge([v, v, v]), dtype=cv2.CV_8U)  # 0 where v == 0
    if cv2.minMaxLoc(v)[0] == 0:
        black = v == 0
        out[black] = v_new[black][:, None]
    return out


# ---------------------------------------------------------------------- MSRCR
def _level(sigma: float, h: int, w: int) -> int:
    """Power-of-two shrink factor s for a Gaussian of this sigma (sigma / s >= _MIN_RATIO)."""
    s = 1
    while 2 * s * _MIN_RATIO <= sigma and min(h, w) >= 2 * s * _MIN_LOW_SIDE:
        s *= 2
    return s


def _low_sigma(sigma: float, f: float, f_base: float, via_base: bool) -> float:
    """Sigma in pixels of a grid with spacing f (full-res px) that, after the box
    downsample (variance f^2/12) and the bilinear upsamplings (on average
    _UP_VAR * spacing^2 each), gives a surround of variance sigma^2 at full size."""
    var = sigma * sigma
    if f > 1:
        var -= f * f / 12.0
    if via_base:
        var -= _UP_VAR * f * f
    if f_base > 1:
        var -= _UP_VAR * f_base * f_base
    return math.sqrt(max(var, 0.25 * f * f)) / f


def _mean_log_surround(img: np.ndarray, sigmas: tuple[float, ...]) -> np.ndarray:
    """Approximate mean_k log(G_sigma_k * img), float32 HxWx3, through a box pyramid.

    Each surround is blurred at 1/s resolution with its sigma reduced by the
    variance that resampling adds; the logs are summed at the finest level used
    (the "base") and upsampled to full size once.  The borders are mirrored
    half-sample symmetric (OpenCV BORDER_REFLECT, scipy mode="reflect"): that
    mirror axis is the image edge at every pyramid level, so the coarse levels
    see exactly the extension that a full-resolution blur would.
    """
    h, w = img.shape[:2]
    factors = [_level(s, h, w) for s in sigmas]
    sizes = {s: (max(1, round(w / s)), max(1, round(h / s))) for s in factors}
    pyramid, src = {1: img}, img
    for s in sorted(sizes):  # chained box downsampling (exact for divisible sizes)
        if s > 1:
            src = pyramid[s] = cv2.resize(src, sizes[s], interpolation=cv2.INTER_AREA)
    base = min(factors)
    bw, bh = sizes[base]
    acc = None
    for sigma, s in zip(sigmas, factors):
        lw, lh = sizes[s]
        via = s != base
        sx = _low_sigma(sigma, w / lw, w / bw, via)
        sy = _low_sigma(sigma, h / lh, h / bh, via)
        low = cv2.log(cv2.GaussianBlur(pyramid[s], (0, 0), sigmaX=sx, sigmaY=sy,
                                       borderType=cv2.BORDER_REFLECT))
        if via:
            low = cv2.resize(low, (bw, bh), interpolation=cv2.INTER_LINEAR)
        acc = low if acc is None else cv2.add(acc, low)
    if len(sigmas) > 1:
        acc = cv2.multiply(acc, (1.0 / len(sigmas),) * 4)
    if (bw, bh) != (w, h):
        acc = cv2.resize(acc, (w, h), interpolation=cv2.INTER_LINEAR)
    return acc


def _quantiles(x: np.ndarray, low: float, high: float) -> np.ndarray:
    """(2, 3) low/high quantiles per channel; from a strided subsample of about
    _SAMPLES pixels when x is larger (deterministic).  The step is made coprime
    to the width so that every row and all columns are visited, and the
    extremes (0 and 1) are always exact."""
    flat = x.reshape(-1, 3)
    n, w = flat.shape[0], x.shape[1]
    step = max(1, n // _SAMPLES)
    while step > 1 and math.gcd(step, w) != 1:
        step += 1
    q = np.quantile(flat[::step], [low, high], axis=0)
    if step > 1 and low == 0.0:
        q[0] = flat.min(axis=0)
    if step > 1 and high == 1.0:
        q[1] = flat.max(axis=0)
    return q


def _stretch(x: np.ndarray, low: float, high: float, flat: float) -> np.ndarray:
    """Simplest colour balance: per channel, clip at quantiles and map to 0..255.

    Overwrites x (float32 HxWx3)."""
    lo, hi = _quantiles(x, low, high)
    grey = []
    for c in range(3):
        if hi[c] - lo[c] <= flat:  # mostly one value: fall back to min/max
            lo[c], hi[c] = float(x[..., c].min()), float(x[..., c].max())
        if hi[c] - lo[c] <= flat:
            grey.append(c)
            lo[c], hi[c] = 0.0, 1.0
    scale = 255.0 / (hi - lo)
    out = cv2.multiply(cv2.subtract(x, (*lo, 0.0), dst=x), (*scale, 0.0), dtype=cv2.CV_8U)
    for c in grey:
        out[..., c] = 128
    return out


def _msrcr(rgb, sigmas, gain, offset, low_clip, high_clip) -> np.ndarray:
    # Large float32 buffers are reused in place: fresh pages cost as much as the math.
    img = cv2.LUT(rgb, _PLUS1_LUT)  # I = pixel + 1
    log_i = cv2.LUT(rgb, _LOG1P_LUT)
    msr = _mean_log_surround(img, sigmas)
    cv2.subtract(log_i, msr, dst=msr)  # MSR_i
    log_total = cv2.log(cv2.transform(img, np.ones((1, 3), np.float32)))  # log sum_j I_j
    cv2.subtract(log_total, math.log(offset), dst=log_total)
    colour = np.subtract(log_i, log_total[..., None], out=log_i)  # log(beta * I_i / sum_j I_j)
    out = cv2.multiply(colour, msr, dst=msr, scale=gain)  # C_i * MSR_i
    return _stretch(out, low_clip, high_clip, _FLAT * gain)


# ------------------------------------------------------------------ public API
def clahe(rgb, clip_limit: float = 2.0, tile_grid: tuple[int, int] = (8, 8)) -> np.ndarray:
    """CLAHE of the HSV value channel only; ``clip_limit=0`` is plain AHE.

    ``tile_grid`` is (rows, cols) of contextual tiles.  Returns HxWx3 uint8 RGB.
    """
    clip_limit, tile_grid = _check_clahe(clip_limit, tile_grid)
    return _clahe_v(as_rgb_uint8(rgb, what="image"), clip_limit, tile_grid)


def msrcr(rgb, sigmas=(15, 80, 250), gain: float = 46.0, offset: float = 125.0,
          low_clip: float = 0.01, high_clip: float = 0.99) -> np.ndarray:
    """Multi-scale Retinex with colour restoration, stretched per channel to uint8.

    MSR_i = mean_k [log I_i - log(G_sigma_k * I_i)], C_i = gain * log(offset *
    I_i / sum_j I_j), out_i = stretch(C_i * MSR_i) between the ``low_clip`` and
    ``high_clip`` quantiles, with I = pixel + 1.
    """
    args = _check_msrcr(sigmas, gain, offset, low_clip, high_clip)
    return _msrcr(as_rgb_uint8(rgb, what="image"), *args)


def ahe_retinex(rgb, clip_limit: float = 2.0, tile_grid: tuple[int, int] = (8, 8),
                sigmas=(15, 80, 250), gain: float = 46.0, offset: float = 125.0,
                low_clip: float = 0.01, high_clip: float = 0.99,
                order: str = "ahe-first") -> np.ndarray:
    """AHE-Retinex correction: ``msrcr(clahe(rgb))`` or, with
    ``order="retinex-first"``, ``clahe(msrcr(rgb))``."""
    clip_limit, tile_grid = _check_clahe(clip_limit, tile_grid)
    args = _check_msrcr(sigmas, gain, offset, low_clip, high_clip)
    order = _check_order(order)
    rgb = as_rgb_uint8(rgb, what="image")
    if order == "ahe-first":
        return _msrcr(_clahe_v(rgb, clip_limit, tile_grid), *args)
    return _clahe_v(_msrcr(rgb, *args), clip_limit, tile_grid)


@dataclass(frozen=True)
class AheRetinexParams:
    """Settings for :func:`apply_preprocessing` (validated on creation)."""

    method: str = "ahe-retinex"
    clip_limit: float = 2.0
    tile_grid: tuple[int, int] = (8, 8)
    sigmas: tuple[float, ...] = (15.0, 80.0, 250.0)
    gain: float = 46.0
    offset: float = 125.0
    low_clip: float = 0.01
    high_clip: float = 0.99
    order: str = "ahe-first"

    def __post_init__(self):
        if self.method not in METHODS:
            raise ValueError(f"unknown method {self.method!r}; choose one of {', '.join(METHODS)}")
        clip_limit, tile_grid = _check_clahe(self.clip_limit, self.tile_grid)
        sigmas, gain, offset, low, high = _check_msrcr(
            self.sigmas, self.gain, self.offset, self.low_clip, self.high_clip
        )
        _check_order(self.order)
        checked = dict(clip_limit=clip_limit, tile_grid=tile_grid, sigmas=sigmas, gain=gain,
                       offset=offset, low_clip=low, high_clip=high)
        for name, value in checked.items():
            object.__setattr__(self, name, value)


def apply_preprocessing(rgb, params: AheRetinexParams | None = None) -> np.ndarray:
    """Run the method named in ``params`` (defaults: AHE-Retinex) on an image."""
    p = AheRetinexParams() if params is None else params
    if not isinstance(p, AheRetinexParams):
        raise TypeError(f"params must be AheRetinexParams, got {type(p).__name__}")
    if p.method == "clahe":
        return clahe(rgb, p.clip_limit, p.tile_grid)
    if p.method == "msrcr":
        return msrcr(rgb, p.sigmas, p.gain, p.offset, p.low_clip, p.high_clip)
    return ahe_retinex(rgb, p.clip_limit, p.tile_grid, p.sigmas, p.gain, p.offset,
                       p.low_clip, p.high_clip, p.order)
