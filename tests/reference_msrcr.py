"""Slow, exact reference for napari_wbcseg.core.preprocessing.

Same pipeline as the fast module, written as directly as possible:

* CLAHE on V through a float64 HSV round trip (scikit-image), with OpenCV's
  CLAHE on the 8-bit V channel (the same operator the fast code uses);
* MSRCR with exact Gaussian surrounds (``scipy.ndimage.gaussian_filter``,
  float64, full resolution, ``mode="reflect"`` = OpenCV's BORDER_REFLECT,
  ``truncate=4``) and exact quantiles (``np.quantile``) for the stretch.

Used by the unit tests and by ``benchmarks/bench_ahe_retinex.py``.
"""
from __future__ import annotations

import cv2
import numpy as np
from scipy.ndimage import gaussian_filter
from skimage.color import hsv2rgb, rgb2hsv

from napari_wbcseg.core.image import as_rgb_uint8

FLAT = 1e-4  # same "no contrast" rule as the fast module (span <= FLAT * gain)


def reference_clahe(rgb, clip_limit=2.0, tile_grid=(8, 8)) -> np.ndarray:
    rgb = as_rgb_uint8(rgb)
    hsv = rgb2hsv(rgb.astype(np.float64) / 255.0)
    v = np.rint(hsv[..., 2] * 255.0).astype(np.uint8)
    rows, cols = tile_grid
    v_new = cv2.createCLAHE(clipLimit=float(clip_limit), tileGridSize=(cols, rows)).apply(v)
    hsv[..., 2] = v_new / 255.0
    # round(.., 6) snaps float noise onto exact halves, so ties round half to even
    # as exact arithmetic would (the fast code rounds exactly)
    return np.clip(np.rint(np.round(hsv2rgb(hsv) * 255.0, 6)), 0, 255).astype(np.uint8)


def reference_msrcr_float(rgb, sigmas=(15, 80, 250), gain=46.0, offset=125.0) -> np.ndarray:
    """C_i * MSR_i in float64, before the stretch."""
    img = as_rgb_uint8(rgb).astype(np.float64) + 1.0
    log_i = np.log(img)
    msr = np.zeros_like(img)
    for sigma in sigmas:
        for c in range(3):
            blur = gaussian_filter(img[..., c], sigma, mode="reflect", truncate=4.0)
            msr[..., c] += log_i[..., c] - np.log(blur)
    msr /= len(sigmas)
    colour = gain * np.log(offset * img / img.sum(axis=2, keepdims=True))
    return colour * msr


def reference_stretch(x, low_clip=0.01, high_clip=0.99, flat=FLAT * 46.0) -> np.ndarray:
    out = np.empty(x.shape, np.uint8)
    for c in range(3):
        ch = x[..., c]
        lo, hi = np.quantile(ch, [low_clip, high_clip])
        if hi - lo <= flat:
            lo, hi = ch.min(), ch.max()
        if hi - lo <= flat:
            out[..., c] = 128
            continue
        out[..., c] = np.clip(np.rint((ch - lo) * (255.0 / (hi - lo))), 0, 255)
    return out


def reference_msrcr(rgb, sigmas=(15, 80, 250), gain=46.0, offset=125.0,
                    low_clip=0.01, high_clip=0.99) -> np.ndarray:
    x = reference_msrcr_float(rgb, sigmas, gain, offset)
    return reference_stretch(x, low_clip, high_clip, FLAT * gain)


def reference_ahe_retinex(rgb, clip_limit=2.0, tile_grid=(8, 8), sigmas=(15, 80, 250),
                          gain=46.0, offset=125.0, low_clip=0.01, high_clip=0.99,
                          order="ahe-first") -> np.ndarray:
    if order == "ahe-first":
        return reference_msrcr(reference_clahe(rgb, clip_limit, tile_grid),
                               sigmas, gain, offset, low_clip, high_clip)
    return reference_clahe(reference_msrcr(rgb, sigmas, gain, offset, low_clip, high_clip),
                           clip_limit, tile_grid)
