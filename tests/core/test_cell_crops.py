"""Cells -> fixed-scale 5-channel crops, including the awkward cells."""
import numpy as np
import pytest

from napari_wbcseg.core.cell_crops import cell_crops


def _disc(shape, centre, radius, cid=1, nucleus_radius=None):
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    d = np.hypot(yy - centre[0], xx - centre[1])
    nuc = np.where(d <= (nucleus_radius or radius / 2), cid, 0).astype(np.uint16)
    cyt = np.where((d <= radius) & (nuc == 0), cid, 0).astype(np.uint16)
    return nuc, cyt


def _image(shape, seed=0):
    return np.random.default_rng(seed).integers(0, 255, (*shape, 3), dtype=np.uint8)


def test_crop_is_centred_at_the_native_scale():
    nuc, cyt = _disc((300, 400), (150, 200), 60)  # diameter 120 px
    out = cell_crops(_image((300, 400)), nuc, cyt, scale=80 / 120, size=128)
    assert out.crops.shape == (1, 5, 128, 128) and out.crops.dtype == np.uint8
    cell = (out.crops[0, 3] > 127) | (out.crops[0, 4] > 127)
    rows, cols = np.nonzero(cell)
    assert abs(rows.mean() - 63.5) < 1.5 and abs(cols.mean() - 63.5) < 1.5
    diameter = 2 * np.sqrt(cell.sum() / np.pi)
    assert abs(diameter - 80) < 3  # 120 px * (80 / 120)
    assert out.flags == {} and out.skipped == {}


def test_cell_cut_by_the_border_is_flagged_and_still_cropped():
    nuc, cyt = _disc((200, 200), (10, 100), 40)
    out = cell_crops(_image((200, 200)), nuc, cyt, size=96)
    assert out.ids.tolist() == [1] and out.flags[1] == ["border"]


def test_huge_cell_is_shrunk_into_the_window_and_tiny_one_skipped():
    nuc, cyt = _disc((1200, 1200), (600, 600), 250)  # 500 px across at scale 1
    small_n, small_c = _disc((1200, 1200), (50, 50), 2, cid=2, nucleus_radius=1)
    nuc, cyt = nuc + small_n, cyt + small_c
    out = cell_crops(_image((1200, 1200)), nuc, cyt, scale=1.0, size=128)
    assert out.ids.tolist() == [1] and out.flags[1] == ["shrunk"]
    assert out.skipped == {2: "too_small"}
    cell = (out.crops[0, 3] > 127) | (out.crops[0, 4] > 127)
    assert cell[0].sum() == 0 and cell[-1].sum() == 0  # the whole cell fits


def test_masks_that_disagree_with_the_image_are_refused():
    nuc, cyt = _disc((100, 100), (50, 50), 20)
    with pytest.raises(ValueError, match="disagree with the image size"):
        cell_crops(_image((100, 120)), nuc, cyt)
    with pytest.raises(ValueError, match="RGB"):
        cell_crops(np.zeros((100, 100), np.uint8), nuc, cyt)
    with pytest.raises(ValueError, match="scale"):
        cell_crops(_image((100, 100)), nuc, cyt, scale=0)


def test_only_requested_ids_and_no_cells():
    nuc, cyt = _disc((200, 200), (60, 60), 20)
    n2, c2 = _disc((200, 200), (140, 140), 20, cid=2)
    out = cell_crops(_image((200, 200)), nuc + n2, cyt + c2, ids=[2])
    assert out.ids.tolist() == [2]
    empty = cell_crops(_image((50, 50)), np.zeros((50, 50), np.uint16),
                       np.zeros((50, 50), np.uint16), size=64)
    assert empty.crops.shape == (0, 5, 64, 64)


def test_bad_sizes_dtypes_and_huge_ids():
    nuc, cyt = _disc((100, 100), (50, 50), 20)
    img = _image((100, 100))
    for size in (0, -4, 8, 128.0):
        with pytest.raises(ValueError, match="size must be an integer"):
            cell_crops(img, nuc, cyt, size=size)
    with pytest.raises(ValueError, match="integer label images"):
        cell_crops(img, nuc.astype(float), cyt.astype(float))
    with pytest.raises(ValueError, match="scale"):
        cell_crops(img, nuc, cyt, scale="2")
    big = 2 ** 31 - 1  # one cell with a huge id: no allocation per id
    out = cell_crops(img, np.where(nuc > 0, big, 0).astype(np.int64),
                     np.where(cyt > 0, big, 0).astype(np.int64), size=64)
    assert out.ids.tolist() == [big] and out.crops.shape == (1, 5, 64, 64)
