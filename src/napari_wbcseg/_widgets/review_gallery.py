"""Dock widget: review every cell of the open images as a thumbnail, grouped by class.

A thin view: the groups are ``core.gallery_groups``, the cells the layer sets' shared live
counts (``review_gallery_sources``), the thumbnails ``review_gallery_model``, and every
change goes through the Correct dock's undoable edits (``review_gallery_actions``), so
after Ctrl+Z there the gallery shows the old class again.  Keys (with the gallery
focused): arrows move, the class keys (each class's own hotkey, else 1-9; Ctrl+1-9 by
position) reclassify, U unidentified, Enter accepts, Delete removes a non-white cell, Space or a
click centres the viewer on the cell.  See docs/review.md.
"""
from __future__ import annotations

from magicgui.widgets import Container, FloatSpinBox, Label, SpinBox
from qtpy.QtCore import QItemSelectionModel, Qt, QTimer, Signal
from qtpy.QtWidgets import QListView

from ..core.gallery_groups import DEFAULT_THRESHOLD, GalleryRows, build_groups
from .correction_view import on_removed
from .dock_help import add_help_link
from .dock_scroll import scroll_in_dock
from .review_gallery_actions import GalleryActions
from .review_gallery_dock import place_gallery_dock, refit
from .review_gallery_model import GalleryDelegate, GalleryModel
from .review_gallery_sources import (classes_of, cells_of, gallery_sets, slide_count_text,
                                     update_sources)
from .tooltips import REVIEW, apply_tooltips

THUMB = 96
VIEW_MIN_HEIGHT = 260  # two rows of cells under a group header, in the shortest dock
HINT = ("Arrows move; a class's key (its hotkey, else 1-9) or Ctrl+1-9 sets the class, "
        "U unidentified, Enter accepts, "
        "Delete removes a non-white cell, Space / click shows the cell in the viewer. "
        "Undo in the Correct dock (Ctrl+Z).")


class GalleryView(QListView):
    """The grid of cells; hands the gallery's keys to ``key_pressed`` (text, ctrl)."""

    key_pressed = Signal(str, bool)
    HANDLED = {Qt.Key.Key_Return: "enter", Qt.Key.Key_Enter: "enter", Qt.Key.Key_Space: "space",
               Qt.Key.Key_Delete: "delete", Qt.Key.Key_Backspace: "delete"}

    def __init__(self):
        super().__init__()
        self.setViewMode(QListView.ViewMode.IconMode)
        self.setMovement(QListView.Movement.Static)  # a grid to read, not icons to drag
        self.setFlow(QListView.Flow.LeftToRight)
        self.setWrapping(True)
        self.setResizeMode(QListView.ResizeMode.Adjust)
        self.setLayoutMode(QListView.LayoutMode.Batched)  # 1,000 items laid out in steps
        self.setUniformItemSizes(False)  # headers span the row
        self.setSpacing(2)
        self.setSelectionMode(QListView.SelectionMode.SingleSelection)
        self.setMinimumHeight(VIEW_MIN_HEIGHT)
        self.setToolTip("cells of the open images by class, least confident first; "
                        "keys: see the line below")

    def keyPressEvent(self, event):  # noqa: N802 (Qt API)
        ctrl = bool(event.modifiers() & Qt.KeyboardModifier.ControlModifier)
        name = self.HANDLED.get(event.key())
        text = event.text().lower() if not ctrl else (
            chr(event.key()).lower() if 0x20 < event.key() < 0x7f else "")
        if name or (text and text.isalnum()):
            self.key_pressed.emit(name or text, ctrl)
            event.accept()
            return
        super().keyPressEvent(event)


