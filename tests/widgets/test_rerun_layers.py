"""Segment again on the same image: its result layers are replaced, not piled up (issue 14,
item 6); one "Undo replace" brings the earlier ones back; corrected layers are only replaced
after a question, whose three answers each do what they say.  The model's name is in the
layers' metadata and in the dock's status.  Made-up results (no network)."""
import numpy as np
import pytest
from napari.layers import Labels

from napari_wbcseg._widgets import segment_results as sr_module
from napari_wbcseg._widgets import segment_widget as sw_module
from napari_wbcseg._widgets.correction_layers import find_layer_sets
from test_live_counts import CORRECT, SEGMENT, feed, inside, rows


@pytest.fixture(scope="module")
def smears():
    from napari_wbcseg.core.synthetic import synthetic_smear

    a = synthetic_smear(shape=(256, 320), n_wbc=3, seed=1, classes=[1, 2, 3])
    b = synthetic_smear(shape=(256, 320), n_wbc=2, seed=5, classes=[4, 5])
    b.image = a.image  # the same field, segmented differently by a second model
    return a, b


@pytest.fixture
def dock(make_napari_viewer, smears, monkeypatch):
    notes = []
    for module in (sw_module, sr_module):
        monkeypatch.setattr(module, "show_info", notes.append)
    monkeypatch.setattr(sw_module, "show_warning", notes.append)
    viewer = make_napari_viewer()
    viewer.add_image(smears[0].image, name="field", rgb=True)
    _, seg = viewer.window.add_plugin_dock_widget("napari-wbcseg", SEGMENT)
    asked = []

    def no_question(name):  # replaced by the tests that expect one
        asked.append(name)
        raise AssertionError("asked about unedited layers")
    seg.confirm_replace = no_question
    feed(seg, smears[0], model="model-a")
    return viewer, seg, notes


def labels(viewer):
    return [lay for lay in viewer.layers if isinstance(lay, Labels)]


def test_rerun_replaces_and_undo_restores(dock, smears):
    viewer, seg, _ = dock
    a, b = smears
    first = {lay.name: lay for lay in labels(viewer)}
    assert viewer.layers["field nucleus"].metadata["model"] == "model-a"
    feed(seg, b, model="model-b")
    assert {lay.name: lay for lay in labels(viewer)} == first  # the same 3 layers
    assert np.array_equal(viewer.layers["field nucleus"].data, b.nucleus)
    assert np.array_equal(viewer.layers["field cell type"].data, b.cell_type)
    for lay in labels(viewer):
        assert lay.metadata["model"] == "model-b"
    assert "model model-b" in seg.status.value and "replaced" in seg.status.value
    assert not seg.undo_replace_button.native.isHidden()  # offered only now
    assert rows(seg.counts)["count"][3:5] == [1, 1]  # eosinophil, basophil: the new result
    assert seg.undo_replace()
    assert len(labels(viewer)) == 3 and seg.undo_replace_button.native.isHidden()
    for kind, want in (("nucleus", a.nucleus), ("cytoplasm", a.cytoplasm),
                       ("cell type", a.cell_type)):
        assert np.array_equal(viewer.layers[f"field {kind}"].data, want)
        assert viewer.layers[f"field {kind}"].metadata["model"] == "model-a"
    assert rows(seg.counts)["count"][:3] == [1, 1, 1]
    assert "model-a" in seg.status.value
    assert not seg.undo_replace()  # one step only


def test_undo_replace_refuses_once_the_new_layers_are_edited(dock, smears):
    viewer, seg, notes = dock
    feed(seg, smears[1], model="model-b")
    _, cor = viewer.window.add_plugin_dock_widget("napari-wbcseg", CORRECT)
    cor.select_at(inside(smears[1], 1))
    assert cor.set_class(2)
    assert not seg.undo_replace()
    assert "edited since" in notes[-1]
    assert viewer.layers["field nucleus"].metadata["model"] == "model-b"


@pytest.mark.parametrize("answer", ["replace", "keep both", "cancel"])
def test_corrected_layers_ask_first(dock, smears, answer):
    viewer, seg, _ = dock
    a, b = smears
    _, cor = viewer.window.add_plugin_dock_widget("napari-wbcseg", CORRECT)
    cor.select_at(inside(a, 1))
    assert cor.set_class(5)  # a hand correction
    corrected = {lay.name: np.array(lay.data) for lay in labels(viewer)}
    asked = []
    seg.confirm_replace = lambda name: asked.append(name) or answer
    feed(seg, b, model="model-b")
    assert asked == ["field"]
    names = sorted(lay.name for lay in labels(viewer))
    if answer == "replace":
        assert len(names) == 3 and np.array_equal(viewer.layers["field nucleus"].data,
                                                  b.nucleus)
        assert cor.current is not None and cor.current.layers["nucleus"] is not None
        assert rows(cor.counts) == rows(seg.counts)  # the Correct dock stayed attached
        ct = viewer.layers["field cell type"]
        ct.undo()  # napari's history of the old data is gone: it cannot write into the new
        assert np.array_equal(ct.data, b.cell_type)
        assert not cor.undo()
        assert seg.undo_replace()  # the correction comes back exactly
        for name, data in corrected.items():
            assert np.array_equal(viewer.layers[name].data, data)
    elif answer == "keep both":
        assert len(names) == 6 and "field (model-b) nucleus" in names
        assert set(find_layer_sets(viewer.layers)) == {"field", "field (model-b)"}
        assert viewer.layers["field (model-b) nucleus"].metadata["model"] == "model-b"
        for name, data in corrected.items():  # the corrected layers are untouched
            assert np.array_equal(viewer.layers[name].data, data)
        assert rows(seg.counts)["count"][3:5] == [1, 1]  # the dock shows the new result
    else:
        assert len(names) == 3 and "dropped" in seg.status.value
        for name, data in corrected.items():
            assert np.array_equal(viewer.layers[name].data, data)
            assert viewer.layers[name].metadata["model"] == "model-a"


def test_cancel_at_segment_click_runs_nothing(dock, smears):
    """The question comes when Segment is clicked, before any work is done."""
    viewer, seg, _ = dock
    from napari_wbcseg._widgets.review_metadata import write_review
    from napari_wbcseg.core.correction_state import ReviewState

    write_review(find_layer_sets(viewer.layers)["field"].values(), ReviewState(False, {2}))
    seg.image.value = viewer.layers["field"]
    seg.confirm_replace = lambda name: "cancel"
    seg.run()
    assert seg._worker is None and "kept" in seg.status.value
