"""Dock widget: correct white-cell masks and classes by hand, review, save a project.

Thin: the edits are ``core.editing`` functions; ``correction_layers.CorrectionLayers`` writes
them with napari's undoable ``data_setitem`` (one Ctrl+Z reverts a whole step on
every layer it touched) and rewrites the per-cell table; ``project_panel`` saves
and opens annotation projects.  Bad input gives a napari notification and changes
nothing.  Click a cell (any layer active in pan/zoom mode) to select it,
Shift+click a second one to merge; Ctrl+1..9 set a class (in the order of the class
buttons), Ctrl+0 "unidentified" (napari's own keys are left alone: docs/correction.md).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from magicgui.widgets import CheckBox, ComboBox, Container, Label, PushButton, Table
from napari.layers import Points, Shapes
from napari.utils.notifications import show_info, show_warning

from ..core import editing
from .correction_layers import CorrectionLayers, find_layer_sets, shape_problem
from .differential_view import EMPTY_COUNTS
from .correction_view import CorrectionView, on_removed
from .project_panel import ReviewProjectActions
from .viewer_audit import EditTrail, written_code
from .dock_scroll import scroll_in_dock
from .dock_help import add_help_link
from .tooltips import CORRECT, apply_tooltips

HINT = ("Click a cell to select it (pan/zoom mode), Shift+click a second one to merge. "
        "Ctrl+1-9 set the class (buttons in order), Ctrl+0 unidentified; Ctrl+Z on a label "
        "layer undoes a step. napari's own keys (1-7 label tools) keep working.")


def _row(*widgets) -> Container:
    row = Container(layout="horizontal", labels=False, widgets=widgets)
    row.margins = (0, 0, 0, 0)
    return row


class CorrectionWidget(CorrectionView, ReviewProjectActions, Container):
    def __init__(self, napari_viewer: "napari.viewer.Viewer"):  # noqa: F821
        super().__init__()
        scroll_in_dock(self)  # scrolls in its dock instead of growing the window
        self._viewer = napari_viewer
        self.current: CorrectionLayers | None = None
        self.selected, self.second = 0, 0
        self.table = None  # per-cell table of the current set (pandas)
        self._classes = ()
        self._bound: list = []  # (viewer or layer, key, previous binding)
        self._closed = self._busy = False
        self.project_dir: Path | None = None
        self.project_worker = None  # a background project save or open
        self.trail = EditTrail(napari_viewer)  # class changes and deletes: the audit trail

        self.layer_set = ComboBox(label="cells of", choices=self._set_choices)
        self.info = Label(value="")
        self.class_rows = Container(labels=False)
        self.class_rows.margins = (0, 0, 0, 0)
        self.delete_button = PushButton(text="Delete cell")
        self.merge_button = PushButton(text="Merge 2 cells")
        self.fill_button = PushButton(text="Fill holes")
        self.line_button = PushButton(text="Draw split line")
        self.split_line_button = PushButton(text="Split along line")
        self.seeds_button = PushButton(text="Place seeds")
        self.split_seeds_button = PushButton(text="Split by seeds")
        self.part = ComboBox(choices=["nucleus", "cytoplasm"], value="nucleus")
        self.paint_button = PushButton(text="Paint")
        self.stop_paint_button = PushButton(text="Stop painting")
        self.undo_button = PushButton(text="Undo")
        self.redo_button = PushButton(text="Redo")
        self.image_reviewed = CheckBox(text="Reviewed: every cell of this image checked")
        self.cell_reviewed_button = PushButton(text="Mark cell reviewed")
        self.review_label = Label(value="")
        self.review_label.native.setWordWrap(True)  # it names border cells and cells to check
        self.counts = Table(value=EMPTY_COUNTS)
        self.open_button = PushButton(text="Open project...")
        self.save_button = PushButton(text="Save project...")
        self.hint = Label(value=HINT)
        self.hint.native.setWordWrap(True)
        self.extend([
            self.layer_set, self.info, self.class_rows,
            _row(self.delete_button, self.merge_button, self.fill_button),
            _row(self.line_button, self.split_line_button),
            _row(self.seeds_button, self.split_seeds_button),
            _row(self.part, self.paint_button, self.stop_paint_button),
            _row(self.undo_button, self.redo_button),
            self.image_reviewed, _row(self.cell_reviewed_button, self.review_label),
            self.counts, _row(self.open_button, self.save_button), self.hint])
        apply_tooltips(self, CORRECT)
        add_help_link(self, "correction.md")
        for button, slot in ((self.delete_button, self.delete_cell), (self.merge_button, self.merge),
                             (self.fill_button, self.fill_holes),
                             (self.line_button, self.draw_split_line),
                             (self.split_line_button, self.split_along_line),
                             (self.seeds_button, self.place_seeds),
                             (self.split_seeds_button, self.split_by_seeds),
                             (self.paint_button, self.start_paint),
                             (self.stop_paint_button, self.stop_paint),
                             (self.undo_button, self.undo), (self.redo_button, self.redo),
                             (self.cell_reviewed_button, self.toggle_cell_reviewed),
                             (self.open_button, self._on_open_clicked),
                             (self.save_button, self._on_save_clicked)):
            button.changed.connect(lambda *_, slot=slot: slot())
        self.layer_set.changed.connect(self._attach)
        self.image_reviewed.changed.connect(self._on_image_reviewed)
        layers = napari_viewer.layers
        layers.events.inserted.connect(self._on_inserted)
        layers.events.removed.connect(self.refresh_sets)
        for layer in layers:
            layer.events.name.connect(self.refresh_sets)
        napari_viewer.mouse_drag_callbacks.append(self._on_mouse)
        on_removed(self.native, self.close_widget)
        self._attach(self.layer_set.value)

    # ---- layer sets --------------------------------------------------------------------------
    def _attach(self, name=None):
        if self._closed or self._busy:
            return
        self._busy = True
        try:
            if self.current is not None:
                self.current.close()
                self._unbind_keys()
                self._remove_helpers()
            self.current, self.selected, self.second, self.table = None, 0, 0, None
            self.trail.reset()  # the new set has an undo history of its own
            layers = find_layer_sets(self._viewer.layers).get(name) if name else None
            problem = shape_problem(layers) if layers is not None else None
            if problem:
                show_warning(f"Correct: {name!r} cannot be edited: {problem}")
                layers = None
            if layers is None:
                self.info.value = "No image with nucleus, cytoplasm and cell type label layers."
                self.counts.value = EMPTY_COUNTS
                self.review_label.value = ""
                return
            self.current = CorrectionLayers(self._viewer, name, layers,
                                            on_change=self._on_layers_changed)
            if self.current.classes != self._classes:
                self._build_class_buttons(self.current.classes)
            self._bind_keys()
            self._refresh()
        finally:
            self._busy = False

    def _need_set(self, what: str) -> CorrectionLayers | None:
        if self.current is None or not self.current.alive:
            show_info(f"{what}: no image with nucleus, cytoplasm and cell type label layers "
                      "(segment an image or open a project first)")
            return None
        return self.current

    # ---- selection -----------------------------------------------------------------------------
    def _on_mouse(self, viewer, event):
        active = viewer.layers.selection.active
        if self.current is None or event.button != 1 or (
                active is not None and getattr(active, "mode", "pan_zoom") != "pan_zoom"):
            return
        yield
        dragged = False
        while event.type == "mouse_move":
            dragged = True
            yield
        if not dragged and self.current is not None:
            yx = self.current.layers["nucleus"].world_to_data(event.position)[-2:]
            self.select_at(yx, add="Shift" in event.modifiers)

    def select_at(self, yx, add: bool = False) -> int:
        """Select the cell under the data point ``yx`` (``add``: as the second cell)."""
        ls = self._need_set("Select")
        if ls is None:
            return 0
        a = ls.arrays()
        cid = editing.cell_at(a["nucleus"], a["cytoplasm"], yx)
        if not cid:
            show_info("Select: no white cell at this point (background)")
        elif add and self.selected and cid != self.selected:
            self.second = cid
        else:
            self.selected, self.second = cid, 0
        self._show_selection()
        return cid

    def select(self, cell_id: int, second: int = 0) -> None:
        ids = set(self.table.index) if self.table is not None else set()
        self.selected = int(cell_id) if cell_id in ids else 0
        self.second = int(second) if second in ids and second != self.selected else 0
        self._show_selection()

    def _need_cell(self, what: str) -> int:
        if not self.selected:
            show_info(f"{what}: click a cell first")
        return self.selected

    # ---- edits ------------------------------------------------------------------------------
    def _edit(self, what: str, make, audit=None) -> bool:
        """Apply ``make(arrays)``; ``audit(edit)``: {cell: new class, 0 gone} for the trail."""
        ls = self._need_set(what)
        if ls is None:
            return False
        try:
            edit = make(ls.arrays())
        except ValueError as exc:
            show_warning(f"{what}: {exc}")
            return False
        if edit.empty:
            show_info(f"{what}: nothing to change")
            return False
        before = self.trail.before(ls) if audit else None
        if not ls.apply(edit):
            return False
        if audit:
            self.trail.edited(ls, before, audit(edit))
        else:
            self.trail.other_edit()
        return True

    def set_class(self, code: int) -> bool:
        cid = self._need_set("Set class") and self._need_cell("Set class")
        return bool(cid) and self._edit("Set class", lambda a: editing.set_class(a, cid, int(code)),
                                        audit=lambda edit: {cid: int(code)})

    def delete_cell(self) -> bool:
        cid = self._need_set("Delete") and self._need_cell("Delete")
        return bool(cid) and self._edit("Delete", lambda a: editing.delete_cell(a, cid),
                                        audit=lambda edit: {cid: 0})

    def merge(self) -> bool:
        if self._need_set("Merge") is None:
            return False
        if not (self.selected and self.second):
            show_info("Merge: select two cells (click one, Shift+click the other)")
            return False
        a, b = self.selected, self.second  # b joins a: b is deleted, a may change class
        return self._edit("Merge", lambda arr: editing.merge_cells(arr, a, b),
                          audit=lambda edit: {b: 0, a: written_code(edit)})

    def fill_holes(self) -> bool:
        """Fill the holes of the selected cell, or of every cell when none is selected."""
        return self._edit("Fill holes", lambda a: editing.fill_holes(a, self.selected or None))

    def _start_drawing(self, kind, what: str, mode: str, hint: str, **kwargs) -> None:
        """Activate the helper layer ``what`` in ``mode`` and tell the user what to do."""
        if self._need_set("Split") is None:
            return
        layer = self._helper(kind, what, **kwargs)
        self._viewer.layers.selection.active = layer
        layer.mode = mode
        show_info(f"Split: {hint}")

    def draw_split_line(self) -> None:
        self._start_drawing(Shapes, "split line", "add_path", "draw a line across the cell "
                            "(double-click ends it), then 'Split along line'",
                            edge_color="#00ffff", edge_width=2)

    def split_along_line(self) -> bool:
        """Split the selected cell (or the one cell the line crosses) along the last line."""
        ls = self._need_set("Split")
        name = f"{ls.name} split line" if ls else None
        if ls is not None and name in self._viewer.layers:
            self._viewer.layers[name].mode = "pan_zoom"  # finishes a path still being drawn
        if ls is None or name not in self._viewer.layers or not len(self._viewer.layers[name].data):
            ls and show_info("Split: draw a split line first ('Draw split line')")
            return False
        line = np.asarray(self._viewer.layers[name].data[-1])[:, -2:]
        cid = self.selected or self._only_cell_on(line)
        if not cid or not self._edit("Split", lambda a: editing.split_cell_by_line(a, cid, line)):
            return False
        self._viewer.layers[name].data = []
        return True

    def _only_cell_on(self, line) -> int:
        a = self.current.arrays()
        pts = np.concatenate([np.linspace(p, q, int(np.abs(q - p).max()) * 2 + 2)
                              for p, q in zip(line[:-1], line[1:])])
        rc = np.floor(pts + 0.5).astype(int)
        rc = rc[((rc >= 0) & (rc < a["nucleus"].shape)).all(axis=1)]
        ids = np.unique(np.maximum(a["nucleus"][tuple(rc.T)], a["cytoplasm"][tuple(rc.T)]))
        ids = ids[ids > 0]
        if len(ids) != 1:
            show_info(f"Split: the line crosses {len(ids)} cells; click the cell to split first")
            return 0
        return int(ids[0])

    def place_seeds(self) -> None:
        self._start_drawing(Points, "split seeds", "add", "click one seed in each part of "
                            "the cell, then 'Split by seeds'", face_color="#ff00ff", size=8)

    def split_by_seeds(self) -> bool:
        ls = self._need_set("Split")
        name = f"{ls.name} split seeds" if ls else None
        if ls is None or name not in self._viewer.layers or len(self._viewer.layers[name].data) < 2:
            ls and show_info("Split: place two or more seeds first ('Place seeds')")
            return False
        seeds = np.asarray(self._viewer.layers[name].data)[:, -2:]
        a = ls.arrays()
        cid = self.selected or editing.cell_at(a["nucleus"], a["cytoplasm"], seeds[0])
        if not self._edit("Split", lambda arr: editing.split_cell_by_seeds(arr, cid, seeds)):
            return False
        self._viewer.layers[name].data = np.zeros((0, 2))
        self._viewer.layers[name].mode = "pan_zoom"
        return True

    def start_paint(self) -> None:
        """napari's brush on the nucleus or cytoplasm layer with the selected cell's id.

        Without a selection the brush paints a new cell.  Every stroke is followed by
        ``editing.reconcile`` (nucleus wins over cytoplasm, one class per cell)."""
        ls = self._need_set("Paint")
        if ls is None:
            return
        cid = self.selected or editing.new_cell_id(ls.arrays())
        layer = ls.layers[self.part.value]
        layer.selected_label = cid
        layer.preserve_labels = True  # never paint over another cell
        self._viewer.layers.selection.active = layer
        layer.mode = "paint"
        show_info(f"Paint: {self.part.value} of {'cell' if self.selected else 'new cell'} {cid}; "
                  "'Stop painting' to select cells again")

    def stop_paint(self) -> None:
        if self.current is not None:
            for layer in self.current.layers.values():
                layer.mode = "pan_zoom"

    def undo(self) -> bool:
        ls = self._need_set("Undo")
        if ls is not None and not self.replay(False):
            show_info("Undo: nothing to undo")
            return False
        return ls is not None

    def redo(self) -> bool:
        ls = self._need_set("Redo")
        if ls is not None and not self.replay(True):
            show_info("Redo: nothing to redo")
            return False
        return ls is not None
