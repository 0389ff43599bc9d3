"""Checking and normalising user images before any processing.

Every entry point (reader, widgets, API, CLI) funnels images through
:func:`as_rgb_uint8`, so bad input is refused with one clear sentence.
"""
from __future__ import annotations

import numpy as np

MIN_SIDE = 8  # smaller images carry no usable cell
#: largest image accepted, in pixels (16384 x 16384): a whole 2048x1536 field is 3 M;
#: processing allocates several float copies, so a bigger file is refused, not decoded
MAX_PIXELS = 2**28


class ImageFormatError(ValueError):
    """An image the plugin cannot process; the message says why in one line."""


def describe(image: np.ndarray) -> str:
    return f"shape {tuple(image.shape)}, dtype {image.dtype}"


def check_pixel_count(pixels: int, what: str = "image") -> None:
    """``ImageFormatError`` if an image of ``pixels`` pixels is over :data:`MAX_PIXELS`."""
    if pixels > MAX_PIXELS:
        raise ImageFormatError(
            f"{what} has {pixels:,} pixels, more than the {MAX_PIXELS:,} (16384 x 16384) "
            "napari-wbcseg accepts; crop or downscale it first"
        )


def check_image(image, *, what: str = "image") -> np.ndarray:
    """Validate an image as 2D grayscale or HxWx{3,4} of at most :data:`MAX_PIXELS`
    pixels; return it as an array (``ImageFormatError`` otherwise)."""
    arr = np.asarray(image)
    if arr.dtype == bool or arr.dtype.kind not in "ui":
        if arr.dtype.kind == "f":
            raise ImageFormatError(
                f"{what} is floating point ({describe(arr)}); napari-wbcseg expects 8- or "
                "16-bit integer images as saved by microscope cameras"
            )
        raise ImageFormatError(f"{what} has unsupported pixel type ({describe(arr)})")
    if arr.ndim == 3 and arr.shape[-1] not in (3, 4):
        raise ImageFormatError(
            f"{what} has {arr.shape[-1]} channels ({describe(arr)}); expected grayscale, "
            "RGB (3) or RGBA (4)"
        )
    if arr.ndim not in (2, 3):
        raise ImageFormatError(
            f"{what} must be a single 2D grayscale or colour image, got {describe(arr)}"
        )
    h, w = arr.shape[:2]
    check_pixel_count(h * w, what)
    if min(h, w) < MIN_SIDE:
        raise ImageFormatError(
            f"{what} is only {h}x{w} pixels; at least {MIN_SIDE}x{MIN_SIDE} is needed"
        )
    return arr


def bit_depth(arr: np.ndarray) -> int:
    """Smallest common camera bit depth (8, 10, 12, 14, 16, ...) that holds the data."""
    if arr.dtype == np.uint8:
        return 8
    top = int(arr.max()) if arr.size else 0
    for bits in (8, 10, 12, 14, 16, 32):
        if top < 2**bits:
            return max(bits, 8)
    return 64


def as_rgb_uint8(image, *, what: str = "image") -> np.ndarray:
    """Return an HxWx3 uint8 RGB copy-free view where possible.

    Grayscale is repeated over three channels, alpha is dropped, and 16-bit data
    is scaled from its inferred bit depth (a 12-bit camera in a 16-bit file stays
    bright).  Negative values in signed images are refused.
    """
    arr = check_image(image, what=what)
    if arr.dtype.kind == "i" and arr.size and int(arr.min()) < 0:
        raise ImageFormatError(f"{what} has negative pixel values ({describe(arr)})")
    if arr.ndim == 3 and arr.shape[-1] == 4:
        arr = arr[..., :3]
    if arr.dtype != np.uint8:
        top = float(2 ** bit_depth(arr) - 1)
        arr = np.clip(np.rint(arr.astype(np.float32) * (255.0 / top)), 0, 255).astype(np.uint8)
    if arr.ndim == 2:
        arr = np.repeat(arr[..., None], 3, axis=-1)
    return np.ascontiguousarray(arr)
