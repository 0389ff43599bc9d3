"""One differential per image: the Segment dock, the Correct dock, the layers' features and
every CSV export follow each edit and each undo (issue 14, item 1).

The Segment dock is fed a made-up result of a synthetic smear (no network), as it would
get from its worker, so the counts are known."""
import numpy as np
import pandas as pd
import pytest

from napari_wbcseg._widgets import live_counts as lc_module
from napari_wbcseg._widgets import segment_widget as sw_module
from napari_wbcseg.core.image_counts import CountRules, image_counts, labels_checksum
from napari_wbcseg.core.measurements import cell_table
from napari_wbcseg.inference.segment import SegmentParams, Segmentation

SEGMENT, CORRECT = "Segment white blood cells", "Correct white-cell labels"


@pytest.fixture(scope="module")
def smear():
    from napari_wbcseg.core.synthetic import synthetic_smear

    return synthetic_smear(shape=(256, 320), n_wbc=3, seed=1, classes=[1, 2, 3])


def made_up_result(smear, model="made-up", params=None):
    params = params or SegmentParams(class_threshold=0.5)
    table = cell_table(smear.nucleus, smear.cytoplasm, smear.cell_type,
                       confidence={1: 0.9, 2: 0.3, 3: 0.8})
    return Segmentation(smear.nucleus.copy(), smear.cytoplasm.copy(), smear.cell_type.copy(),
                        table, params.differential(table), model, "cpu",
                        timings={"total_s": 0.1}), params


def count_recounts(monkeypatch) -> dict:
    """Calls of the live counts' full recount (every cell measured) and of its class-only
    recount, as lists that grow."""
    made = {"full": [], "classes": []}
    for name, kind in (("image_counts", "full"), ("recount_classes", "classes")):
        real = getattr(lc_module, name)
        monkeypatch.setattr(lc_module, name, lambda *a, _real=real, _kind=kind, **k:
                            made[_kind].append(1) or _real(*a, **k))
    return made


def feed(seg, smear, name="field", model="made-up"):
    """What the dock's worker hands back, as ``run`` would have set it up."""
    result, params = made_up_result(smear, model)
    seg._source = (name, (1.0, 1.0), (0.0, 0.0), params)
    seg._on_returned(result)
    return result


def segmented_viewer(make_napari_viewer, smear, monkeypatch):
    """A viewer with the smear and the Segment dock's (made-up) result for it."""
    for kind in ("info", "warning"):
        monkeypatch.setattr(sw_module, f"show_{kind}", lambda *_: None)
    viewer = make_napari_viewer()
    viewer.add_image(smear.image, name="field", rgb=True)
    _, seg = viewer.window.add_plugin_dock_widget("napari-wbcseg", SEGMENT)
    feed(seg, smear)
    return viewer, seg


@pytest.fixture
def docks(make_napari_viewer, smear, monkeypatch):
    viewer, seg = segmented_viewer(make_napari_viewer, smear, monkeypatch)
    _, cor = viewer.window.add_plugin_dock_widget("napari-wbcseg", CORRECT)
    assert cor.current is not None
    return viewer, seg, cor


def rows(table_widget) -> dict:
    v = table_widget.value
    return {h: [row[i] for row in v["data"]] for i, h in enumerate(v["columns"])}


def counts(docks, tmp_path) -> dict:
    """{class: count} as every view has it; fails unless all views agree."""
    viewer, seg, cor = docks
    shown = rows(seg.counts)
    assert rows(cor.counts) == shown  # the two docks
    feats = viewer.layers["field cell type"].features
    assert feats["class"].tolist() == shown["class"]  # the layer's features (napari's CSV)
    assert feats["count"].tolist() == shown["count"]
    saved = pd.read_csv(seg.export_differential(tmp_path / "differential.csv"))
    assert saved["class"].tolist() == shown["class"]  # the export: what is on screen
    assert saved["count"].tolist() == shown["count"]
    assert saved["to_check"].tolist() == shown["to check"]
    return {c: n for c, n in zip(shown["class"], shown["count"]) if n}


def inside(smear, cid):
    return tuple(np.argwhere(smear.nucleus == cid)[0])


def test_every_view_follows_edits_and_undos(docks, smear, tmp_path):
    viewer, seg, cor = docks
    first = {"neutrophil": 1, "lymphocyte": 1, "monocyte": 1}
    assert counts(docks, tmp_path) == first
    cor.select_at(inside(smear, 1))
    assert cor.set_class(2)  # neutrophil -> lymphocyte
    assert counts(docks, tmp_path) == {"lymphocyte": 2, "monocyte": 1}
    cor.select_at(inside(smear, 2))
    cor.select_at(inside(smear, 3), add=True)
    assert cor.merge()  # the merged cell takes the larger one's class (monocyte)
    assert counts(docks, tmp_path) == {"lymphocyte": 1, "monocyte": 1}
    assert viewer.layers["field nucleus"].features["index"].tolist() == [1, 2]
    cor.select_at(inside(smear, 1))
    assert cor.delete_cell()
    assert counts(docks, tmp_path) == {"monocyte": 1}
    assert "1 white cells counted" in cor.review_label.value
    for expected in ({"lymphocyte": 1, "monocyte": 1}, {"lymphocyte": 2, "monocyte": 1},
                     first):
        assert cor.undo()
        assert counts(docks, tmp_path) == expected
    assert cor.redo()
    assert counts(docks, tmp_path) == {"lymphocyte": 2, "monocyte": 1}
    # the export written last holds the dock's rows, header included
    text = (tmp_path / "differential.csv").read_text().splitlines()
    assert text[0].startswith("class_code,class,count,percent")
    assert "lymphocyte,2," in text[2]


