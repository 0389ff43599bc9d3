"""A fresh result's label layers come in one per event-loop turn (issue 14: no long stall
of the viewer), and the Segment dock stays busy until the last one is in and the status
is final.  Cancel, a removed source image or a closed viewer meanwhile leave no partial
set and no traceback.  The worker is stood in for: its ``returned`` and ``finished``
signals are the dock's handlers, called as napari calls them."""
import numpy as np
import pytest
from napari.layers import Labels
from qtpy.QtCore import QTimer

from napari_wbcseg._widgets import segment_results as sr_module
from napari_wbcseg._widgets import segment_widget as sw_module
from napari_wbcseg._widgets.segment_results import CHECKSUM_KEY
from test_live_counts import SEGMENT, feed, made_up_result, rows, smear  # noqa: F401


class StandInWorker:
    abort_requested = False

    def quit(self):
        self.abort_requested = True


@pytest.fixture
def dock(make_napari_viewer, smear, monkeypatch):  # noqa: F811
    notes = []
    for module in (sw_module, sr_module):
        monkeypatch.setattr(module, "show_info", notes.append)
    monkeypatch.setattr(sw_module, "show_warning", notes.append)
    viewer = make_napari_viewer()
    viewer.add_image(smear.image, name="field", rgb=True)
    _, seg = viewer.window.add_plugin_dock_widget("napari-wbcseg", SEGMENT)
    return viewer, seg, notes


def worker_returns(seg, smear, model="made-up"):  # noqa: F811
    """What a run's worker does at its end: ``returned``, then ``finished``."""
    result, params = made_up_result(smear, model)
    seg._source = ("field", (1.0, 1.0), (0.0, 0.0), params)
    seg._worker, seg._worker_done = StandInWorker(), False
    seg.run_button.text = "Cancel"
    seg._on_returned(result)
    seg._on_finished()
    return result


def labels(viewer):
    return [lay for lay in viewer.layers if isinstance(lay, Labels)]


def turn_recorder(seg):
    """``(seen, on_event)``: each call of ``on_event`` appends (did the event loop run
    since the previous call, is the dock still busy)."""
    seen, loop_ran = [], [True]

    def on_event(event=None):
        seen.append((loop_ran[0], seg._worker is not None))
        loop_ran[0] = False
        QTimer.singleShot(0, lambda: loop_ran.__setitem__(0, True))
    return seen, on_event


def test_layers_come_in_separate_turns_and_the_run_ends_after_the_last(dock, smear, qtbot):  # noqa: F811
    viewer, seg, notes = dock
    seen, on_inserted = turn_recorder(seg)  # per added layer
    viewer.layers.events.inserted.connect(on_inserted)
    result = worker_returns(seg, smear)
    assert seg._worker is not None and seg.run_button.text == "Cancel"  # finished came
    qtbot.waitUntil(lambda: seg._worker is None, timeout=10000)
    assert seen == [(True, True)] * 3
    assert seg.run_button.text == "Segment" and "3 white cells" in seg.status.value
    ct = viewer.layers["field cell type"]
    assert ct.contour == 3 and all(lay.visible for lay in labels(viewer))
    assert len({lay.metadata[CHECKSUM_KEY] for lay in labels(viewer)}) == 1
    assert sum(rows(seg.counts)["count"]) == len(result.table) - sum(
        result.table["touches_border"])
    assert seg.export_button.enabled and any("white cells found" in n for n in notes)


def test_cancel_while_the_layers_come_in_leaves_none(dock, smear, qtbot):  # noqa: F811
    viewer, seg, _ = dock
    worker_returns(seg, smear)
    qtbot.waitUntil(lambda: "field nucleus" in viewer.layers, timeout=10000)
    assert seg._worker is not None
    seg._on_run_clicked()  # the button says Cancel
    assert labels(viewer) == [] and seg._worker is None
    assert seg.status.value == "cancelled: nothing was added"
    assert seg.run_button.text == "Segment" and not seg.export_button.enabled
    qtbot.wait(100)
    assert labels(viewer) == []


def test_source_removed_while_the_layers_come_in(dock, smear, qtbot):  # noqa: F811
    viewer, seg, notes = dock
    worker_returns(seg, smear)
    qtbot.waitUntil(lambda: "field cytoplasm" in viewer.layers, timeout=10000)
    viewer.layers.remove("field")
    qtbot.waitUntil(lambda: seg._worker is None, timeout=10000)
    assert list(viewer.layers) == [] and "results dropped" in seg.status.value
    assert "results dropped" in notes[-1] and seg.run_button.text == "Segment"


def test_viewer_closed_while_the_layers_come_in(dock, smear, qtbot):  # noqa: F811
    viewer, seg, _ = dock
    worker_returns(seg, smear)
    qtbot.waitUntil(lambda: "field nucleus" in viewer.layers, timeout=10000)
    viewer.close()
    qtbot.wait(200)  # an exception in a later step would fail the test (pytest-qt)
    assert list(viewer.layers) == []


