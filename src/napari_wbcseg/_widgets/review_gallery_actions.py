"""The review gallery's actions (a mixin of ``ReviewGallery``): keys, edits, audit, camera.

Every edit is the Correct dock's own (``CorrectionWidget.set_class`` / ``delete_cell`` /
``toggle_cell_reviewed``, undoable there), on that dock attached to the cell's image; the
dock is opened when it is not.  The viewer's one audit log (``viewer_audit``) gets the
class changes and deletes from the Correct dock's edits (recorded there, once) and the
accepts from here; it is written to the project when the project is saved.
"""
from __future__ import annotations

from napari.utils.notifications import show_info, show_warning

from ..core.gallery_groups import class_hotkeys, position_keys
from .viewer_audit import audit_log

CORRECT_DOCK = "Correct white-cell labels"


class GalleryActions:
    def _init_actions(self) -> None:
        self._wanted_key = None  # the cell to make current after the next refresh

    def _close_actions(self) -> None:
        pass

    @property
    def audit(self):
        """The viewer's audit log (shared with the Correct dock; ``viewer_audit``)."""
        return audit_log(self._viewer)

    # ---- keys ------------------------------------------------------------------------------
    def on_key(self, key: str, ctrl: bool = False) -> bool:
        """Handle one gallery key (see the module docstring of ``review_gallery``)."""
        if key == "enter":
            return self.accept()
        if key == "space":
            return self.show_cell(self.current_cell())
        if key == "delete":
            return self.delete()
        # Ctrl+digit: the Correct dock's order; a bare key: the table's hotkey, else order
        code = (position_keys(self.classes) if ctrl else class_hotkeys(self.classes)).get(key)
        if code is None:
            return False
        return self.reclassify(code)

    # ---- the Correct dock's edit path ----------------------------------------------------------
    def correction_dock(self, create: bool = True):
        from .correction_widget import CorrectionWidget

        for widget in self._viewer.window.dock_widgets.values():
            if isinstance(widget, CorrectionWidget) and not widget._closed:
                return widget
        if not create:
            return None
        _, widget = self._viewer.window.add_plugin_dock_widget("napari-wbcseg", CORRECT_DOCK)
        self.view.setFocus()  # the keys stay with the gallery
        return widget

    def _attached(self, cell):
        """The Correct dock attached to ``cell``'s image with ``cell`` selected, or None."""
        if cell is None:
            show_info("Review: no cell selected")
            return None
        dock = self.correction_dock()
        if dock.layer_set.value != cell.image:
            dock.refresh_sets()
            dock.layer_set.value = cell.image
        if dock.current is None or dock.current.name != cell.image:
            show_warning(f"Review: the Correct dock cannot edit {cell.image!r}")
            return None
        dock.select(cell.cell_id)
        if dock.selected != cell.cell_id:
            show_info(f"Review: cell {cell.cell_id} of {cell.image!r} is gone")
            return None
        return dock

    def _next_key(self, cell):
        row = self.model.rows.row_of(cell.key)
        nxt = self.model.rows.next_cell_row(row) if row is not None else None
        if nxt is None and row is not None:
            nxt = self.model.rows.next_cell_row(row, -1)
        return self.model.rows.cell_at(nxt).key if nxt is not None else None

    def _accepted(self, cell) -> None:
        """Only the accept is recorded here: class changes and deletes are the Correct
        dock's edits, which record them (once, with their undo)."""
        self.audit.record(cell.image, cell.cell_id, "accept", cell.code, cell.code)

    def _mark_reviewed(self, dock, cell) -> None:
        if cell.cell_id not in dock.current.review.cells:
            dock.toggle_cell_reviewed()

    def reclassify(self, code: int) -> bool:
        """Set the current cell's class (its review mark too) and move to the next cell."""
        cell = self.current_cell()
        dock = self._attached(cell)
        if dock is None:
            return False
        nxt = self._next_key(cell)
        # the class edit and the review mark: one update of the counts, not two (the class
        # first: the mark's refresh of the Correct dock then makes the one recount)
        with dock.current.live.hold():
            if cell.code != code and not dock.set_class(int(code)):
                return False
            self._mark_reviewed(dock, cell)
        if cell.code == code:
            self._accepted(cell)
        self._moved(nxt)
        return True

    def accept(self) -> bool:
        """Mark the current cell reviewed with its class, move to the next cell."""
        cell = self.current_cell()
        dock = self._attached(cell)
        if dock is None:
            return False
        nxt = self._next_key(cell)
        self._mark_reviewed(dock, cell)
        self._accepted(cell)
        self._moved(nxt)
        return True

    def delete(self) -> bool:
        """Remove the current cell (not a white cell) from its layers; undo in the Correct dock."""
        cell = self.current_cell()
        dock = self._attached(cell)
        if dock is None:
            return False
        nxt = self._next_key(cell)
        if not dock.delete_cell():
            return False
        self._moved(nxt)
        return True

    def _moved(self, key) -> None:
        self._wanted_key = key
        self.refresh()  # now, so the next key press acts on the next cell

    # ---- the viewer ------------------------------------------------------------------------
    def show_cell(self, cell) -> bool:
        """Centre the viewer on ``cell`` (zoom kept) and select it in the Correct dock."""
        if cell is None:
            return False
        live = self.lives.get(cell.image)
        if live is None:
            return False
        table = live.current().table
        if cell.cell_id not in table.index:
            return False
        row = table.loc[cell.cell_id]
        world = live.layers["nucleus"].data_to_world([row["centroid_y"], row["centroid_x"]])
        zoom = self._viewer.camera.zoom
        self._viewer.camera.center = tuple(float(v) for v in world[-2:])
        self._viewer.camera.zoom = zoom
        self._attached(cell)
        self.view.setFocus()
        return True
