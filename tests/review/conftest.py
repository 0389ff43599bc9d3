"""A small project with a 14-class table and two hand-made fields (no model, no data)."""
import numpy as np
import pytest

from napari_wbcseg.io.project import save_image_entry
from napari_wbcseg.schema import UNIDENTIFIED, CellClass

CLASSES14 = tuple(CellClass(k, f"class {k}", "#%06x" % (k * 0x101010)) for k in range(1, 15)) + (
    CellClass(UNIDENTIFIED, "unidentified", "#a0a0a0"),)


def _cell(arrays, cell_id, code, rows, cols, nucleus_rows):
    """A square cell: nucleus on ``nucleus_rows``, cytoplasm on the rest of the square."""
    nuc, cyt, ct = arrays
    cyt[rows, cols] = cell_id
    nuc[nucleus_rows, cols] = cell_id
    cyt[nucleus_rows, cols] = 0
    ct[rows, cols] = code


def field_a():
    """Four cells: codes 1 and 13 inside, 14 cut by the left border, 255 inside."""
    arrays = (np.zeros((30, 40), np.uint16), np.zeros((30, 40), np.uint16),
              np.zeros((30, 40), np.uint8))
    _cell(arrays, 1, 1, slice(2, 8), slice(10, 16), slice(4, 6))
    _cell(arrays, 2, 13, slice(12, 18), slice(10, 16), slice(14, 16))
    _cell(arrays, 3, 14, slice(20, 26), slice(0, 6), slice(22, 24))
    _cell(arrays, 4, UNIDENTIFIED, slice(12, 18), slice(25, 31), slice(14, 16))
    return arrays


def field_b():
    """Two cells inside: codes 1 and 2."""
    arrays = (np.zeros((30, 40), np.uint16), np.zeros((30, 40), np.uint16),
              np.zeros((30, 40), np.uint8))
    _cell(arrays, 1, 1, slice(5, 11), slice(5, 11), slice(7, 9))
    _cell(arrays, 7, 2, slice(15, 21), slice(20, 26), slice(17, 19))
    return arrays


@pytest.fixture
def classes14():
    return CLASSES14


@pytest.fixture
def project(tmp_path):
    """``PROJECT`` with "field A" (cells 1 and 2 reviewed) and "field B" (fully reviewed)."""
    folder = tmp_path / "PROJECT"
    image = np.full((30, 40, 3), 200, np.uint8)
    save_image_entry(folder, "field A", image, *field_a(), classes=CLASSES14,
                     reviewed_cells=[1, 2])
    save_image_entry(folder, "field B", image, *field_b(), reviewed=True)
    return folder


@pytest.fixture
def fields():
    """The label arrays of "field A" and "field B"."""
    return field_a(), field_b()
