"""Resampling, cropping, augmentation, mosaics and batching of :class:`Sample` (numpy / OpenCV).

Geometric transforms move image and labels together (labels nearest-neighbour, new
border pixels 255 = ignore; images reflect at the border); photometric ones touch
the image only.  Every function takes a ``numpy.random.Generator`` and returns new
samples: the inputs are never modified.
"""
from __future__ import annotations

import math

import cv2
import numpy as np

from .sample import CELL, CYTOPLASM, IGNORE, Sample

__all__ = ["augment", "mosaic", "random_crop", "resample", "resample_to_native", "to_batch"]


def _rng(rng):
    return rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)


def _pair(size) -> tuple[int, int]:
    if isinstance(size, (int, np.integer)):
        return int(size), int(size)
    h, w = size
    return int(h), int(w)


def resample(sample: Sample, factor: float) -> Sample:
    """Resize by ``factor`` (INTER_AREA down, INTER_LINEAR up; labels nearest).

    The result's ``scale`` is ``sample.scale / factor``.
    """
    H, W = sample.shape
    h, w = max(1, int(round(H * factor))), max(1, int(round(W * factor)))
    if (h, w) == (H, W):
        return sample.with_arrays(sample.image.copy(), sample.semantic.copy(),
                                  sample.cell_class.copy(), scale=sample.scale / factor)
    interp = cv2.INTER_AREA if factor < 1 else cv2.INTER_LINEAR
    image = cv2.resize(sample.image, (w, h), interpolation=interp)
    sem = cv2.resize(sample.semantic, (w, h), interpolation=cv2.INTER_NEAREST)
    cls = cv2.resize(sample.cell_class, (w, h), interpolation=cv2.INTER_NEAREST)
    return sample.with_arrays(image, sem, cls, scale=sample.scale / factor)


def resample_to_native(sample: Sample, jitter: float = 0.0, rng=None) -> Sample:
    """Resample to the native scale (cells ~ ``NATIVE_CELL_DIAMETER`` px).

    ``jitter`` > 0 multiplies the factor by ``exp(U(-jitter, jitter))`` (scale
    augmentation); the result's ``scale`` then records the remaining factor (1 without
    jitter).
    """
    factor = float(sample.scale)
    if jitter:
        factor *= math.exp(_rng(rng).uniform(-jitter, jitter))
    return resample(sample, factor)


def _pad(sample: Sample, h: int, w: int, rng) -> tuple[Sample, tuple[int, int]]:
    """Pad up to at least (h, w): images reflect, labels 255. Returns padding offsets."""
    H, W = sample.shape
    ph, pw = max(h - H, 0), max(w - W, 0)
    if not (ph or pw):
        return sample, (0, 0)
    top, left = int(rng.integers(0, ph + 1)), int(rng.integers(0, pw + 1))
    pads = ((top, ph - top), (left, pw - left))
    image = np.pad(sample.image, pads + ((0, 0),), mode="symmetric")
    sem = np.pad(sample.semantic, pads, constant_values=IGNORE)
    cls = np.pad(sample.cell_class, pads, constant_values=IGNORE)
    return sample.with_arrays(image, sem, cls), (top, left)


def random_crop(sample: Sample, size, rng, *, cell_bias: float = 0.8) -> Sample:
    """A ``size`` (int or (h, w)) crop; images smaller than it are padded first.

    With probability ``cell_bias`` the crop contains a random known-cell pixel (if the
    sample has any), so most crops show cells.  Padding: reflected image, labels 255.
    """
    rng = _rng(rng)
    h, w = _pair(size)
    sample, _ = _pad(sample, h, w, rng)
    H, W = sample.shape
    y0 = x0 = None
    if cell_bias > 0 and rng.random() < cell_bias:
        sem = sample.semantic
        ys, xs = np.nonzero((sem >= CYTOPLASM) & (sem <= CELL))
        if ys.size:
            j = int(rng.integers(ys.size))
            cy, cx = int(ys[j]), int(xs[j])
            y0 = int(rng.integers(max(cy - h + 1, 0), min(cy, H - h) + 1))
            x0 = int(rng.integers(max(cx - w + 1, 0), min(cx, W - w) + 1))
    if y0 is None:
        y0, x0 = int(rng.integers(0, H - h + 1)), int(rng.integers(0, W - w + 1))
    win = (slice(y0, y0 + h), slice(x0, x0 + w))
    out = sample.with_arrays(sample.image[win].copy(), sample.semantic[win].copy(),
                             sample.cell_class[win].copy())
    out.meta["crop"] = (y0, x0, h, w)
    return out


# ---- augmentation --------------------------------------------------------------------------

