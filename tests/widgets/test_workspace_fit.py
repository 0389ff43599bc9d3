"""Every dock of the plugin open at once fits a 1366x768 screen: each scrolls in its dock
(``_widgets.dock_scroll``) instead of adding its whole form's height to the window; the
review gallery sits in the left area, under napari's layer list."""
from __future__ import annotations

DOCKS = ("AHE-Retinex colour correction", "Segment white blood cells",
         "Correct white-cell labels", "Train / fine-tune a network", "Review cells")
SCREEN_HEIGHT = 768
CHROME = 120  # menu bar, status bar and the docks' title bars


def test_all_docks_fit_a_laptop_screen(make_napari_viewer, qtbot):
    from qtpy.QtWidgets import QDockWidget, QScrollArea

    viewer = make_napari_viewer(show=True)  # Qt settles dock sizes once shown
    opened = [viewer.window.add_plugin_dock_widget("napari-wbcseg", name) for name in DOCKS]
    qtbot.waitUntil(lambda: all(isinstance(d.widget(), QScrollArea) for d, _ in opened))
    qtbot.waitUntil(lambda: all(d.minimumSizeHint().height() < w.native.minimumSizeHint().height()
                                for d, w in opened))
    window = viewer.window._qt_window
    qtbot.waitUntil(lambda: window.dockWidgetArea(opened[-1][0]) != window.dockWidgetArea(
        opened[0][0]))
    heights = {}
    for name, (dock, w) in zip(DOCKS, opened):
        assert dock.widget().widget() is w.native  # the form itself, inside the scroll area
        assert viewer.window.dock_widgets[f"{name} (napari-wbcseg)"] is w  # napari finds it
        # the form would need this much without scrolling: the reason for the scroll area
        assert w.native.minimumSizeHint().height() > dock.minimumSizeHint().height(), name
    for dock in window.findChildren(QDockWidget):  # napari's own docks count too
        if dock.isVisible() and not dock.isFloating():
            area = window.dockWidgetArea(dock)
            heights.setdefault(area, {})[dock.windowTitle()] = dock.minimumSizeHint().height()
    for area, docks in heights.items():
        assert sum(docks.values()) <= SCREEN_HEIGHT - CHROME, (area, docks)
