"""Where the review gallery's dock goes, and how tall its grid of cells is.

The right area already stacks the plugin's four other docks (each scrolls, all must fit
1366x768).  napari's left column holds its layer controls (about 360 px tall for a labels
layer) and its layer list; a third dock under them got about 100 px there, one row of
cells at best.  So the gallery becomes a tab of the whole left column: napari's layer
controls and layer list are made tabs of one group (stacked again when the gallery
closes), the gallery a third tab, raised.  It then has the column's full height, 4-5
rows of cells at 1366x768, 7-8 at 1920x1080; the layer list is one click away.

napari's docks are found by their Qt object names ("layer controls", "layer list"), not
by napari's private attributes; when they are missing, floating or hidden, or tabifying
fails, the gallery is put in the left area under them as before.  The grid (``view``)
grows to the dock's visible height (``_FillDock``), less the count lines, so that the
dock's height goes to cells; the form below it (threshold, case panel) scrolls.
"""
from __future__ import annotations

import weakref

from qtpy.QtCore import QEvent, QObject, Qt, QTimer
from qtpy.QtWidgets import QDockWidget, QMainWindow, QScrollArea

NAPARI_DOCKS = ("layer controls", "layer list")  # napari's object names of its left docks
LEFT = Qt.DockWidgetArea.LeftDockWidgetArea


def _enclosing_dock(widget) -> QDockWidget | None:
    while widget is not None and not isinstance(widget, QDockWidget):
        widget = widget.parent()
    return widget


def _main_window_of(dock) -> QMainWindow | None:
    """The main window a napari dock is being added to (napari's private reference from
    the dock to its viewer widget: None when it is not there)."""
    ref = getattr(dock, "_ref_qt_viewer", None)
    try:
        qt_viewer = ref() if callable(ref) else None
        window = qt_viewer.window() if qt_viewer is not None else None
    except RuntimeError:  # deleted
        return None
    return window if isinstance(window, QMainWindow) else None


def napari_left_docks(window: QMainWindow) -> list[QDockWidget]:
    """napari's layer controls and layer list docks, where docked and shown in ``window``."""
    found = {d.objectName(): d for d in window.findChildren(QDockWidget)}
    return [found[name] for name in NAPARI_DOCKS if name in found
            and not found[name].isFloating() and found[name].isVisibleTo(window)
            and window.dockWidgetArea(found[name]) != Qt.DockWidgetArea.NoDockWidgetArea]


def tabify_gallery(window: QMainWindow, dock: QDockWidget) -> list[QDockWidget]:
    """Make ``dock`` a raised tab of napari's left docks; returns the napari docks that
    were made tabs of each other here (to stack again on close), [] when placed alone."""
    napari_docks = napari_left_docks(window)
    if not napari_docks:
        raise RuntimeError("napari's layer list dock is not docked")
    joined = []
    if len(napari_docks) == 2 and window.dockWidgetArea(napari_docks[0]) == \
            window.dockWidgetArea(napari_docks[1]) and \
            napari_docks[1] not in window.tabifiedDockWidgets(napari_docks[0]):
        window.tabifyDockWidget(*napari_docks)
        joined = napari_docks
    if dock not in window.tabifiedDockWidgets(napari_docks[-1]):
        window.tabifyDockWidget(napari_docks[-1], dock)
    dock.show()
    dock.raise_()
    return joined


def stack_again(window: QMainWindow, docks: list[QDockWidget]) -> None:
    """Undo ``tabify_gallery``'s joining of napari's docks: one above the other again,
    the layer controls at their minimum height (as napari lays them out)."""
    if len(docks) != 2:
        return
    controls, layer_list = docks
    area = window.dockWidgetArea(controls)
    window.addDockWidget(area, controls)  # re-adding takes a dock out of its tab group
    window.addDockWidget(area, layer_list)
    window.resizeDocks([controls, layer_list], [controls.minimumHeight(), 10000],
                       Qt.Orientation.Vertical)


