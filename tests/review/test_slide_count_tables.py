"""count_tables (from the live per-cell tables) gives exactly what count_arrays gives."""
import dataclasses

import pytest

from napari_wbcseg.core.image_counts import image_counts
from napari_wbcseg.review import CaseError, count_arrays
from napari_wbcseg.review.slide_count import count_tables


@pytest.mark.parametrize("border, wbc", [(False, None), (True, 8.0)])
def test_tables_and_arrays_agree_on_every_field(fields, classes14, border, wbc):
    a, b = fields
    reviewed = [{1, 2}, {1, 7}]
    arrays = count_arrays([(*a, reviewed[0]), (*b, reviewed[1])], classes14, 4, wbc, border)
    tables = [image_counts(*f, classes=classes14, reviewed_cells=r).table
              for f, r in zip(fields, reviewed)]
    from_column = count_tables(tables, classes14, 4, wbc, border)
    bare = [t.drop(columns=["reviewed"]) for t in tables]
    from_ids = count_tables(bare, classes14, 4, wbc, border, reviewed=reviewed)
    expected = dataclasses.asdict(arrays)
    assert dataclasses.asdict(from_column) == expected
    assert dataclasses.asdict(from_ids) == expected
    assert arrays.reviewed == 4 and arrays.border_left_out == (0 if border else 1)
    assert count_tables(bare, classes14, 4).reviewed == 0  # no column, no ids: none


def test_tables_bad_input_is_one_case_error(fields, classes14):
    table = image_counts(*fields[0], classes=classes14).table
    with pytest.raises(CaseError, match="not a cell table"):
        count_tables([table.drop(columns=["class_code"])], classes14, 100)
    with pytest.raises(CaseError, match="reviewed sets for"):
        count_tables([table], classes14, 100, reviewed=[])
    with pytest.raises(CaseError, match="target"):
        count_tables([table], classes14, 0)
