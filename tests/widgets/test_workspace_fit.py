"""Every dock of the plugin open at once fits a 1366x768 screen: each scrolls in its dock
(``_widgets.dock_scroll``) instead of adding its whole form's height to the window; the
review gallery is a tab of napari's left column (``_widgets.review_gallery_dock``), raised,
its grid as tall as the dock: rows of cells in sight at 1366x768 as at 1920x1080."""
from __future__ import annotations

import pytest

DOCKS = ("AHE-Retinex colour correction", "Segment white blood cells",
         "Correct white-cell labels", "Train / fine-tune a network", "Review cells")
CHROME = 120  # menu bar, status bar and the docks' title bars
NAPARI_DOCKS = ("layer controls", "layer list")


def _add_smear(viewer):
    from napari_wbcseg.core.synthetic import synthetic_smear
    from napari_wbcseg.schema import labels_layer_kwargs

    s = synthetic_smear(shape=(480, 640), n_wbc=12, seed=1)
    viewer.add_image(s.image, name="field", rgb=True)
    for kind in ("nucleus", "cytoplasm", "cell_type"):
        viewer.add_labels(getattr(s, kind).copy(), **labels_layer_kwargs("field", kind))


def _open_all(viewer, qtbot, size):
    from qtpy.QtWidgets import QScrollArea

    window = viewer.window._qt_window
    window.resize(*size)
    qtbot.waitUntil(lambda: (window.width(), window.height()) == size)
    opened = []
    for name in DOCKS:  # one after the other, as from the Plugins menu
        opened.append(viewer.window.add_plugin_dock_widget("napari-wbcseg", name))
        qtbot.waitUntil(lambda: isinstance(opened[-1][0].widget(), QScrollArea))
        qtbot.wait(20)
    return window, opened


def _napari_docks(window):
    from qtpy.QtWidgets import QDockWidget

    return [window.findChild(QDockWidget, name) for name in NAPARI_DOCKS]


def visible_cell_rows(gallery) -> int:
    """Rows of thumbnails wholly in sight: inside the grid's viewport and inside the part
    of the dock's scroll area that shows."""
    from qtpy.QtCore import QRect

    view = gallery.view
    shown = gallery.native.parent()  # dock_scroll's viewport
    if view.visibleRegion().isEmpty():  # a tab behind another
        return 0
    tops = set()
    for row in range(gallery.model.rowCount()):
        if gallery.model.rows.rows[row].cell is None:
            continue
        rect = view.visualRect(gallery.model.index(row))
        in_dock = QRect(view.viewport().mapTo(shown, rect.topLeft()), rect.size())
        if view.viewport().rect().contains(rect) and shown.rect().contains(in_dock):
            tops.add(rect.top())
    return len(tops)


@pytest.mark.parametrize("size", [(1366, 768), (1920, 1080)])
def test_all_docks_fit_the_screen_with_rows_of_cells(make_napari_viewer, qtbot, size):
    from qtpy.QtWidgets import QDockWidget

    viewer = make_napari_viewer(show=True)  # Qt settles dock sizes once shown
    _add_smear(viewer)
    window, opened = _open_all(viewer, qtbot, size)
    gallery_dock, gallery = opened[-1]
    controls, layer_list = _napari_docks(window)
    qtbot.waitUntil(lambda: gallery_dock in window.tabifiedDockWidgets(layer_list))
    qtbot.waitUntil(lambda: gallery.model.rowCount() > 0)
    qtbot.wait(50)
    assert (window.width(), window.height()) == size  # nothing grew past the screen
    assert set(window.tabifiedDockWidgets(gallery_dock)) == {controls, layer_list}
    # the gallery is the raised tab (Qt moves the other tabs out of sight)
    assert not gallery_dock.visibleRegion().isEmpty() and layer_list.visibleRegion().isEmpty()
    for name, (dock, w) in zip(DOCKS, opened):
        assert dock.widget().widget() is w.native  # the form itself, inside the scroll area
        assert viewer.window.dock_widgets[f"{name} (napari-wbcseg)"] is w  # napari finds it
        # the form would need this much without scrolling: the reason for the scroll area
        assert w.native.minimumSizeHint().height() > dock.minimumSizeHint().height(), name
    heights = {}  # per area; the docks of a tab group share one height
    for dock in window.findChildren(QDockWidget):
        if not dock.isFloating() and not dock.isHidden():
            group = frozenset([dock, *window.tabifiedDockWidgets(dock)])
            area = heights.setdefault(window.dockWidgetArea(dock), {})
            area[group] = max(area.get(group, 0), dock.minimumSizeHint().height())
    for area, groups in heights.items():
        assert sum(groups.values()) <= size[1] - CHROME, (area, groups)
    assert visible_cell_rows(gallery) >= (2 if size[1] < 1000 else 4)
    # the cell grid takes the dock's height: taller on the taller screen
    assert gallery.view.height() >= gallery_dock.height() - 200


def test_closing_the_gallery_stacks_napari_docks_again(make_napari_viewer, qtbot):
    viewer = make_napari_viewer(show=True)
    window = viewer.window._qt_window
    dock, _ = viewer.window.add_plugin_dock_widget("napari-wbcseg", "Review cells")
    controls, layer_list = _napari_docks(window)
    qtbot.waitUntil(lambda: dock in window.tabifiedDockWidgets(layer_list))
    viewer.window.remove_dock_widget(dock)
    qtbot.waitUntil(lambda: not window.tabifiedDockWidgets(controls))
    # both in sight again, one above the other (as napari lays them out)
    qtbot.waitUntil(lambda: not (controls.visibleRegion().isEmpty()
                                 or layer_list.visibleRegion().isEmpty()))
    assert 0 <= controls.geometry().bottom() < layer_list.geometry().top()
