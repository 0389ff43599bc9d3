import pytest

from napari_wbcseg.core.image_counts import image_counts
from napari_wbcseg.review import (Case, CaseError, case_count, count_arrays, reviewed_cells,
                                  save_case)
from napari_wbcseg.schema import UNIDENTIFIED


def test_counts_over_fields_leave_border_out_and_unidentified_apart(fields, classes14):
    a, b = fields
    cc = count_arrays([(*a, {1, 2}), (*b, {1, 7})], classes14, target=100)
    assert set(cc.counts) == set(range(1, 15)) | {UNIDENTIFIED}  # 14 classes, not 5
    assert {k: v for k, v in cc.counts.items() if v} == {1: 2, 2: 1, 13: 1, UNIDENTIFIED: 1}
    assert cc.counts[14] == 0 and cc.border_left_out == 1  # the border cell
    assert (cc.total, cc.unidentified, cc.counted, cc.cells, cc.fields) == (4, 1, 5, 6, 2)
    # unidentified is not in the denominator: the classes sum to 100 %
    assert cc.percent[1] == 50.0 and cc.percent[2] == 25.0 and cc.percent[13] == 25.0
    assert UNIDENTIFIED not in cc.percent and sum(cc.percent.values()) == pytest.approx(100)
    assert cc.absolute is None
    assert (cc.reached, cc.remaining, cc.reviewed) == (False, 96, 4)


def test_border_cells_counted_on_request(fields, classes14):
    cc = count_arrays(fields, classes14, target=5, include_border=True)
    assert cc.counts[14] == 1 and cc.border_left_out == 0 and cc.total == 5
    assert cc.percent[1] == 40.0 and cc.reached and cc.remaining == 0


def test_same_rules_as_the_docks(fields, classes14):
    a, _ = fields
    dock = image_counts(*a, classes=classes14).differential["count"]
    cc = count_arrays([a], classes14, target=100)
    assert {int(k): int(v) for k, v in dock.items()} == {k: v for k, v in cc.counts.items()
                                                         if k in dock.index}


def test_code_missing_from_the_table_counts_as_unidentified(fields, classes14):
    no13 = tuple(c for c in classes14 if c.code != 13)
    cc = count_arrays(fields, no13, target=100)
    assert 13 not in cc.counts and cc.unidentified == 2 and cc.total == 3


def test_absolute_counts(fields, classes14):
    cc = count_arrays(fields, classes14, target=100, wbc_count=8.0)
    assert cc.absolute[1] == pytest.approx(4.0) and cc.absolute[2] == pytest.approx(2.0)
    assert cc.absolute[14] == 0.0 and UNIDENTIFIED not in cc.absolute
    assert sum(cc.absolute.values()) == pytest.approx(8.0)


def test_progress_text(fields, classes14):
    cc = count_arrays([(*fields[0], {1, 2}), (*fields[1], {1, 7})], classes14, target=100)
    assert cc.progress_text() == ("4 of 100 cells counted (96 to go); 4 of 6 reviewed; "
                                  "1 unidentified left")
    done = count_arrays(fields, classes14, target=4)
    assert done.reached and done.progress_text() == (
        "target reached: 4 of 4 cells counted; 0 of 6 reviewed; 1 unidentified left")


def test_empty_case_counts_nothing_and_is_not_reached(classes14):
    cc = count_arrays([], classes14, target=100)
    assert cc.total == cc.cells == cc.fields == 0 and not cc.reached and cc.remaining == 100
    assert all(v == 0 for v in cc.counts.values()) and all(v == 0 for v in cc.percent.values())
    assert cc.progress_text().startswith("0 of 100 cells counted")


@pytest.mark.parametrize("target", [0, 10001, 1.5, True])
def test_bad_target(classes14, target):
    with pytest.raises(CaseError, match="target"):
        count_arrays([], classes14, target=target)


def test_case_count_reads_the_project_with_its_review_state(project, fields, classes14):
    case = save_case(project, Case("C-1", "slide 1", ["field A", "field B"], target=4,
                                   wbc_count=8.0))
    cc = case_count(project, case)  # the project's own 14-class table
    assert set(cc.counts) == set(range(1, 15)) | {UNIDENTIFIED}
    # field A lists cells 1 and 2 as reviewed, field B is fully reviewed (cells 1 and 7)
    expected = count_arrays([(*fields[0], {1, 2}), (*fields[1], {1, 7})], classes14, 4, 8.0)
    assert cc == expected and cc.reviewed == 4 and cc.reached
    assert reviewed_cells(project, "field A") == {1, 2}
    assert reviewed_cells(project, "field B") == {1, 7}


def test_case_count_of_an_empty_case(project):
    cc = case_count(project, Case("E", "slide", []))
    assert cc.total == 0 and not cc.reached and cc.fields == 0


def test_case_count_of_a_missing_field_says_which(project):
    with pytest.raises(CaseError, match="'field Z'"):
        case_count(project, Case("C-1", "slide", ["field Z"]))
