"""1,000 cells: thumbnails only for what the view paints, never on the GUI thread; group
headers span the row."""
import threading

import numpy as np
import pandas as pd

from napari_wbcseg._widgets import review_gallery_model as model_module
from napari_wbcseg.core.cell_thumbnails import cell_thumbnail
from napari_wbcseg.schema import labels_layer_kwargs

N_ROWS, N_COLS, PITCH = 25, 40, 16  # 1,000 cells of 10 x 10 px


def grid_of_cells():
    h, w = N_ROWS * PITCH, N_COLS * PITCH
    nucleus = np.zeros((h, w), np.uint16)
    cytoplasm = np.zeros((h, w), np.uint16)
    cell_type = np.zeros((h, w), np.uint8)
    for i in range(N_ROWS * N_COLS):
        r, c = divmod(i, N_COLS)
        y, x = r * PITCH + 3, c * PITCH + 3
        cytoplasm[y:y + 10, x:x + 10] = i + 1
        nucleus[y + 3:y + 7, x + 3:x + 7] = i + 1
        cell_type[y:y + 10, x:x + 10] = i % 5 + 1
    image = np.full((h, w, 3), 220, np.uint8)
    image[cytoplasm > 0] = (200, 150, 210)
    image[nucleus > 0] = (90, 40, 130)
    return image, nucleus, np.where(nucleus > 0, 0, cytoplasm).astype(np.uint16), cell_type


def test_thousand_cells_thumbnails_lazily_off_the_gui_thread(make_napari_viewer, qtbot,
                                                             monkeypatch):
    calls = []

    def counting(*args, **kwargs):
        calls.append(threading.current_thread() is threading.main_thread())
        return cell_thumbnail(*args, **kwargs)

    monkeypatch.setattr(model_module, "cell_thumbnail", counting)
    image, nucleus, cytoplasm, cell_type = grid_of_cells()
    viewer = make_napari_viewer(show=True)
    viewer.add_image(image, name="grid", rgb=True)
    layers = {k: viewer.add_labels(a, **labels_layer_kwargs("grid", k)) for k, a in
              (("nucleus", nucleus), ("cytoplasm", cytoplasm), ("cell_type", cell_type))}
    ids = np.arange(1, 1001)
    layers["nucleus"].features = pd.DataFrame({"index": ids, "confidence": (ids % 100) / 100})
    _, g = viewer.window.add_plugin_dock_widget("napari-wbcseg", "Review cells")
    qtbot.waitUntil(lambda: len(g.model.rows.cells) == 1000, timeout=10000)
    qtbot.waitUntil(lambda: len(g.model._cache) > 0, timeout=10000)
    g.model.pool.waitForDone(10000)
    qtbot.wait(50)
    assert not any(calls)  # none on the GUI thread
    assert 0 < len(calls) < 200  # only the cells the view shows, not all 1,000
    # half the cells are below 0.5: the "needs review" group comes first
    assert len(g.model.rows.groups[0].cells) == 500
    confs = [c.confidence for c in g.model.rows.groups[0].cells]
    assert confs == sorted(confs)
    # a header spans the row: the first cell after it starts a new line below
    view = g.view
    header = view.visualRect(g.model.index(0))
    first = view.visualRect(g.model.index(1))
    assert header.width() >= view.viewport().width() - 3 * view.spacing() - 2
    assert first.top() >= header.bottom() and first.left() <= header.left() + view.spacing()


def test_every_control_has_a_tooltip_and_a_help_link(make_napari_viewer):
    from napari_wbcseg._widgets.dock_help import help_links, native_controls_without_tooltip

    viewer = make_napari_viewer()
    _, g = viewer.window.add_plugin_dock_widget("napari-wbcseg", "Review cells")
    assert native_controls_without_tooltip(g.native) == []
    assert help_links(g.native) == ["review.md"]
