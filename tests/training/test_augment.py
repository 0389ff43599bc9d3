"""Resampling, crops, augmentation, mosaics and batches keep image and labels together."""
from __future__ import annotations

import numpy as np
import pytest

from napari_wbcseg.training.data.augment import (augment, mosaic, random_crop, resample,
                                            resample_to_native, to_batch)
from napari_wbcseg.training.data.sample import IGNORE, Sample

# colour of each semantic code in the "colour encodes the label" test images
LUT = {0: (230, 220, 200), 1: (40, 200, 60), 2: (60, 40, 220), 3: (200, 60, 200)}
ALLOWED_SEM = {0, 1, 2, 3, IGNORE}
ALLOWED_CLS = {0, 1, 2, 3, 4, 5, IGNORE}


def coded_sample(H=96, W=128, scale=1.0, seed=0) -> Sample:
    """Blocky labels (cells of 3 classes, nucleus inside) and an image painted from them."""
    rng = np.random.default_rng(seed)
    sem = np.zeros((H, W), np.uint8)
    cls = np.zeros((H, W), np.uint8)
    yy, xx = np.mgrid[0:H, 0:W]
    for k, code in enumerate((1, 2, 3)):
        cy, cx = rng.uniform(0.25, 0.75) * H, (k + 0.5) * W / 3
        r = min(H, W) / 7
        d = np.hypot(yy - cy, xx - cx)
        cell = d < r
        sem[cell] = 1 if k != 2 else 3
        sem[(d < r / 2) & (k != 2)] = 2
        cls[cell] = code
    sem[:4, :4] = IGNORE
    cls[:4, :4] = IGNORE
    image = np.zeros((H, W, 3), np.uint8)
    for code, colour in LUT.items():
        image[sem == code] = colour
    image[sem == IGNORE] = (0, 0, 0)
    return Sample(image, sem, cls, "toy", f"toy-{seed}", f"toy-{seed}", scale=scale)


def _colour_agreement(s: Sample) -> float:
    """Fraction of known-label pixels whose colour is nearest to their label's colour."""
    cols = np.array([LUT[c] for c in sorted(LUT)], np.float32)
    dist = np.linalg.norm(s.image[..., None, :].astype(np.float32) - cols, axis=-1)
    nearest = np.array(sorted(LUT))[dist.argmin(-1)]
    known = s.semantic != IGNORE
    return float((nearest[known] == s.semantic[known]).mean())


def _check_values(s: Sample):
    assert s.image.dtype == np.uint8 and s.semantic.dtype == np.uint8
    assert set(np.unique(s.semantic)) <= ALLOWED_SEM
    assert set(np.unique(s.cell_class)) <= ALLOWED_CLS
    cell = (s.semantic >= 1) & (s.semantic <= 3)
    assert np.all(s.cell_class[cell] > 0)  # labels moved together: cells keep a class
    assert np.all(s.cell_class[s.semantic == 0] == 0)


def test_resample_to_native():
    s = coded_sample(100, 120, scale=0.5)
    n = resample_to_native(s)
    assert n.shape == (50, 60) and n.scale == pytest.approx(1.0)
    assert s.shape == (100, 120)  # input untouched
    _check_values(n)
    up = resample_to_native(coded_sample(40, 50, scale=2.0))
    assert up.shape == (80, 100) and set(np.unique(up.semantic)) <= ALLOWED_SEM
    j = resample_to_native(s, jitter=0.2, rng=np.random.default_rng(1))
    f = j.shape[0] / 100
    assert 0.5 * np.exp(-0.2) - 0.02 <= f <= 0.5 * np.exp(0.2) + 0.02
    assert j.scale * f == pytest.approx(0.5, rel=0.05)
    assert resample(s, 1.0).shape == s.shape


