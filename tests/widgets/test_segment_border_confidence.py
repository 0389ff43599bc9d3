"""Segment and Correct docks: border cells left out by default, low-confidence cells shown.

The Segment dock is fed a made-up result (no network), so the counts are known."""
import numpy as np
import pandas as pd
import pytest

from napari_wbcseg.core.measurements import cell_table
from napari_wbcseg.inference.segment import SegmentParams, Segmentation

SEGMENT, CORRECT = "Segment white blood cells", "Correct white-cell labels"
# cell id -> confidence: 1 and 5 inside the field, 2, 3 and 4 cut by the border
CONFIDENCE = {1: 0.9, 2: 0.3, 3: 0.4, 4: 0.95, 5: 0.2}


def _labels():
    nucleus = np.zeros((40, 50), np.uint16)
    cytoplasm = np.zeros_like(nucleus)
    cell_type = np.zeros((40, 50), np.uint8)
    for cid, (rows, cols), code in ((1, (slice(10, 20), slice(10, 20)), 1),
                                    (2, (slice(0, 5), slice(25, 32)), 1),
                                    (3, (slice(20, 28), slice(44, 50)), 2),
                                    (4, (slice(34, 40), slice(0, 6)), 5),
                                    (5, (slice(22, 30), slice(20, 28)), 3)):
        cytoplasm[rows, cols] = cid
        cell_type[rows, cols] = code
        r, c = rows.start + 2, cols.start + 2
        cytoplasm[r:r + 2, c:c + 2] = 0
        nucleus[r:r + 2, c:c + 2] = cid
    return nucleus, cytoplasm, cell_type


@pytest.fixture
def docks(make_napari_viewer, monkeypatch):
    from napari_wbcseg._widgets import segment_widget as sw_module

    monkeypatch.setattr(sw_module, "show_warning", lambda *_: None)
    monkeypatch.setattr(sw_module, "show_info", lambda *_: None)
    viewer = make_napari_viewer()
    viewer.add_image(np.full((40, 50, 3), 200, np.uint8), name="field", rgb=True)
    _, seg = viewer.window.add_plugin_dock_widget("napari-wbcseg", SEGMENT)
    nucleus, cytoplasm, cell_type = _labels()
    params = SegmentParams(class_threshold=0.5)
    table = cell_table(nucleus, cytoplasm, cell_type, confidence=CONFIDENCE)
    result = Segmentation(nucleus, cytoplasm, cell_type, table, params.differential(table),
                          "made-up", "cpu", timings={"total_s": 0.1})
    seg._source = ("field", (1.0, 1.0), (0.0, 0.0), params)
    seg._on_returned(result)
    return viewer, seg


def _rows(table_widget):
    v = table_widget.value
    return {h: [row[i] for row in v["data"]] for i, h in enumerate(v["columns"])}


def test_border_cells_left_out_and_cells_to_check_shown(docks, tmp_path):
    _, seg = docks
    assert seg.count_border.value is False and seg.params().include_border_cells is False
    rows = _rows(seg.counts)
    assert sum(rows["count"]) == 2  # cells 1 and 5
    assert sum(rows["border left out"]) == 3 and sum(rows["to check"]) == 1  # cell 5 (0.2)
    assert seg.summary.value == "3 border cells left out; 1 cell below 0.50 confidence to check"
    saved = pd.read_csv(seg.export_differential(tmp_path / "d.csv"))
    assert saved["count"].tolist() == rows["count"] and saved["class"].tolist() == rows["class"]
    assert saved["border_left_out"].tolist() == rows["border left out"]
    assert saved["to_check"].tolist() == rows["to check"]


def test_count_border_box_recounts_and_export_follows(docks, tmp_path):
    _, seg = docks
    seg.count_border.value = True
    assert seg.params().include_border_cells is True
    rows = _rows(seg.counts)
    assert sum(rows["count"]) == 5 and "border left out" not in rows
    assert sum(rows["to check"]) == 3  # cells 2, 3 and 5 are below 0.5
    assert seg.summary.value.startswith("3 border cells counted; 3 cells below 0.50")
    saved = pd.read_csv(seg.export_differential(tmp_path / "d.csv"))
    assert saved["count"].sum() == 5 and saved["border_left_out"].sum() == 0
    seg.count_border.value = False
    assert sum(_rows(seg.counts)["count"]) == 2


def test_correct_dock_counts_the_same_as_the_segment_dock(docks):
    viewer, seg = docks
    _, cor = viewer.window.add_plugin_dock_widget("napari-wbcseg", CORRECT)
    assert cor.current is not None
    assert _rows(cor.counts) == _rows(seg.counts)
    assert "3 border cells left out" in cor.review_label.value
    assert "1 cell below 0.50 confidence to check" in cor.review_label.value


def test_export_before_any_run_is_refused(make_napari_viewer):
    viewer = make_napari_viewer()
    _, seg = viewer.window.add_plugin_dock_widget("napari-wbcseg", SEGMENT)
    with pytest.raises(ValueError, match="nothing segmented yet"):
        seg.export_differential("unused.csv")
    assert seg.summary.value == ""


def test_correct_dock_follows_the_count_border_box(docks):
    """Ticking 'count border cells' in Segment makes the Correct dock count them too, so
    the two docks never show different differentials."""
    viewer, seg = docks
    _, cor = viewer.window.add_plugin_dock_widget("napari-wbcseg", CORRECT)
    seg.count_border.value = True  # no explicit refresh: the Correct dock follows at once
    assert sum(_rows(cor.counts)["count"]) == 5
    assert _rows(cor.counts)["count"] == _rows(seg.counts)["count"]