def _affine_matrix(H, W, rng, rotate, zoom, shear, shift=0.0):
    angle = rng.uniform(-180.0, 180.0) if rotate is True else (
        rng.uniform(-float(rotate), float(rotate)) if rotate else 0.0)
    s = math.exp(rng.uniform(math.log(zoom[0]), math.log(zoom[1]))) if zoom else 1.0
    sh = rng.uniform(-shear, shear) if shear else 0.0
    # translation by up to +-shift of the width / height (drawn last: without a shift the
    # random stream, and so every other transform, is what it was before shifts existed)
    t = (rng.uniform(-shift, shift) * W, rng.uniform(-shift, shift) * H) if shift else (0.0, 0.0)
    if angle == 0.0 and s == 1.0 and sh == 0.0 and t == (0.0, 0.0):
        return None
    a = math.radians(angle)
    rot = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    A = s * rot @ np.array([[1.0, sh], [0.0, 1.0]])
    c = np.array([(W - 1) / 2.0, (H - 1) / 2.0])
    return np.hstack([A, (c - A @ c + np.asarray(t))[:, None]])


def _elastic_maps(H, W, rng, alpha, sigma):
    dx = cv2.GaussianBlur(rng.uniform(-1, 1, (H, W)).astype(np.float32), (0, 0), sigma) * alpha
    dy = cv2.GaussianBlur(rng.uniform(-1, 1, (H, W)).astype(np.float32), (0, 0), sigma) * alpha
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    return xx + dx, yy + dy


def _photometric(img, rng, blur, gamma, brightness, contrast, hue, saturation, noise):
    x = img.astype(np.float32) / 255.0
    if hue or saturation:
        hsv = cv2.cvtColor(x, cv2.COLOR_RGB2HSV)  # H in degrees [0, 360)
        if hue:
            hsv[..., 0] = (hsv[..., 0] + rng.uniform(-hue, hue) * 360.0) % 360.0
        if saturation:
            f = math.exp(rng.uniform(-saturation, saturation))
            hsv[..., 1] = np.clip(hsv[..., 1] * f, 0, 1)
        x = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)
    if gamma:
        x = np.clip(x, 0, 1) ** math.exp(rng.uniform(math.log(gamma[0]), math.log(gamma[1])))
    if contrast or brightness:
        c = math.exp(rng.uniform(-contrast, contrast)) if contrast else 1.0
        b = rng.uniform(-brightness, brightness) if brightness else 0.0
        mean = x.mean(axis=(0, 1), keepdims=True)
        x = (x - mean) * c + mean + b
    if blur and rng.random() < blur:
        x = cv2.GaussianBlur(x, (0, 0), rng.uniform(0.5, 1.5))
    if noise:
        x = x + rng.normal(0.0, rng.uniform(0, noise), x.shape).astype(np.float32)
    return np.clip(x * 255.0 + 0.5, 0, 255).astype(np.uint8)


def augment(sample: Sample, rng, *, flips=True, rot90: bool = True, rotate=True,
            zoom=(0.8, 1.25), shear: float = 0.1, shift: float = 0.0, elastic: bool = False,
            elastic_alpha: float = 6.0, elastic_sigma: float = 8.0, blur: float = 0.3,
            gamma=(0.8, 1.25), brightness: float = 0.08, contrast: float = 0.15,
            hue: float = 0.02, saturation: float = 0.15, noise: float = 0.02) -> Sample:
    """A randomly transformed copy of ``sample`` of the same size.

    Geometric (image and labels alike): ``flips`` (True or "hv": each axis, p = 0.5;
    "h": left-right only, "v": up-down only), ``rot90`` (k in 0..3; square samples
    only), ``rotate`` (True: +-180 deg, a number: +- that many degrees, False: none),
    ``zoom`` (log-uniform range or None), ``shear`` (+- factor), ``shift`` (translation
    by up to +- that fraction of the width and of the height, as Keras'
    ``width_shift_range`` / ``height_shift_range``), ``elastic`` (smooth random
    displacement of ``elastic_alpha`` px, correlation ``elastic_sigma``).
    Photometric (image only): ``blur`` (probability of a Gaussian blur, sigma 0.5-1.5),
    ``gamma`` (range), ``brightness`` (+- shift of [0, 1] values), ``contrast`` (log
    range), ``hue`` (+- turn fraction), ``saturation`` (log range), ``noise`` (max std).
    Set any of them to a false value to switch it off.
    """
    rng = _rng(rng)
    img, sem, cls = sample.image, sample.semantic, sample.cell_class
    if flips not in (True, False, None, "h", "v", "hv"):
        raise ValueError(f"flips must be True, False, 'h', 'v' or 'hv', got {flips!r}")
    if flips in (True, "hv", "v") and rng.random() < 0.5:  # up-down
        img, sem, cls = img[::-1], sem[::-1], cls[::-1]
    if flips in (True, "hv", "h") and rng.random() < 0.5:  # left-right
        img, sem, cls = img[:, ::-1], sem[:, ::-1], cls[:, ::-1]
    if rot90 and img.shape[0] == img.shape[1]:
        k = int(rng.integers(4))
        img, sem, cls = (np.rot90(a, k) for a in (img, sem, cls))
    img, sem, cls = (np.ascontiguousarray(a) for a in (img, sem, cls))
    H, W = sem.shape
    M = _affine_matrix(H, W, rng, rotate, zoom, shear, shift)
    if M is not None:
        img = cv2.warpAffine(img, M, (W, H), flags=cv2.INTER_LINEAR,
                             borderMode=cv2.BORDER_REFLECT_101)
        sem, cls = (cv2.warpAffine(a, M, (W, H), flags=cv2.INTER_NEAREST,
                                   borderMode=cv2.BORDER_CONSTANT, borderValue=IGNORE)
                    for a in (sem, cls))
    if elastic:
        mx, my = _elastic_maps(H, W, rng, elastic_alpha, elastic_sigma)
        img = cv2.remap(img, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)
        sem, cls = (cv2.remap(a, mx, my, cv2.INTER_NEAREST, borderMode=cv2.BORDER_CONSTANT,
                              borderValue=IGNORE) for a in (sem, cls))
    img = _photometric(img, rng, blur, gamma, brightness, contrast, hue, saturation, noise)
    return sample.with_arrays(img, sem, cls)