def test_random_crop_shapes_padding_and_bias():
    rng = np.random.default_rng(0)
    s = coded_sample(96, 128)
    c = random_crop(s, 64, rng)
    assert c.shape == (64, 64)
    _check_values(c)
    big = random_crop(s, (160, 200), rng)  # larger than the image: padded
    assert big.shape == (160, 200)
    known = big.semantic != IGNORE
    assert known.sum() == (s.semantic != IGNORE).sum()  # labels padded with 255 only
    assert (big.cell_class[~known] == IGNORE).all()
    # the image is reflected, not black, in the padding
    assert big.image[~known].mean() > 100
    # crops contain cells most of the time
    hits = [((random_crop(s, 32, rng).semantic % 255) > 0).any() for _ in range(100)]
    assert np.mean(hits) > 0.75
    # a tiny image (smaller than the reflection) still pads
    tiny = Sample(np.full((3, 2, 3), 7, np.uint8), np.ones((3, 2), np.uint8),
                  np.ones((3, 2), np.uint8), "t", "t", "t")
    out = random_crop(tiny, 16, rng)
    assert out.shape == (16, 16) and (out.semantic == 1).sum() == 6


def test_augment_moves_image_and_labels_together():
    rng = np.random.default_rng(0)
    s = coded_sample(128, 128)
    geometric_only = dict(blur=0, gamma=None, brightness=0, contrast=0, hue=0, saturation=0,
                          noise=0)
    for i in range(12):
        a = augment(s, rng, elastic=(i % 3 == 0), **geometric_only)
        assert a.shape == s.shape
        _check_values(a)
        assert _colour_agreement(a) > 0.97
    assert _colour_agreement(s) == 1.0


def test_augment_photometric_only_touches_the_image():
    rng = np.random.default_rng(1)
    s = coded_sample(64, 64)
    a = augment(s, rng, flips=False, rot90=False, rotate=False, zoom=None, shear=0,
                blur=1.0, gamma=(0.5, 2.0), brightness=0.2, contrast=0.3, hue=0.1,
                saturation=0.3)
    assert np.array_equal(a.semantic, s.semantic) and np.array_equal(a.cell_class, s.cell_class)
    assert not np.array_equal(a.image, s.image)
    # a full-strength geometric transform puts 255 into the new border of the labels
    r = augment(s, np.random.default_rng(2), flips=False, rot90=False, rotate=45, zoom=(0.7, 0.7))
    assert (r.semantic == IGNORE).mean() > 0.2 and (r.cell_class == IGNORE).mean() > 0.2
    # reproducible with the same seed, different with another
    a2 = augment(s, np.random.default_rng(5))
    assert np.array_equal(a2.image, augment(s, np.random.default_rng(5)).image)
    assert not np.array_equal(a2.image, augment(s, np.random.default_rng(6)).image)


def test_augment_non_square_keeps_shape():
    s = coded_sample(64, 96)
    for seed in range(4):
        a = augment(s, np.random.default_rng(seed))
        assert a.shape == (64, 96)
        _check_values(a)



ONLY_GEOMETRY = dict(flips=False, rot90=False, rotate=False, zoom=None, shear=0, blur=0,
                     gamma=None, brightness=0, contrast=0, hue=0, saturation=0, noise=0)


def _centroid(mask):
    ys, xs = np.nonzero(mask)
    return ys.mean(), xs.mean()


def _centred_cell(size=128) -> Sample:
    yy, xx = np.mgrid[0:size, 0:size]
    d = np.hypot(yy - size / 2, xx - size / 2 - 5)
    sem = np.where(d < 20, 1, 0).astype(np.uint8)
    sem[d < 9] = 2
    cls = np.where(sem > 0, 2, 0).astype(np.uint8)
    image = np.zeros((size, size, 3), np.uint8)
    for code, colour in LUT.items():
        image[sem == code] = colour
    return Sample(image, sem, cls, "toy", "toy", "toy")


