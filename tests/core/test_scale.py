"""Cell-diameter estimation from the image itself (core.scale)."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from napari_wbcseg.core.image import ImageFormatError
from napari_wbcseg.core.scale import (ScaleCues, diameter_from_cues, estimate_cell_diameter,
                                      scale_cues)
from napari_wbcseg.core.synthetic import synthetic_smear
from napari_wbcseg.io.imread import read_image

PIXEL_SIZES = (0.15, 0.2, 0.3)


def equivalent_diameter(mask: np.ndarray) -> float:
    return float(np.sqrt(4 * mask.sum() / np.pi))


@pytest.fixture(scope="module")
def smears():
    return {px: synthetic_smear(pixel_size_um=px, seed=3, n_wbc=3) for px in PIXEL_SIZES}


def synthetic_truth(sm) -> float:
    cell = np.maximum(sm.nucleus, sm.cytoplasm)
    return float(np.median([equivalent_diameter(cell == i) for i in sm.classes]))


def test_synthetic_smears_within_30_percent_and_monotonic(smears):
    estimates = []
    for px in PIXEL_SIZES:
        truth = synthetic_truth(smears[px])
        est = estimate_cell_diameter(smears[px].image)
        assert est is not None, px
        assert abs(np.log(est / truth)) < np.log(1.3), (px, est, truth)
        estimates.append(est)
    assert estimates[0] > estimates[1] > estimates[2]  # coarser pixels, smaller cells


def test_estimate_follows_image_resizing(smears):
    img = smears[0.2].image
    est = estimate_cell_diameter(img)
    big = cv2.resize(img, None, fx=1.5, fy=1.5, interpolation=cv2.INTER_LINEAR)
    assert estimate_cell_diameter(big) == pytest.approx(1.5 * est, rel=0.15)


def test_bcisc_full_field_within_30_percent(shared_data):
    base = shared_data / "BCISC" / "original-images" / "neut"
    img, mask = read_image(base / "1-1.jpg")[..., :3], read_image(base / "1-1.png")
    if mask.ndim == 3:
        mask = cv2.cvtColor(mask[..., :3], cv2.COLOR_RGB2GRAY)
    truth = equivalent_diameter(mask > 127)
    cues = scale_cues(img)
    assert cues.rbc_diameter is not None and cues.n_rbc >= 8  # a field full of red cells
    est = estimate_cell_diameter(img)
    assert est is not None and abs(np.log(est / truth)) < np.log(1.3), (est, truth)


def test_dataset2_crop_within_30_percent(shared_data):
    base = shared_data / "segmentation_WBC" / "Dataset 2"
    img, mask = read_image(base / "010.bmp")[..., :3], read_image(base / "010.png")
    mask = mask[..., 0] if mask.ndim == 3 else mask
    _, _, st, _ = cv2.connectedComponentsWithStats((mask >= 64).astype(np.uint8))
    truth = float(np.sqrt(4 * st[1:, cv2.CC_STAT_AREA].max() / np.pi))
    est = estimate_cell_diameter(img)
    assert est is not None and abs(np.log(est / truth)) < np.log(1.3), (est, truth)


@pytest.mark.parametrize("value", [0, 128, 255])
def test_flat_image_gives_none(value):
    assert estimate_cell_diameter(np.full((300, 400, 3), value, np.uint8)) is None


@pytest.mark.parametrize("shape", [(256, 256, 3), (1536, 2048, 3), (200, 300)])
def test_pure_noise_gives_none(rng, shape):
    assert estimate_cell_diameter(rng.integers(0, 256, shape, dtype=np.uint8)) is None


def test_gaussian_noise_and_gradient_give_none(rng):
    noise = np.clip(rng.normal(180, 25, (400, 400, 3)), 0, 255).astype(np.uint8)
    assert estimate_cell_diameter(noise) is None
    ramp = np.repeat(np.linspace(0, 255, 400, dtype=np.float32)[None, :, None], 300, 0)
    assert estimate_cell_diameter(np.repeat(ramp, 3, 2).astype(np.uint8)) is None


def test_other_image_kinds_are_accepted(smears):
    img = smears[0.2].image
    est = estimate_cell_diameter(img)
    rgba = np.dstack([img, np.full(img.shape[:2], 255, np.uint8)])
    assert estimate_cell_diameter(rgba) == pytest.approx(est)
    assert estimate_cell_diameter(img.astype(np.uint16) * 257) == pytest.approx(est, rel=0.05)
    grey_img = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)
    grey = estimate_cell_diameter(grey_img)
    # a grey image is read as RGB with three equal channels
    assert grey is not None and grey == pytest.approx(
        estimate_cell_diameter(np.dstack([grey_img] * 3)))
    assert est / 1.5 < grey < est * 1.5  # without colour: less precise, the same cells


@pytest.mark.parametrize("bad", [
    np.zeros((64, 64, 3), np.float32),  # floating point
    np.zeros((64, 64, 5), np.uint8),  # 5 channels
    np.zeros((4, 64, 3), np.uint8),  # too small
    np.zeros((2, 64, 64, 3), np.uint8),  # a stack
    np.zeros((64, 64), bool),
])
def test_bad_input_is_refused(bad):
    with pytest.raises(ImageFormatError):
        estimate_cell_diameter(bad)


def test_negative_signed_image_is_refused():
    with pytest.raises(ImageFormatError):
        estimate_cell_diameter(np.full((32, 32, 3), -1, np.int16))


def test_cues_and_their_combination(smears):
    cues = scale_cues(smears[0.2].image)
    assert isinstance(cues, ScaleCues) and cues.work_scale == pytest.approx(640 / 1024)
    assert cues.rbc_diameter is not None and cues.wbc_diameters
    assert diameter_from_cues(ScaleCues(None, 0, (), 1.0)) is None
    assert diameter_from_cues(ScaleCues(10.0, 20, (), 1.0), 2.0, 1.0) == pytest.approx(20.0)
    assert diameter_from_cues(ScaleCues(None, 0, (30.0, 50.0), 1.0), 2.0, 1.0) == \
        pytest.approx(40.0)
    assert diameter_from_cues(ScaleCues(10.0, 20, (80.0,), 1.0), 2.0, 1.0) == pytest.approx(40.0)