def test_keep_both_comes_in_turns_and_leaves_the_corrected_layers(dock, smear, qtbot):  # noqa: F811
    viewer, seg, _ = dock
    feed(seg, smear, model="model-a")  # a result handed in directly: at once
    nucleus = viewer.layers["field nucleus"]
    nucleus.data[nucleus.data == 1] = 0  # a hand correction
    corrected = np.array(nucleus.data)
    seg.confirm_replace = lambda name: "keep both"
    seg._answer = seg.confirm_replace("field")  # asked when Segment is clicked
    worker_returns(seg, smear, model="model-b")
    assert len(labels(viewer)) == 3  # none of the new ones yet
    qtbot.waitUntil(lambda: seg._worker is None, timeout=10000)
    assert len(labels(viewer)) == 6 and "field (model-b) cell type" in viewer.layers
    assert np.array_equal(viewer.layers["field nucleus"].data, corrected)
    assert "kept both" in seg.status.value
    # (viewer.layers[name] gives a plugin a proxy of the layer: compare with ==)
    assert seg._live.layers["nucleus"] == viewer.layers["field (model-b) nucleus"]


def test_dock_deleted_while_the_layers_come_in(dock, smear, qtbot):  # noqa: F811
    viewer, seg, _ = dock
    worker_returns(seg, smear)
    qtbot.waitUntil(lambda: "field nucleus" in viewer.layers, timeout=10000)
    with qtbot.waitSignal(seg.native.destroyed, timeout=5000):
        seg.native.deleteLater()
    qtbot.wait(100)
    assert labels(viewer) == []  # no partial set left behind


def other_smear():
    from napari_wbcseg.core.synthetic import synthetic_smear

    return synthetic_smear(shape=(256, 320), n_wbc=3, seed=5, classes=[1, 4, 5])


def first_result(dock, smear):  # noqa: F811
    viewer, seg, _ = dock
    feed(seg, smear, model="model-a")  # handed in directly: at once, unedited
    return {k: np.array(viewer.layers[f"field {k.replace('_', ' ')}"].data)
            for k in ("nucleus", "cytoplasm", "cell_type")}


def test_a_replace_writes_one_layer_per_turn(dock, smear, qtbot):  # noqa: F811
    viewer, seg, _ = dock
    first_result(dock, smear)
    seen, on_data = turn_recorder(seg)  # per written layer
    for lay in labels(viewer):
        lay.events.data.connect(on_data)
    new = other_smear()
    result = worker_returns(seg, new, model="model-b")
    assert seg.staging is not None and seg._worker is not None
    qtbot.waitUntil(lambda: seg._worker is None, timeout=10000)
    assert seen == [(True, True)] * 3
    assert len(labels(viewer)) == 3 and "replaced the layers" in seg.status.value
    assert np.array_equal(viewer.layers["field cell type"].data, new.cell_type)
    assert {lay.metadata["model"] for lay in labels(viewer)} == {"model-b"}
    assert len({lay.metadata[CHECKSUM_KEY] for lay in labels(viewer)}) == 1
    assert sum(rows(seg.counts)["count"]) == len(result.table) - sum(
        result.table["touches_border"])  # the new result's counts
    assert not seg.undo_replace_button.native.isHidden()  # offered once all are in
    seg.undo_replace()
    assert {lay.metadata["model"] for lay in labels(viewer)} == {"model-a"}


@pytest.mark.parametrize("interrupt", ["cancel", "source removed", "layer removed"])
def test_an_interrupted_replace_keeps_the_earlier_set_whole(dock, smear, qtbot, interrupt):  # noqa: F811
    viewer, seg, notes = dock
    before = first_result(dock, smear)
    worker_returns(seg, other_smear(), model="model-b")
    nucleus = viewer.layers["field nucleus"]
    qtbot.waitUntil(lambda: nucleus.metadata.get("model") == "model-b", timeout=10000)
    assert seg.staging is not None  # the other two layers are still to come
    if interrupt == "cancel":
        seg._on_run_clicked()  # the button says Cancel
        assert seg.status.value == "cancelled: nothing was added"
    elif interrupt == "source removed":
        viewer.layers.remove("field")
    else:
        viewer.layers.remove("field cytoplasm")
    qtbot.waitUntil(lambda: seg._worker is None, timeout=10000)
    qtbot.wait(100)
    for kind, data in before.items():
        name = f"field {kind.replace('_', ' ')}"
        if name in viewer.layers:
            assert np.array_equal(viewer.layers[name].data, data), kind
            assert viewer.layers[name].metadata["model"] == "model-a", kind
    assert seg.undo_replace_button.native.isHidden()  # nothing was replaced
    if interrupt != "cancel":
        assert "earlier layers were kept" in seg.status.value
    assert seg.run_button.text == "Segment"
