"""What a training batch is made of: weighted sources, Zhu et al. mosaics, preprocessing.

numpy / OpenCV only (no torch).  Every random choice uses the one
``numpy.random.Generator`` of the run, so a run is reproduced by its seed and resumed
exactly from the generator's saved state.
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage  # imported with the loop, not in a worker: it holds the GIL

from .augment import augment, mosaic, random_crop, resample_to_native, to_batch

__all__ = ["MOSAIC_SOURCES", "MOSAIC_TILE", "PREPROCESSING", "class_balance_weights",
           "is_single_cell", "make_batch", "make_sampler", "preprocess_samples"]

#: sources whose images show one annotated white cell each (Zhu et al. stitch those)
MOSAIC_SOURCES = ("segmentation_WBC", "BCISC-sub")
#: side of one mosaic tile at the native scale (about 1.6 cell diameters: one whole cell
#: with a margin, like the paper's single-cell images)
MOSAIC_TILE = 128
PREPROCESSING = ("none", "ahe-retinex")


def is_single_cell(sample) -> bool:
    return str(sample.source).startswith(MOSAIC_SOURCES)


def make_sampler(samples, weights: dict, rng):
    """``draw()`` -> a sample: a source with probability ~ ``weights`` (default 1 each),
    then a sample of that source uniformly.  ``None`` when ``samples`` is empty."""
    sources = sorted({s.source for s in samples})
    if not sources:
        return None
    by_source = {src: [s for s in samples if s.source == src] for src in sources}
    p = np.array([weights.get(src, 1.0) for src in sources], float)
    if not (np.isfinite(p).all() and (p >= 0).all() and p.sum() > 0):
        raise ValueError(f"source weights must be >= 0 and not all 0, got {dict(zip(sources, p))}")
    p /= p.sum()

    def draw():
        src = sources[rng.choice(len(sources), p=p)]
        pool = by_source[src]
        return pool[rng.integers(len(pool))]
    return draw


def class_balance_weights(samples, num_classes: int):
    """(K,) weights ~ 1/sqrt(cells of that type) over ``samples``, mean 1 (None if no types);
    class k is code k + 1, as a segmentation head of ``num_classes`` learns them."""
    counts = np.zeros(num_classes)
    for s in samples:
        for code in np.unique(s.cell_class):
            if 1 <= code <= num_classes:
                counts[code - 1] += 1
    if not counts.any():
        return None
    w = 1.0 / np.sqrt(np.maximum(counts, 1.0))
    return w * (num_classes / w.sum())


def cell_type_counts(samples, num_classes: int | None = None, *, codes=None) -> np.ndarray:
    """Number of labelled cells (connected regions) of each type in ``samples``: (K,) for
    codes 1..``num_classes`` (a segmentation head), or one per code of ``codes`` (a class
    table's, in its order, gapped codes too)."""
    if codes is None:
        if num_classes is None:
            raise ValueError("cell_type_counts needs num_classes or codes")
        codes = range(1, int(num_classes) + 1)
    codes = [int(c) for c in codes]
    counts = np.zeros(len(codes), np.int64)
    for s in samples:
        present = set(np.unique(s.cell_class).tolist())
        for i, code in enumerate(codes):
            if code in present:
                counts[i] += ndimage.label(s.cell_class == code)[1]
    return counts


def preprocess_samples(samples, method: str = "none") -> list:
    """``samples`` with ``method`` applied to every image at its own resolution, as
    inference applies the model card's preprocessing before resampling.  Done once per
    run (the result is the cache), never per batch."""
    if method not in PREPROCESSING:
        raise ValueError(f"preprocess must be one of {PREPROCESSING}, got {method!r}")
    if method == "none":
        return list(samples)
    from ...core.preprocessing import ahe_retinex

    out = []
    for s in samples:
        p = s.with_arrays(ahe_retinex(s.image), s.semantic, s.cell_class)
        p.meta["preprocess"] = method
        out.append(p)
    return out


def _element(draw, mosaic_draw, config, rng):
    jitter = config.scale_jitter
    if mosaic_draw is not None and config.mosaic_fraction > 0 and \
            rng.random() < config.mosaic_fraction:
        # Zhu et al. 2023: single-cell images stitched g x g; here at the native scale,
        # one cell-centred tile per image, then cropped like any other sample
        grid = int(config.mosaic_grids[int(rng.integers(len(config.mosaic_grids)))])
        tiles = [resample_to_native(mosaic_draw(), jitter=jitter, rng=rng)
                 for _ in range(grid * grid)]
        s = mosaic(tiles, grid, grid * MOSAIC_TILE, rng, mode="crop")
    else:
        s = resample_to_native(draw(), jitter=jitter, rng=rng)
    return augment(random_crop(s, config.crop, rng), rng, **config.augment)


def make_batch(draw, config, rng, mosaic_draw=None):
    """A numpy batch (:func:`~.augment.to_batch`) of ``config.batch_size`` augmented crops;
    each is a mosaic of single cells from ``mosaic_draw`` with probability
    ``config.mosaic_fraction`` (when ``mosaic_draw`` is given)."""
    return to_batch([_element(draw, mosaic_draw, config, rng)
                     for _ in range(config.batch_size)])
