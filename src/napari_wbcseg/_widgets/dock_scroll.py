"""Docks that scroll instead of growing the window.

napari puts a magicgui widget's ``native`` QWidget into its dock, so magicgui's own
``scrollable=True`` is lost there.  :func:`scroll_in_dock` waits until napari has docked
the widget and then puts a QScrollArea between the dock and the widget: the dock's
minimum height becomes a few lines instead of the whole form's, and every dock of the
plugin fits a 1366x768 screen at once (scrolling where it must).

The dock's widget is then the scroll area, so ``viewer.window.remove_dock_widget`` takes
the dock (the first value ``add_plugin_dock_widget`` returns), not ``widget.native``.
"""
from __future__ import annotations

from qtpy.QtCore import QEvent, QObject, Qt, QTimer
from qtpy.QtWidgets import QDockWidget, QFrame, QScrollArea

MIN_VISIBLE_HEIGHT = 120  # px of a dock's form always shown before it scrolls


class _DockWatcher(QObject):
    def __init__(self, native):
        super().__init__(native)
        self._native = native

    def eventFilter(self, obj, event):  # noqa: N802 (Qt's name)
        if event.type() == QEvent.Type.ParentChange and isinstance(obj.parent(), QDockWidget):
            QTimer.singleShot(0, self._wrap)  # after napari's setWidget has returned
        return False

    def _wrap(self):
        native = self._native
        dock = native.parent()
        if not isinstance(dock, QDockWidget) or dock.widget() is not native:
            return
        area = QScrollArea()
        area.setObjectName("wbcseg_dock_scroll")
        area.setWidgetResizable(True)
        area.setFrameShape(QFrame.Shape.NoFrame)
        area.setMinimumHeight(MIN_VISIBLE_HEIGHT)
        # scroll up and down only: the dock keeps the form's width
        area.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        area.setMinimumWidth(native.minimumSizeHint().width()
                             + area.verticalScrollBar().sizeHint().width())
        # napari reads the magicgui widget of a dock from its widget (viewer.window.dock_widgets)
        if hasattr(native, "_magic_widget"):
            area._magic_widget = native._magic_widget
        area.installEventFilter(_Unparent(area, native))
        dock.setWidget(area)
        area.setWidget(native)
        dock.layout().invalidate()  # else the dock keeps the form's minimum height
        dock.updateGeometry()


class _Unparent(QObject):
    """napari closes a dock by un-parenting its widget: pass that on to the form, whose
    own watchers (the Correct dock's key bindings) expect it."""

    def __init__(self, area, native):
        super().__init__(area)
        self._native = native

    def eventFilter(self, obj, event):  # noqa: N802 (Qt's name)
        if event.type() == QEvent.Type.ParentChange and obj.parent() is None:
            self._native.setParent(None)
        return False


def scroll_in_dock(widget):
    """Make ``widget`` (a magicgui widget or QWidget) scroll inside the dock napari puts it
    in.  Returns ``widget``."""
    native = getattr(widget, "native", widget)
    native.installEventFilter(_DockWatcher(native))
    return widget
