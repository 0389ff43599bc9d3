"""The per-cell table measured on the cells' bounding box equals the one measured on the
whole image: areas, perimeters, centroids, lobes and border flags, cells on every edge
of the image and scattered ones too."""
import numpy as np
import pandas as pd
import pytest

from napari_wbcseg.core import measurements
from napari_wbcseg.core.measurements import cell_table
from napari_wbcseg.core.synthetic import synthetic_smear


def _field(shape, seed, n_wbc):
    sm = synthetic_smear(shape=shape, n_wbc=n_wbc, seed=seed)
    return sm.nucleus, sm.cytoplasm, sm.cell_type


def _cases():
    yield "one cell in a large field", _field((600, 800), 0, 1)
    yield "a few cells", _field((400, 500), 3, 4)
    nuc = np.zeros((90, 120), np.int32)
    cyto = np.zeros_like(nuc)
    cyto[0:12, 40:60], nuc[3:8, 45:55] = 1, 1  # on the top edge
    cyto[70:90, 100:120], nuc[75:85, 105:115] = 2, 2  # the bottom right corner
    cyto[30:50, 1:15], nuc[35:45, 3:9] = 3, 3  # one column from the left edge
    cyto[40:44, 60:62] = 4  # a tiny cell, no nucleus
    yield "cells on the edges", (nuc, cyto, np.where((nuc > 0) | (cyto > 0), 2, 0))
    inner = np.zeros((50, 60), np.int32)
    inner[20:26, 30:37] = 7  # a nucleus-only cell far from every edge
    yield "one small inner cell", (inner, np.zeros_like(inner), (inner > 0) * 3)


@pytest.mark.parametrize("name, labels", list(_cases()), ids=[c[0] for c in _cases()])
def test_cropped_table_equals_the_whole_image_one(name, labels, monkeypatch):
    nucleus, cytoplasm, cell_type = labels
    conf = {int(i): 0.5 + 0.01 * int(i) for i in np.unique(nucleus)}
    got = cell_table(nucleus, cytoplasm, cell_type, confidence=conf, pixel_size_um=0.1)
    monkeypatch.setattr(measurements, "_crop_to_cells",
                        lambda *arrays: ((0, 0), arrays))  # the whole image, as before
    expected = cell_table(nucleus, cytoplasm, cell_type, confidence=conf, pixel_size_um=0.1)
    assert len(expected) >= 1
    pd.testing.assert_frame_equal(got, expected)
    if name == "cells on the edges":
        assert expected["touches_border"].tolist() == [True, True, False, False]


def test_the_crop_is_small_for_one_cell():
    nucleus, cytoplasm, cell_type = _field((600, 800), 0, 1)
    (y0, x0), (nuc, _, _) = measurements._crop_to_cells(nucleus, cytoplasm, cell_type)
    assert nuc.size < nucleus.size / 10 and (y0, x0) != (0, 0)


@pytest.mark.parametrize("name, labels", list(_cases()), ids=[c[0] for c in _cases()])
def test_centroids_are_skimages_to_the_last_bit(name, labels):
    from skimage.measure import regionprops_table

    nucleus, cytoplasm, cell_type = labels
    table = cell_table(nucleus, cytoplasm, cell_type)
    cells = np.where(nucleus > 0, nucleus, cytoplasm)
    ref = regionprops_table(cells, properties=("label", "centroid"))
    order = np.searchsorted(ref["label"], table.index.to_numpy())
    assert np.array_equal(table["centroid_y"].to_numpy(), ref["centroid-0"][order])
    assert np.array_equal(table["centroid_x"].to_numpy(), ref["centroid-1"][order])