class ReviewGallery(GalleryActions, Container):
    def __init__(self, napari_viewer: "napari.viewer.Viewer"):  # noqa: F821
        super().__init__()
        scroll_in_dock(self)
        self._viewer = napari_viewer
        self._closed = False
        self.lives: dict = {}
        self.classes: tuple = ()
        self._seen = None  # what the rows were made from (live counts' generations, spins)
        self._init_actions()
        self.threshold = FloatSpinBox(label="needs review below", value=DEFAULT_THRESHOLD,
                                      min=0.0, max=1.0, step=0.05)
        self.target = SpinBox(label="target cells", value=100, min=1, max=10_000)
        self.reviewed_label = Label(value="")
        self.progress_label = Label(value="")
        self.progress_label.native.setWordWrap(True)
        self.hint = Label(value=HINT)
        self.hint.native.setWordWrap(True)
        self.append(self.reviewed_label)
        self.model = GalleryModel(THUMB)
        self.view = GalleryView()
        self.view.setModel(self.model)
        self.view.setItemDelegate(GalleryDelegate(self.view, THUMB))
        self.extend([self.progress_label, self.threshold, self.target, self.hint])
        apply_tooltips(self, REVIEW)
        add_help_link(self, "review.md")
        # the cells right under the first line, seen in a short dock (after every magicgui
        # append: magicgui inserts at its own count, which leaves out this Qt widget)
        self.native.layout().insertWidget(1, self.view)
        from .case_panel import add_case_panel

        add_case_panel(self)
        self.target.visible = False  # the case panel's target is the one shown; they stay in sync
        self.view.key_pressed.connect(self.on_key)
        self.view.clicked.connect(lambda ix: self.show_cell(self.model.rows.cell_at(ix.row())))
        self.threshold.changed.connect(self.schedule_refresh)
        self.target.changed.connect(self.schedule_refresh)
        self._timer = QTimer(self.native)  # deleted with the dock
        self._timer.setSingleShot(True)
        self._timer.setInterval(0)  # once per event-loop turn, after a burst of events
        self._timer.timeout.connect(self.refresh)
        layers = napari_viewer.layers
        for event in (layers.events.inserted, layers.events.removed):
            event.connect(self.schedule_refresh)
        on_removed(self.native, self.close_widget)
        # a tab of napari's left column, the grid as tall as the dock (review_gallery_dock)
        place_gallery_dock(self.native, self.view, self._kept_in_sight, VIEW_MIN_HEIGHT)
        # the viewer closing deletes the dock without taking it out first
        self.native.destroyed.connect(lambda *_: self.close_widget(deleted=True))
        self.refresh()

    def _kept_in_sight(self) -> int:
        """px of the dock's height left to the lines shown with the grid: the reviewed
        line above it, the count lines under it."""
        layout, progress = self.native.layout(), self.progress_label.native
        margins = layout.contentsMargins()
        return (self.reviewed_label.native.sizeHint().height()
                + max(progress.heightForWidth(progress.width()), progress.sizeHint().height())
                + 3 * layout.spacing()
                + margins.top() + margins.bottom())

    # ---- refresh ---------------------------------------------------------------------------
    def schedule_refresh(self, *_):
        if not self._closed:
            self._timer.start()

    def _on_counts(self, counts) -> None:
        self.schedule_refresh()

    def refresh(self) -> None:
        """Read every layer set's live count again and show it (keeps the current cell);
        when no count changed since the last refresh, only the current cell moves."""
        if self._closed:
            return
        lives = gallery_sets(self._viewer)
        for name, live in lives.items():
            live.listen(self._on_counts)
        for old in set(self.lives.values()) - set(lives.values()):
            old.unlisten(self._on_counts)
        self.lives = lives
        for live in lives.values():
            live.current()  # recounted here if a layer changed since
        seen = (tuple((name, live.generation) for name, live in lives.items()),
                float(self.threshold.value), int(self.target.value))
        if seen == self._seen:
            self._show_rows(self.model.rows)
            return
        self._seen = seen
        self.classes = classes_of(lives)
        cells = [c for name, live in lives.items() for c in cells_of(name, live)]
        self.model.sources = update_sources(self.model.sources, lives, THUMB)
        self.model.colors = {c.code: c.color for c in self.classes}
        rows = GalleryRows(build_groups(cells, self.classes, float(self.threshold.value)))
        self._show_rows(rows)
        self.reviewed_label.value = rows.reviewed_text()
        self._show_count()

    def _show_rows(self, rows: GalleryRows) -> None:
        current = self.current_cell()
        if rows is not self.model.rows:
            bar = self.view.verticalScrollBar()
            scrolled = bar.value()
            if self.model.set_rows(rows):
                self.view.doItemsLayout()
                bar.setValue(scrolled)
        want = self._wanted_key or (current.key if current else None)
        self._wanted_key = None
        row = rows.row_of(want) if want else None
        if row is None and len(rows):
            row = rows.next_cell_row(-1)
        if row is not None:
            self.set_current_row(row, scroll=want is not None)

    def set_current_row(self, row: int, scroll: bool = True) -> None:
        ix = self.model.index(row)
        self.view.selectionModel().setCurrentIndex(
            ix, QItemSelectionModel.SelectionFlag.ClearAndSelect)
        if scroll:
            self.view.scrollTo(ix)

    def current_cell(self):
        ix = self.view.currentIndex()
        return self.model.rows.cell_at(ix.row()) if ix.isValid() else None

    def _show_count(self) -> None:
        """The slide count of the open images (from their live tables: a few ms)."""
        if not self.lives:
            self.progress_label.value = "No segmented image open (Segment or open a project)."
            return
        try:
            text = slide_count_text(self.lives, self.classes, int(self.target.value))
        except ValueError as exc:  # CaseError: a table the count cannot use
            text = f"slide count: {exc}"
        self.progress_label.value = text
        refit(self.view)  # the count lines under the grid stay in sight

    # ---- lifetime --------------------------------------------------------------------------
    def close_widget(self, deleted: bool = False) -> None:
        if self._closed:
            return
        self._closed = True
        if not deleted:
            self._timer.stop()
        layers = self._viewer.layers
        for event in (layers.events.inserted, layers.events.removed):
            event.disconnect(self.schedule_refresh)
        for live in self.lives.values():
            live.unlisten(self._on_counts)
        self._close_actions()
        self.model.close()