# ---- mosaics and batches -------------------------------------------------------------------

def mosaic(samples, grid: int, size, rng, *, mode: str = "crop") -> Sample:
    """A ``grid`` x ``grid`` mosaic (Zhu et al. 2023 stitch 2x2, 3x3 and 4x4 single-cell images).

    ``mode="crop"``: each tile is a cell-centred :func:`random_crop` of a sample taken
    as it is (give native-scale samples; the mosaic keeps their scale).
    ``mode="resize"``: each whole sample is resized into its tile, as in the paper; the
    mosaic's ``scale`` is then the median of the tiles' remaining factors.
    Samples are drawn at random (without replacement while there are enough).
    """
    if grid < 1:
        raise ValueError(f"grid must be >= 1, got {grid!r}")
    if mode not in ("crop", "resize"):
        raise ValueError(f"mode must be 'crop' or 'resize', got {mode!r}")
    samples = list(samples)
    if not samples:
        raise ValueError("mosaic needs at least one sample")
    rng = _rng(rng)
    h, w = _pair(size)
    n = grid * grid
    picks = rng.choice(len(samples), n, replace=len(samples) < n)
    ys = np.linspace(0, h, grid + 1).round().astype(int)
    xs = np.linspace(0, w, grid + 1).round().astype(int)
    image = np.zeros((h, w, 3), np.uint8)
    sem = np.full((h, w), IGNORE, np.uint8)
    cls = np.full((h, w), IGNORE, np.uint8)
    scales, names = [], []
    for t, j in enumerate(picks):
        r, c = divmod(t, grid)
        th, tw = ys[r + 1] - ys[r], xs[c + 1] - xs[c]
        s = samples[int(j)]
        if mode == "crop":
            tile = random_crop(s, (th, tw), rng, cell_bias=1.0)
        else:
            f = min(th / s.shape[0], tw / s.shape[1])
            tile = random_crop(resample(s, f), (th, tw), rng, cell_bias=0.0)
        win = (slice(ys[r], ys[r + 1]), slice(xs[c], xs[c + 1]))
        image[win], sem[win], cls[win] = tile.image, tile.semantic, tile.cell_class
        scales.append(tile.scale)
        names.append(s.name)
    first = samples[int(picks[0])]
    return Sample(image=image, semantic=sem, cell_class=cls, source="mosaic",
                  group="mosaic:" + "+".join(sorted({samples[int(j)].group for j in picks})),
                  name=f"mosaic{grid}x{grid}:" + "+".join(names),
                  scale=float(np.median(scales)) if mode == "resize" else float(first.scale),
                  complete=all(samples[int(j)].complete for j in picks), image_class=0,
                  meta={"tiles": names})


def to_batch(samples) -> dict[str, np.ndarray]:
    """Stack equally sized samples: ``image`` float32 (N, 3, H, W) in [0, 1],
    ``semantic`` and ``cell_class`` int64 (N, H, W) with 255 kept as the ignore
    index, ``scale`` float32 (N,)."""
    samples = list(samples)
    if not samples:
        raise ValueError("to_batch needs at least one sample")
    shapes = {s.shape for s in samples}
    if len(shapes) > 1:
        raise ValueError(f"samples differ in size: {sorted(shapes)}; crop them to one size first")
    image = np.stack([s.image for s in samples]).astype(np.float32)
    image /= np.float32(255.0)
    return {
        "image": np.ascontiguousarray(image.transpose(0, 3, 1, 2)),
        "semantic": np.stack([s.semantic for s in samples]).astype(np.int64),
        "cell_class": np.stack([s.cell_class for s in samples]).astype(np.int64),
        "scale": np.array([s.scale for s in samples], np.float32),
    }