def test_napari_brush_and_undo_reach_the_segment_dock(make_napari_viewer, smear, qtbot,
                                                      monkeypatch, tmp_path):
    """Without the Correct dock: napari's own fill on the cell-type layer, then napari's
    own undo of it, recount the Segment dock (once each, a moment after the event)."""
    viewer, seg = segmented_viewer(make_napari_viewer, smear, monkeypatch)
    made = count_recounts(monkeypatch)
    ct = viewer.layers["field cell type"]
    ct.fill(inside(smear, 1), 4)  # the whole cell 1 (one class) becomes eosinophil
    qtbot.waitUntil(lambda: rows(seg.counts)["count"][3] == 1, timeout=5000)
    # only the class changed: recounted once from the table, no cell measured again
    assert rows(seg.counts)["count"][:4] == [0, 1, 1, 1] and made == {"full": [],
                                                                      "classes": [1]}
    assert ct.features["count"].tolist()[:4] == [0, 1, 1, 1]
    ct.undo()
    qtbot.waitUntil(lambda: rows(seg.counts)["count"][0] == 1, timeout=5000)
    assert made == {"full": [], "classes": [1, 1]}
    saved = pd.read_csv(seg.export_differential(tmp_path / "d.csv"))
    assert saved["count"].tolist()[:4] == [1, 1, 1, 0]


def test_one_recount_per_edit(docks, smear, monkeypatch):
    viewer, seg, cor = docks
    recounts = count_recounts(monkeypatch)["full"]  # a merge changes the cells' pixels
    cor.select_at(inside(smear, 2))
    cor.select_at(inside(smear, 3), add=True)
    assert cor.merge()  # writes two or three layers: still one recount
    assert len(recounts) == 1
    assert cor.undo()
    assert len(recounts) == 2
    seg._live.current()  # nothing changed since: asking again does not recount
    cor._refresh()
    assert len(recounts) == 2


def test_count_rules_and_checksum_core():
    assert CountRules.from_metadata({}) == CountRules(False, None)
    assert CountRules.from_metadata({"include_border_cells": True, "class_threshold": 0.4}) \
        == CountRules(True, 0.4)
    # hand-made metadata never breaks the count
    assert CountRules.from_metadata({"include_border_cells": "yes", "class_threshold": 7}) \
        == CountRules(False, None)
    a = np.zeros((5, 6), np.uint16)
    b = a.copy()
    b[2, 3] = 1
    assert labels_checksum(a, a) == labels_checksum(a.copy(), a.copy())
    assert labels_checksum(a, a) != labels_checksum(a, b)
    # the same bytes as another dtype or shape are other labels
    assert labels_checksum(a) != labels_checksum(a.view(np.int16))
    assert labels_checksum(a) != labels_checksum(a.reshape(6, 5))
    ct = np.where(b > 0, 2, 0).astype(np.uint8)
    got = image_counts(b, np.zeros_like(b), ct, rules=CountRules(True, 0.5),
                       confidence={1: 0.2}, reviewed_cells=[1])
    assert got.table["reviewed"].tolist() == [True]
    assert got.differential.loc[2, "count"] == 1 and got.differential.attrs["to_check"] == 1
    assert got.class_features()["index"].tolist()[:2] == [1, 2]


def test_a_fresh_result_is_not_measured_twice(make_napari_viewer, smear, monkeypatch,
                                              tmp_path):
    """The segmentation's own table is the count of its arrays: showing it costs no second
    cell_table on the GUI thread (a full field's table takes a while)."""
    for kind in ("info", "warning"):
        monkeypatch.setattr(sw_module, f"show_{kind}", lambda *_: None)
    viewer = make_napari_viewer()
    viewer.add_image(smear.image, name="field", rgb=True)
    _, seg = viewer.window.add_plugin_dock_widget("napari-wbcseg", SEGMENT)
    made = count_recounts(monkeypatch)
    result = feed(seg, smear)
    assert made == {"full": [], "classes": []}
    assert rows(seg.counts)["count"][:3] == [1, 1, 1]
    feats = viewer.layers["field nucleus"].features
    assert feats["confidence"].tolist() == result.table["confidence"].tolist()
    assert not feats["reviewed"].any()
    saved = pd.read_csv(seg.export_differential(tmp_path / "d.csv"))
    assert saved["to_check"].tolist()[:3] == [0, 1, 0] and made == {"full": [], "classes": []}
