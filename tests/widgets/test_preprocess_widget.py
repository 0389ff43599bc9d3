"""The AHE-Retinex dock widget, loaded through the npe2 manifest in a real viewer."""
import numpy as np
import pytest

from napari_wbcseg._widgets import preprocess_widget as pw_module

WIDGET = "AHE-Retinex colour correction"


@pytest.fixture
def widget(make_napari_viewer):
    viewer = make_napari_viewer()
    _, w = viewer.window.add_plugin_dock_widget("napari-wbcseg", WIDGET)
    return viewer, w


@pytest.fixture
def errors(monkeypatch):
    shown = []
    monkeypatch.setattr(pw_module, "show_error", shown.append)
    return shown


def _smear(rng, shape=(120, 160)):
    img = rng.integers(90, 230, size=(*shape, 3), dtype=np.uint8)
    img[40:80, 50:100] = (90, 40, 140)  # a dark purple "nucleus"
    return img


def test_apply_adds_new_layer_and_keeps_source(widget, qtbot, rng):
    viewer, w = widget
    data = _smear(rng)
    layer = viewer.add_image(data.copy(), name="field", rgb=True)
    w.image.value = layer
    w.apply()
    qtbot.waitUntil(lambda: "field AHE-Retinex" in viewer.layers, timeout=10000)
    out = viewer.layers["field AHE-Retinex"]
    from napari_wbcseg import ahe_retinex

    assert np.array_equal(out.data, ahe_retinex(data))
    assert np.array_equal(layer.data, data)  # the original is never modified
    assert out.metadata["preprocessing"]["method"] == "ahe-retinex"


def test_method_choice_and_parameters_reach_the_core(widget, qtbot, rng):
    viewer, w = widget
    data = _smear(rng)
    w.image.value = viewer.add_image(data, name="f", rgb=True)
    w.method.value = "clahe"
    w.clip_limit.value = 4.0
    assert not w.sigmas.enabled and w.clip_limit.enabled
    w.apply()
    qtbot.waitUntil(lambda: "f CLAHE only" in viewer.layers, timeout=10000)
    from napari_wbcseg import clahe

    assert np.array_equal(viewer.layers["f CLAHE only"].data, clahe(data, clip_limit=4.0))


def test_live_preview_updates_and_goes_away(widget, qtbot, rng):
    viewer, w = widget
    w.image.value = viewer.add_image(_smear(rng), name="f", rgb=True)
    w.preview.value = True
    qtbot.waitUntil(lambda: "f preview" in viewer.layers, timeout=10000)
    first = viewer.layers["f preview"].data.copy()
    qtbot.waitUntil(lambda: w._worker is None, timeout=10000)
    w.sigmas.value = "5, 20, 60"
    qtbot.waitUntil(lambda: not np.array_equal(viewer.layers["f preview"].data, first), timeout=10000)
    qtbot.waitUntil(lambda: w._worker is None, timeout=10000)
    w.preview.value = False
    assert "f preview" not in viewer.layers and "f" in viewer.layers


def test_stack_of_pages_is_processed_plane_by_plane(widget, qtbot, rng):
    viewer, w = widget
    stack = np.stack([_smear(rng), _smear(rng)])
    w.image.value = viewer.add_image(stack, name="pages", rgb=True)
    w.apply()
    qtbot.waitUntil(lambda: "pages AHE-Retinex" in viewer.layers, timeout=10000)
    assert viewer.layers["pages AHE-Retinex"].data.shape == stack.shape


@pytest.mark.parametrize("data, expected", [
    (np.random.rand(64, 64).astype(np.float32), "floating point"),
    (np.zeros((1, 1), np.uint8), "1x1"),
])
def test_bad_layers_give_a_notification_and_no_layer(widget, errors, data, expected):
    viewer, w = widget
    w.image.value = viewer.add_image(data, name="bad")
    w.apply()
    assert len(errors) == 1 and expected in errors[0]
    assert [l.name for l in viewer.layers] == ["bad"]


def test_bad_parameters_and_no_layer(widget, errors, rng):
    viewer, w = widget
    w.apply()
    assert "select an image layer" in errors[-1]
    w.image.value = viewer.add_image(_smear(rng), name="f", rgb=True)
    w.sigmas.value = "15, eighty"
    w.apply()
    assert "sigmas" in errors[-1] and len(viewer.layers) == 1


def test_reset_restores_paper_defaults(widget):
    _, w = widget
    w.gain.value, w.offset.value, w.sigmas.value = 3.0, 7.0, "1"
    w.reset_parameters()
    p = w.params()
    assert (p.gain, p.offset, tuple(p.sigmas)) == (46.0, 125.0, (15.0, 80.0, 250.0))


def _type(line_edit, text):
    from qtpy.QtCore import Qt
    from qtpy.QtTest import QTest

    line_edit.setFocus()
    line_edit.selectAll()
    QTest.keyClicks(line_edit, text)
    QTest.keyClick(line_edit, Qt.Key.Key_Return)


@pytest.mark.parametrize("preview", [False, True])
def test_bad_sigma_is_notified_once(widget, errors, qtbot, rng, preview):
    from qtpy.QtCore import Qt

    viewer, w = widget
    w.image.value = viewer.add_image(_smear(rng), name="f", rgb=True)
    w.preview.value = preview
    qtbot.waitUntil(lambda: w._worker is None, timeout=10000)
    _type(w.sigmas.native, "0")  # every key, Enter, then Apply: one message
    qtbot.mouseClick(w.apply_button.native, Qt.MouseButton.LeftButton)
    qtbot.wait(50)
    assert len(errors) == 1 and "sigmas must be" in errors[0]
    assert "sigmas must be" in w.status.value  # stays in sight in the dock
    _type(w.sigmas.native, "15, 80x")  # a new problem is news
    assert len(errors) == 2 and "15, 80x" in errors[1]
    _type(w.sigmas.native, "15, 80")
    w.apply()
    qtbot.waitUntil(lambda: "f AHE-Retinex" in viewer.layers, timeout=10000)
    assert len(errors) == 2


def test_every_control_has_a_tooltip_and_the_dock_a_help_link(widget):
    from magicgui.widgets import Container, SpinBox

    from napari_wbcseg._widgets.dock_help import controls_without_tooltip, project_url

    _, w = widget
    assert controls_without_tooltip(w) == []
    bare = Container(widgets=[SpinBox(name="bare"), Container(widgets=[SpinBox(name="inner")])])
    assert controls_without_tooltip(bare) == ["bare", "inner"]
    link = w.help_link.native
    assert link.openExternalLinks()
    url = "https://github.com/napari-wbcseg/napari-wbcseg/blob/main/docs/preprocessing.md"
    assert project_url() == url.split("/blob/")[0] and f'href="{url}"' in link.text()
