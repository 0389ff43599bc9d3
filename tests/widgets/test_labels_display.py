"""How schema layers look in napari (issue 14 item 5) and File > Open Sample offline (item 9)."""
import urllib.error
import urllib.request

import numpy as np
import pytest

from napari_wbcseg._widgets import sample_wrappers
from napari_wbcseg.schema import (CELL_HUES_DEG, CELL_TYPE_CONTOUR, DEFAULT_CLASSES,
                                  labels_layer_kwargs, style_labels_layer)


def _rgb(layer, label):
    return np.asarray(layer.get_color(label))[:3]


def _schema_layers(viewer, name="f"):
    ids = np.arange(1, 13, dtype=np.uint16).reshape(3, 4).repeat(8, 0).repeat(8, 1)
    return {kind: viewer.add_labels(ids if kind != "cell_type" else np.full(ids.shape, 5, np.uint8),
                                    **labels_layer_kwargs(name, kind))
            for kind in ("nucleus", "cytoplasm", "cell_type")}


def test_nucleus_and_cytoplasm_of_one_cell_differ(make_napari_viewer):
    layers = _schema_layers(make_napari_viewer())
    nuc, cyt = layers["nucleus"], layers["cytoplasm"]
    for cell in range(1, 13):
        # same cell id, clearly different colours: dark nucleus, light cytoplasm
        assert np.abs(_rgb(nuc, cell) - _rgb(cyt, cell)).max() > 0.3
        assert _rgb(nuc, cell).max() < 0.5 < _rgb(cyt, cell).min()
        # ... and neighbouring ids (n, n+1) differ in each layer
        assert np.abs(_rgb(nuc, cell) - _rgb(nuc, cell + 1)).max() > 0.15
    # the cycle repeats after len(CELL_HUES_DEG) cells (nothing random)
    assert np.allclose(_rgb(nuc, 1), _rgb(nuc, 1 + len(CELL_HUES_DEG)))
    assert nuc.get_color(0) is None and cyt.get_color(0) is None  # background stays clear


def test_cell_type_is_an_outline_in_the_fixed_class_colours(make_napari_viewer):
    layers = _schema_layers(make_napari_viewer())
    ct = layers["cell_type"]
    assert ct.opacity <= 0.3 and ct.contour == 0  # before styling: a light fill
    style_labels_layer(ct, "cell_type")
    assert ct.contour == CELL_TYPE_CONTOUR >= 2 and ct.opacity == 1.0
    for cls in DEFAULT_CLASSES:
        hexa = cls.color.lstrip("#")
        assert np.allclose(_rgb(ct, cls.code), [int(hexa[i:i + 2], 16) / 255 for i in (0, 2, 4)],
                           atol=0.01), cls.name
    style_labels_layer(layers["nucleus"], "nucleus")  # the regions stay filled: painting
    assert layers["nucleus"].contour == 0 and layers["cytoplasm"].contour == 0


def test_synthetic_sample_opens_with_outlined_cell_types(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    viewer.open_sample("napari-wbcseg", "synthetic_smear")
    qtbot.wait(10)
    ct = viewer.layers["synthetic smear (truth) cell type"]
    assert ct.contour == CELL_TYPE_CONTOUR and ct.opacity == 1.0
    assert viewer.layers["synthetic smear (truth) nucleus"].contour == 0


@pytest.fixture
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(urllib.request, "urlopen", refuse)


def test_offline_sample_is_one_warning_with_the_hint_first(make_napari_viewer, qtbot,
                                                           monkeypatch, no_network):
    from napari.utils.notifications import ErrorNotification, notification_manager

    warned = []
    monkeypatch.setattr(sample_wrappers, "show_warning", warned.append)
    viewer = make_napari_viewer()
    notification_manager.records.clear()
    viewer.open_sample("napari-wbcseg", "bcisc_neutrophil")  # raises nothing
    qtbot.wait(10)
    assert len(warned) == 1 and "\n" not in warned[0]
    # toasts show one elided line: the way out comes first
    assert warned[0].startswith("Sample is offline: put 1-1.jpg at ")
    assert "NAPARI_WBCSEG_DATA_MIRROR" in warned[0] and "name resolution" in warned[0]
    assert not [r for r in notification_manager.records if isinstance(r, ErrorNotification)]
    # the offline smear instead, styled like every schema layer
    assert "synthetic smear" in viewer.layers
    assert viewer.layers["synthetic smear (truth) cell type"].contour == CELL_TYPE_CONTOUR