class _GalleryDocker(QObject):
    """Watches the gallery's Qt widget being docked by napari (then placed, once
    ``dock_scroll`` has wrapped it), wrapped in its scroll area (then the grid fills the
    area) and closed (then napari's docks are stacked again).  Holds the window and
    napari's docks by weak reference only: a closed viewer must not be kept alive."""

    def __init__(self, native, view, reserve, minimum: int):
        super().__init__(native)
        self.native = native
        self.fill = _FillDock(view, reserve, minimum)
        view._wbcseg_fill = self.fill
        self.window = lambda: None
        self.joined: list = []
        self.tries = 0
        self.size_before = None  # the window's, before napari docked the gallery

    def eventFilter(self, obj, event):  # noqa: N802 (Qt's name)
        if event.type() != QEvent.Type.ParentChange:
            return False
        parent = obj.parent()
        if isinstance(parent, QDockWidget):  # docked by napari: placed after the wrap
            window = _main_window_of(parent)
            self.size_before = window.size() if window is not None else None
            self.tries = 20
            QTimer.singleShot(0, self._place)
        elif parent is not None and isinstance(parent.parent(), QScrollArea):
            self.fill.watch(parent)  # put in dock_scroll's scroll area (its viewport)
        elif parent is None:  # napari's close un-parents it
            self._stack_again()
        return False

    def _place(self) -> None:
        native = self.native
        if isinstance(native.parent(), QDockWidget) and self.tries:  # not wrapped yet
            self.tries -= 1
            QTimer.singleShot(0, self._place)
            return
        dock = _enclosing_dock(native)
        window = dock.parent() if dock is not None else None
        if not isinstance(window, QMainWindow):
            return
        self.window = weakref.ref(window)
        try:
            self.joined = [weakref.ref(d) for d in tabify_gallery(window, dock)]
        except RuntimeError:  # napari's layout is not as expected: under its docks
            if window.dockWidgetArea(dock) != LEFT:
                window.addDockWidget(LEFT, dock)
            dock.show()
        dock.layout().invalidate()
        dock.updateGeometry()
        QTimer.singleShot(0, self._shrink_back)

    def _shrink_back(self) -> None:
        """napari docks the whole form first, under its two docks, before it scrolls: the
        window grows to fit that for a moment (past a 768 px screen) and keeps the size.
        Give it back its size from before, now that the dock needs little."""
        window, before = self.window(), self.size_before
        if window is None or before is None or not window.isVisible() or \
                window.isMaximized() or window.isFullScreen():
            return  # a window not shown yet gets its size when shown
        if window.height() > before.height() or window.width() > before.width():
            window.resize(before.expandedTo(window.minimumSizeHint()))

    def _stack_again(self) -> None:
        window, joined = self.window(), [ref() for ref in self.joined]
        self.joined = []
        if window is None or None in joined:
            return
        try:
            stack_again(window, joined)
        except RuntimeError:  # the window is being deleted
            pass


class _FillDock(QObject):
    """Keeps the grid as tall as the scroll area's viewport less ``reserve()`` px (the
    lines kept in sight with it), at least ``minimum`` (two rows); the rest of the form
    scrolls under it."""

    def __init__(self, view, reserve, minimum: int):
        super().__init__(view)
        self.view, self.reserve, self.minimum = view, reserve, minimum
        self.viewport = None

    def watch(self, viewport) -> None:
        if self.viewport is not None:
            self.viewport.removeEventFilter(self)
        self.viewport = viewport
        viewport.installEventFilter(self)
        self.fit()

    def fit(self) -> None:
        if self.viewport is None:
            return
        height = max(self.minimum, self.viewport.height() - self.reserve())
        if height != self.view.minimumHeight():
            self.view.setMinimumHeight(height)

    def eventFilter(self, obj, event):  # noqa: N802 (Qt's name)
        if event.type() == QEvent.Type.Resize:
            self.fit()
        return False


def place_gallery_dock(native, view, reserve, minimum: int) -> None:
    """Call once on the gallery's Qt widget ``native``, before napari docks it: the dock
    becomes a tab of napari's left column, and ``view`` fills the dock's visible height
    less ``reserve()`` px, at least ``minimum``."""
    native._wbcseg_docker = docker = _GalleryDocker(native, view, reserve, minimum)
    native.installEventFilter(docker)


def refit(view) -> None:
    """Fit ``view`` again (the lines kept in sight with it changed height)."""
    fill = getattr(view, "_wbcseg_fill", None)
    if fill is not None:
        fill.fit()
