"""Synthetic smear: schema, determinism, morphology, colours and placement."""
from __future__ import annotations


import cv2
import numpy as np
import pytest
from skimage.measure import label, regionprops

from napari_wbcseg.core.synthetic import SyntheticSmear, synthetic_smear
from napari_wbcseg.schema import check_labels

NEUT, LYMPH, MONO, EOS, BASO = 1, 2, 3, 4, 5


@pytest.fixture(scope="module")
def smear() -> SyntheticSmear:
    return synthetic_smear()


@pytest.fixture(scope="module")
def clean() -> SyntheticSmear:
    """No red cells, even light, no noise: colours and outlines can be read off directly."""
    return synthetic_smear((512, 640), n_wbc=10, seed=7, rbc_density=0.0, illumination=0.0,
                           noise=0.0)


def cell_ids(s):
    return np.where(s.nucleus > 0, s.nucleus, s.cytoplasm)


def dilate(mask, px):
    k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * px + 1, 2 * px + 1))
    return cv2.dilate(mask.astype(np.uint8), k) > 0


def contacts(s, px):
    """Pairs of cell ids closer than ``px`` pixels."""
    ids, out = cell_ids(s), set()
    for k in s.classes:
        near = np.unique(ids[dilate(ids == k, px)])
        out |= {(k, int(j)) for j in near if j not in (0, k)}
    return out


def dice(a, b):
    return 2 * (a & b).sum() / (a.sum() + b.sum())


def test_schema_dtypes_and_shapes(smear):
    check_labels(smear.nucleus, smear.cytoplasm, smear.cell_type)
    assert smear.image.shape == (768, 1024, 3) and smear.image.dtype == np.uint8
    assert smear.nucleus.dtype == np.uint16 and smear.cytoplasm.dtype == np.uint16
    assert smear.cell_type.dtype == np.uint8
    assert smear.nucleus.shape == smear.cytoplasm.shape == smear.cell_type.shape == (768, 1024)
    assert smear.pixel_size_um == 0.2
    assert set(np.unique(smear.nucleus)) == set(range(6))
    assert set(np.unique(smear.cytoplasm)) == set(range(6))


def test_default_has_one_of_each_class(smear):
    assert smear.classes == {1: 1, 2: 2, 3: 3, 4: 4, 5: 5}
    ids = cell_ids(smear)
    for k, code in smear.classes.items():
        assert set(np.unique(smear.cell_type[ids == k])) == {code}


def test_classes_argument_used_in_order_and_repeated():
    s = synthetic_smear((384, 512), n_wbc=4, seed=1, classes=[LYMPH, EOS], rbc_density=0.2)
    assert s.classes == {1: LYMPH, 2: EOS, 3: LYMPH, 4: EOS}
    check_labels(s.nucleus, s.cytoplasm, s.cell_type)
    assert synthetic_smear((128, 128), n_wbc=0).nucleus.max() == 0


def test_same_seed_same_smear_other_seed_differs():
    a, b = (synthetic_smear((256, 320), n_wbc=2, seed=11) for _ in range(2))
    c = synthetic_smear((256, 320), n_wbc=2, seed=12)
    for name in ("image", "nucleus", "cytoplasm", "cell_type"):
        assert np.array_equal(getattr(a, name), getattr(b, name))
    assert not np.array_equal(a.image, c.image)
    assert not np.array_equal(a.nucleus, c.nucleus)


def test_cells_inside_image_connected_with_nucleus_inside(smear, clean):
    for s in (smear, clean):
        ids = cell_ids(s)
        assert not ids[[0, -1]].any() and not ids[:, [0, -1]].any()
        for k in s.classes:
            cell, nuc = ids == k, s.nucleus == k
            assert label(cell).max() == 1
            assert (s.cytoplasm == k).sum() > 0.1 * cell.sum()
            assert cell[dilate(nuc, 1)].all(), f"nucleus of cell {k} reaches its membrane"


def test_sizes_are_plausible(clean, smear):
    diam = {NEUT: (10, 12), LYMPH: (7, 10), MONO: (14, 18), EOS: (12, 14), BASO: (10, 13)}
    areas = {c: [] for c in diam}
    for s in (clean, smear):
        ids = cell_ids(s)
        for k, code in s.classes.items():
            area = (ids == k).sum()
            d_um = 2 * np.sqrt(area / np.pi) * s.pixel_size_um
            lo, hi = diam[code]
            assert 0.85 * lo <= d_um <= 1.1 * hi, (code, d_um)
            areas[code].append(area)
            if code == LYMPH:  # the nucleus fills most of a lymphocyte
                assert (s.nucleus == k).sum() > 0.5 * area
    assert np.mean(areas[LYMPH]) < np.mean(areas[NEUT]) < np.mean(areas[MONO])


