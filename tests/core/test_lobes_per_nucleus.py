"""The lobes measured per nucleus in its bounding box equal those of one distance
transform over the whole image (the definition), touching nuclei and border ones too."""
import cv2
import numpy as np
import pytest

from napari_wbcseg.core.measurements import LOBE_CORE_RATIO, _lobes
from napari_wbcseg.core.synthetic import synthetic_smear


def whole_image_lobes(nucleus: np.ndarray, n: int) -> np.ndarray:
    """The reference: every nucleus at once, one distance transform of the image."""
    nuc = nucleus.astype(np.int64)
    inside = nuc > 0
    inside[:, :-1] &= nuc[:, :-1] == nuc[:, 1:]
    inside[:, 1:] &= nuc[:, 1:] == nuc[:, :-1]
    inside[:-1] &= nuc[:-1] == nuc[1:]
    inside[1:] &= nuc[1:] == nuc[:-1]
    dist = cv2.distanceTransform(np.pad(inside, 1).astype(np.uint8), cv2.DIST_L2,
                                 cv2.DIST_MASK_PRECISE)[1:-1, 1:-1]
    peak = np.zeros(n)
    np.maximum.at(peak, nuc[inside], dist[inside])
    core = inside & (dist > LOBE_CORE_RATIO * peak[nuc])
    ncomp, comp = cv2.connectedComponents(core.astype(np.uint8), connectivity=8)
    lobes = np.zeros(n, np.int64)
    owner = np.zeros(ncomp, np.int64)
    owner[comp[core]] = nuc[core]
    np.add.at(lobes, owner[1:], 1)
    lobes[(np.bincount(nuc.ravel(), minlength=n) > 0) & (lobes == 0)] = 1
    lobes[0] = 0
    return lobes


def _cases():
    for seed in range(4):
        yield f"smear {seed}", synthetic_smear(shape=(300, 400), n_wbc=6, seed=seed).nucleus
    blocks = np.zeros((60, 80), np.int32)
    blocks[:20, :30], blocks[20:40, :30], blocks[5:15, 30:60] = 5, 6, 7  # touching, on the border
    blocks[40:, 50:] = 9
    yield "touching blocks", blocks
    rng = np.random.default_rng(1)
    noise = (rng.random((120, 150)) < 0.6) * rng.integers(1, 9, (120, 150))
    yield "label noise", noise.astype(np.int32)  # every pixel next to another label
    blocky = np.kron(rng.integers(0, 6, (30, 38)), np.ones((4, 4), np.int64))
    yield "blocky labels", blocky.astype(np.int32)  # labels of many separate parts


@pytest.mark.parametrize("name, nucleus", list(_cases()), ids=[c[0] for c in _cases()])
def test_per_nucleus_lobes_equal_the_whole_image_definition(name, nucleus):
    n = int(nucleus.max()) + 2  # an id without pixels too
    expected = whole_image_lobes(nucleus, n)
    assert np.array_equal(_lobes(nucleus, n), expected)
    if name == "blocky labels":
        assert expected.max() >= 2  # nuclei of several lobes are among the cases
