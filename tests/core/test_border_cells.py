"""Cells cut by the image border: flagged in the table, left out of the differential."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from napari_wbcseg.core.measurements import cell_table, differential_count
from napari_wbcseg.schema import UNIDENTIFIED


def _field():
    """Cell 1 (neutrophil) inside; 2 (neutrophil) on the top row; 3 (lymphocyte) on the
    right column; 4 (basophil) on the bottom-left corner; 5 (monocyte) one pixel in."""
    nucleus = np.zeros((40, 50), np.uint16)
    cytoplasm = np.zeros_like(nucleus)
    cell_type = np.zeros((40, 50), np.uint8)
    for cid, (rows, cols), code in ((1, (slice(10, 20), slice(10, 20)), 1),
                                    (2, (slice(0, 5), slice(25, 32)), 1),
                                    (3, (slice(20, 28), slice(44, 50)), 2),
                                    (4, (slice(34, 40), slice(0, 6)), 5),
                                    (5, (slice(1, 8), slice(1, 8)), 3)):
        cytoplasm[rows, cols] = cid
        cell_type[rows, cols] = code
    nucleus[12:16, 12:16] = 1
    nucleus[0:2, 27:30] = 2  # only the nucleus reaches the border: still cut
    cytoplasm[0:2, 27:30] = 0
    return nucleus, cytoplasm, cell_type


def test_touches_border_flag():
    t = cell_table(*_field())
    assert t["touches_border"].dtype == bool
    assert t["touches_border"].to_dict() == {1: False, 2: True, 3: True, 4: True, 5: False}
    assert cell_table(*(np.zeros((5, 5), np.uint8),) * 3)["touches_border"].dtype == bool


def test_differential_leaves_border_cells_out_by_default():
    t = cell_table(*_field())
    d = differential_count(t)
    assert d.loc[1, "count"] == 1 and d.loc[3, "count"] == 1  # the inner cells
    assert d["count"].sum() == 2 == d.attrs["total"]
    assert d.loc[1, "percent"] == pytest.approx(50.0)
    assert d["border_left_out"].to_dict() == {1: 1, 2: 1, 3: 0, 4: 0, 5: 1}
    assert d.attrs["border_left_out"] == 3
    kept = differential_count(t, include_border=True)
    assert kept["count"].to_dict() == {1: 2, 2: 1, 3: 1, 4: 0, 5: 1}
    assert kept.attrs["total"] == 5 and kept["border_left_out"].sum() == 0
    assert kept["percent"].sum() == pytest.approx(100.0)


def test_only_border_cells_gives_zero_percentages():
    t = pd.DataFrame({"class_code": [1, UNIDENTIFIED], "touches_border": [True, True]})
    d = differential_count(t)
    assert d.attrs["total"] == 0 and d["percent"].sum() == 0
    assert d.loc[UNIDENTIFIED, "border_left_out"] == 1  # the row is there to say so


def test_tables_without_the_flag_count_every_cell():
    d = differential_count([pd.DataFrame({"class_code": [1, 2]}),
                            pd.DataFrame({"class_code": [2], "touches_border": [True]})])
    assert d["count"].tolist()[:2] == [1, 1] and d.attrs["border_left_out"] == 1


def test_to_check_counts_low_confidence_counted_cells():
    t = pd.DataFrame({"class_code": [1, 1, UNIDENTIFIED, 2, 2],
                      "confidence": [0.9, 0.3, 0.2, np.nan, 0.1],
                      "touches_border": [False, False, False, False, True]})
    d = differential_count(t, check_below=0.5)
    assert d["to_check"].to_dict() == {1: 1, 2: 0, 3: 0, 4: 0, 5: 0, UNIDENTIFIED: 1}
    assert d.attrs["to_check"] == 2 and d.attrs["check_below"] == 0.5
    assert "to_check" not in differential_count(t).columns
    assert differential_count(t, include_border=True, check_below=0.5).attrs["to_check"] == 3


@pytest.mark.parametrize("bad", [-0.1, 1.5, float("nan"), "0.5", True, [0.5]])
def test_bad_check_below_is_one_value_error(bad):
    with pytest.raises(ValueError, match="check_below must be a confidence in"):
        differential_count(pd.DataFrame({"class_code": [1]}), check_below=bad)
