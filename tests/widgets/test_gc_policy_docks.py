"""The Segment dock applies core.gc_policy: frozen at creation, the old-generation
threshold raised from Segment until its layers are in, restored after (also on cancel),
and nothing at all with NAPARI_WBCSEG_GC_POLICY=0."""
import gc

import numpy as np
import pytest

from napari_wbcseg.core import gc_policy

WIDGET = "Segment white blood cells"


@pytest.fixture
def fresh_policy(monkeypatch):
    threshold = gc.get_threshold()
    gc.unfreeze()
    monkeypatch.setattr(gc_policy, "_modules_at_freeze", 0)
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


def _dock(make_napari_viewer, tiny_model, qtbot):
    viewer = make_napari_viewer()
    dock, w = viewer.window.add_plugin_dock_widget("napari-wbcseg", WIDGET)
    qtbot.waitUntil(lambda: dock.widget() is not w.native)
    w.refresh_models()
    w.model.value, w.device.value = tiny_model, "cpu"
    return viewer, w


def _segment(viewer, w, qtbot, image, name):
    w.image.value = viewer.add_image(image, name=name, rgb=True)
    seen = []
    w.run()
    seen.append(gc.get_threshold()[2])
    qtbot.waitUntil(lambda: seen.append(gc.get_threshold()[2]) or w._worker is None,
                    timeout=30000)
    return seen


def test_segment_freezes_at_creation_and_holds_the_threshold_during_a_run(
        make_napari_viewer, tiny_model, qtbot, fresh_policy):
    from napari_wbcseg.core.synthetic import synthetic_smear

    before = gc.get_threshold()
    viewer, w = _dock(make_napari_viewer, tiny_model, qtbot)
    assert gc.get_freeze_count() > 10_000  # napari's and the plugin's objects
    smear = synthetic_smear(shape=(256, 320), n_wbc=2, seed=1)
    seen = _segment(viewer, w, qtbot, smear.image.copy(), "field")
    assert "field cell type" in viewer.layers
    assert seen[0] == max(before[2], gc_policy.RUN_THRESHOLD2)  # while it ran
    assert gc.get_threshold() == before  # and back once the layers were in
    w.image.value = viewer.add_image(np.tile(smear.image, (3, 3, 1)), name="big", rgb=True)
    w.run()
    w.cancel()
    qtbot.waitUntil(lambda: w._worker is None, timeout=30000)
    assert gc.get_threshold() == before


def test_policy_off_freezes_nothing(make_napari_viewer, tiny_model, qtbot, fresh_policy,
                                    monkeypatch):
    from napari_wbcseg.core.synthetic import synthetic_smear

    monkeypatch.setenv(gc_policy.ENV_VAR, "0")
    before = gc.get_threshold()
    viewer, w = _dock(make_napari_viewer, tiny_model, qtbot)
    smear = synthetic_smear(shape=(256, 320), n_wbc=2, seed=1)
    seen = _segment(viewer, w, qtbot, smear.image.copy(), "field")
    assert gc.get_freeze_count() == 0 and set(seen) == {before[2]}