def test_pixel_size_scales_cells():
    a = synthetic_smear((512, 512), n_wbc=1, classes=[NEUT], seed=3, pixel_size_um=0.2)
    b = synthetic_smear((512, 512), n_wbc=1, classes=[NEUT], seed=3, pixel_size_um=0.4)
    ratio = (cell_ids(a) > 0).sum() / (cell_ids(b) > 0).sum()
    assert 3.0 < ratio < 5.3


def test_neutrophil_nucleus_is_lobed():
    s = synthetic_smear((640, 800), n_wbc=10, seed=5, rbc_density=0.1)
    solidity = {NEUT: [], LYMPH: []}
    for k, code in s.classes.items():
        if code in solidity:
            (p,) = regionprops((s.nucleus == k).astype(np.uint8))
            solidity[code].append(p.solidity)
    assert max(solidity[NEUT]) < min(solidity[LYMPH])
    assert min(solidity[LYMPH]) > 0.9


def test_no_contact_unless_touching(smear):
    assert not contacts(smear, 3)
    t = synthetic_smear((640, 800), n_wbc=6, seed=2, touching=True)
    check_labels(t.nucleus, t.cytoplasm, t.cell_type)
    touch = contacts(t, 1)
    assert {(1, 2), (3, 4), (5, 6)} <= touch
    ids = cell_ids(t)
    for k in t.classes:
        assert label(ids == k).max() == 1
        assert t.cell_type[ids == k].min() == t.classes[k]


def test_colours_nucleus_cytoplasm_background(clean):
    img = clean.image.astype(np.float64)
    grey = img.mean(2)
    ids = cell_ids(clean)
    bg = grey[~dilate(ids > 0, 4)].mean()
    for k, code in clean.classes.items():
        nuc, cyto = grey[clean.nucleus == k].mean(), grey[clean.cytoplasm == k].mean()
        if code != BASO:  # basophil granules darken both alike
            assert nuc < cyto - 20, (code, nuc, cyto)
        assert cyto < bg - 10, (code, cyto, bg)
    assert bg > 215

    def redness(code):
        m = np.isin(clean.cytoplasm, [k for k, c in clean.classes.items() if c == code])
        return (img[m, 0] - img[m, 2]).mean()

    assert redness(EOS) > redness(NEUT) + 15
    assert redness(LYMPH) < 0  # sky-blue rim


def test_drawing_matches_ground_truth(clean):
    """With no red cells and even light, thresholds recover the labels almost exactly."""
    img = clean.image.astype(np.float64)
    ids = cell_ids(clean)
    drawn_cell = np.abs(img - np.median(img[ids == 0], 0)).max(2) > 12
    assert dice(drawn_cell, ids > 0) > 0.97
    not_baso = ~np.isin(ids, [k for k, c in clean.classes.items() if c == BASO])
    drawn_nuc = (img[..., 1] < 120) & not_baso
    assert dice(drawn_nuc, (clean.nucleus > 0) & not_baso) > 0.9


def test_illumination_and_noise():
    flat = synthetic_smear((256, 256), n_wbc=0, rbc_density=0.0, illumination=0.0, noise=0.0)
    uneven = synthetic_smear((256, 256), n_wbc=0, rbc_density=0.0, illumination=0.5, noise=0.0)
    noisy = synthetic_smear((256, 256), n_wbc=0, rbc_density=0.0, illumination=0.0, noise=4.0)
    f = flat.image.astype(float).mean(2)
    assert f.std() < 1.0 and f.min() > 220
    assert uneven.image.astype(float).mean(2).std() > 8
    assert 3.0 < (noisy.image.astype(float) - flat.image).std() < 5.0
    assert (synthetic_smear((256, 256), n_wbc=0, rbc_density=0.55).image.mean(2) < 200).mean() > 0.2


def test_too_many_cells_raise():
    with pytest.raises(ValueError, match="do not fit"):
        synthetic_smear((96, 96), n_wbc=5)
    with pytest.raises(ValueError, match="do not fit"):
        synthetic_smear((300, 300), n_wbc=40, touching=True)


@pytest.mark.parametrize("kwargs", [
    dict(n_wbc=-1), dict(n_wbc=2.5), dict(classes=[6]), dict(classes=[]), dict(shape=(10,)),
    dict(shape=(16, 16)), dict(pixel_size_um=0.0), dict(pixel_size_um=5.0), dict(rbc_density=1.5),
    dict(illumination=-0.1), dict(noise=-1.0),
])
def test_bad_arguments_raise(kwargs):
    with pytest.raises(ValueError):
        synthetic_smear(**kwargs)