def test_shift_translates_image_and_labels_within_the_range():
    s = _centred_cell()  # stays whole inside the frame under any shift of up to 20 %
    nucleus = _centroid(s.semantic == 2)
    moves = []
    for seed in range(20):
        a = augment(s, np.random.default_rng(seed), shift=0.2, **ONLY_GEOMETRY)
        _check_values(a)
        assert _colour_agreement(a) > 0.97  # the image moved with its labels
        dy, dx = np.subtract(_centroid(a.semantic == 2), nucleus)
        assert abs(dy) <= 0.2 * 128 + 1 and abs(dx) <= 0.2 * 128 + 1
        moves.append((dy, dx))
        # a pure translation: the shifted labels equal the original ones, moved
        iy, ix = int(round(dy)), int(round(dx))
        src = s.semantic[max(0, -iy):128 - max(0, iy), max(0, -ix):128 - max(0, ix)]
        dst = a.semantic[max(0, iy):128 - max(0, -iy), max(0, ix):128 - max(0, -ix)]
        known = dst != IGNORE
        assert (src[known] == dst[known]).mean() > 0.97
    moves = np.array(moves)
    assert np.abs(moves).max() > 10 and moves.std(axis=0).min() > 5  # both axes, both ways
    assert (moves > 0).any(axis=0).all() and (moves < 0).any(axis=0).all()
    # the border uncovered by the shift is unknown in the labels
    a = augment(s, np.random.default_rng(0), shift=0.2, **ONLY_GEOMETRY)
    assert (a.semantic == IGNORE).sum() > 0.02 * a.semantic.size
    # no shift: the random stream and the result are those of before shifts existed
    c = coded_sample(128, 128)
    b, c = (augment(c, np.random.default_rng(7), **kw) for kw in ({}, {"shift": 0.0}))
    assert np.array_equal(b.image, c.image) and np.array_equal(b.semantic, c.semantic)


def test_single_axis_flips():
    s = coded_sample(64, 96)
    off = {k: v for k, v in ONLY_GEOMETRY.items() if k != "flips"}
    lr, ud = s.semantic[:, ::-1], s.semantic[::-1]
    h = {augment(s, np.random.default_rng(i), flips="h", **off).semantic.tobytes()
         for i in range(16)}
    v = {augment(s, np.random.default_rng(i), flips="v", **off).semantic.tobytes()
         for i in range(16)}
    assert h == {s.semantic.tobytes(), lr.tobytes()}
    assert v == {s.semantic.tobytes(), ud.tobytes()}
    with pytest.raises(ValueError, match="flips"):
        augment(s, np.random.default_rng(0), flips="diagonal")

@pytest.mark.parametrize("grid", [2, 3, 4])
@pytest.mark.parametrize("mode", ["crop", "resize"])
def test_mosaic(grid, mode):
    rng = np.random.default_rng(grid)
    samples = [coded_sample(96, 128, seed=i) for i in range(5)]
    m = mosaic(samples, grid, 192, rng, mode=mode)
    assert m.shape == (192, 192) and m.source == "mosaic"
    _check_values(m)
    assert _colour_agreement(m) > 0.95
    assert ((m.semantic >= 1) & (m.semantic <= 3)).any()
    assert len(m.meta["tiles"]) == grid * grid
    assert set(m.group.removeprefix("mosaic:").split("+")) <= {s.group for s in samples}
    if mode == "resize":
        assert m.scale > 1.0  # tiles were shrunk: cells are smaller than native


def test_to_batch():
    samples = [random_crop(coded_sample(seed=i), 64, np.random.default_rng(i)) for i in range(3)]
    b = to_batch(samples)
    assert b["image"].shape == (3, 3, 64, 64) and b["image"].dtype == np.float32
    assert 0.0 <= b["image"].min() and b["image"].max() <= 1.0
    assert b["semantic"].shape == (3, 64, 64) and b["semantic"].dtype == np.int64
    assert b["cell_class"].dtype == np.int64
    assert np.array_equal(b["image"][1].transpose(1, 2, 0),
                          samples[1].image.astype(np.float32) / 255)
    assert np.array_equal(b["semantic"][2], samples[2].semantic)
    with pytest.raises(ValueError):
        to_batch([coded_sample(64, 64), coded_sample(64, 80)])
    with pytest.raises(ValueError):
        to_batch([])
