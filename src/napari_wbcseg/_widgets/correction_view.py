"""Display, key bindings and lifetime of the correction dock widget (a mixin).

Kept apart from ``correction_widget.py`` (the actions) so both files stay small.
The mixin expects the attributes that ``CorrectionWidget.__init__`` creates.
"""
from __future__ import annotations

import numpy as np
from magicgui.widgets import PushButton
from napari.layers import Shapes
from qtpy.QtCore import QEvent, QObject

from ..schema import UNIDENTIFIED
from .correction_layers import find_layer_sets
from .differential_view import counts_value, summary_line

HELPER = "wbcseg_helper"  # metadata flag of the widget's own shapes/points layers
PRIMARY, SECOND = "#ffffff", "#00ffff"  # outline of the selected cell and the merge partner
# class keys are Ctrl+digit: napari binds no Ctrl+digit, while its label tools are the bare
# digits (napari's "Control" is the Command key on macOS)
CLASS_KEY_MODIFIER = "Control"


def _shown(key: str) -> str:
    return key.replace("Control-", "Ctrl+")


class _RemovalWatcher(QObject):
    def __init__(self, widget, callback):
        super().__init__(widget)
        self._callback = callback

    def eventFilter(self, obj, event):  # noqa: N802 (Qt API)
        if event.type() == QEvent.Type.ParentChange and obj.parent() is None:
            self._callback()  # napari's dock "close" un-parents the widget
        return False


def on_removed(native, callback) -> None:
    """Call ``callback`` when the Qt widget ``native`` is taken out of its dock."""
    native._wbcseg_watcher = watcher = _RemovalWatcher(native, callback)
    native.installEventFilter(watcher)


def _text_color(hex_color: str) -> str:
    r, g, b = (int(hex_color.lstrip("#")[i:i + 2], 16) for i in (0, 2, 4))
    return "#000000" if 0.299 * r + 0.587 * g + 0.114 * b > 140 else "#ffffff"


class CorrectionView:
    # ---- class buttons and keys ---------------------------------------------------------------
    def class_keys(self) -> dict[str, int]:
        """Key -> class code: Ctrl+1..9 the classes of the table in order, Ctrl+0
        unidentified.  napari binds none of these (its label tools are the bare digits
        1-7 and letters), so no napari shortcut is shadowed; see docs/correction.md."""
        known = [c for c in self._classes if c.code != UNIDENTIFIED][:9]
        keys = {f"{CLASS_KEY_MODIFIER}-{i + 1}": c.code for i, c in enumerate(known)}
        keys[f"{CLASS_KEY_MODIFIER}-0"] = UNIDENTIFIED
        return keys

    def _build_class_buttons(self, classes) -> None:
        from .correction_widget import _row

        self._classes = tuple(classes)
        self.class_rows.clear()
        key_of = {code: key for key, code in reversed(self.class_keys().items())}
        buttons = []
        for c in list(self._classes) + ([] if any(c.code == UNIDENTIFIED for c in self._classes)
                                        else [type(self._classes[0])(UNIDENTIFIED, "unidentified",
                                                                     "#a0a0a0")]):
            key = key_of.get(c.code)
            b = PushButton(text=f"{c.name} ({_shown(key)})" if key else c.name, tooltip=f"set the selected cell's class to {c.name} "
                           f"(code {c.code}); key {_shown(key) if key else '-'}")
            b.native.setStyleSheet(f"background-color: {c.color}; color: {_text_color(c.color)};"
                                   " font-weight: bold; padding: 3px;")
            b.changed.connect(lambda *_, code=c.code: self.set_class(code))
            buttons.append(b)
        for i in range(0, len(buttons), 3):
            self.class_rows.append(_row(*buttons[i:i + 3]))
        self.class_buttons = buttons

    def _on_key(self, key: str) -> None:
        code = self.class_keys().get(key)
        if code is not None:
            self.set_class(code)

    # ---- undo and redo (the audit trail follows: viewer_audit.EditTrail) -------------------
    def replay(self, forward: bool) -> bool:
        """Undo (``forward``: redo) one step of the attached set; its class changes go to
        the audit trail.  False when there is none."""
        ls = self.current
        if ls is None or not (ls.redo() if forward else ls.undo()):
            return False
        self.trail.replayed(ls, forward)
        return True

    def _undo_key(self, layer) -> None:
        if not self.replay(False):
            layer.undo()  # history from before the widget: napari's own per-layer undo
        if self.current is not None and layer in self.current.layers.values():
            self._refresh()

    def _redo_key(self, layer) -> None:
        if not self.replay(True):
            layer.redo()
        if self.current is not None and layer in self.current.layers.values():
            self._refresh()

    def _bind_keys(self) -> None:
        """Class keys (Ctrl+digit) on the viewer; Ctrl+Z / Ctrl+Shift+Z on the label layers.

        The class keys are unused by napari, so its own keys (1-7 the label tools, 1-2
        the image modes) keep working; Ctrl+Z stays an undo, of the whole correction step
        on every layer.  The previous bindings come back on :meth:`_unbind_keys`."""
        self._unbind_keys()
        for k in self.class_keys():
            f = (lambda _src, k=k: self._on_key(k))
            self._bound.append((self._viewer, k, self._viewer.bind_key(k, f, overwrite=True)))
        for layer in self.current.layers.values():
            for k, f in (("Control-Z", self._undo_key), ("Control-Shift-Z", self._redo_key)):
                self._bound.append((layer, k, layer.bind_key(k, f, overwrite=True)))

    def _unbind_keys(self) -> None:
        while self._bound:
            owner, key, previous = self._bound.pop()
            owner.bind_key(key, previous, overwrite=True)  # None removes ours

    # ---- layer sets and helper layers -------------------------------------------------------
    def _set_choices(self, _widget=None):
        return list(find_layer_sets(self._viewer.layers))

    def _on_inserted(self, event):
        event.value.events.name.connect(self.refresh_sets)
        self.refresh_sets()

    def refresh_sets(self, *_):
        if self._closed or self._busy:
            return
        self.layer_set.reset_choices()
        now = find_layer_sets(self._viewer.layers).get(self.layer_set.value)
        # (viewer.layers[name] gives a plugin a proxy of the layer: compare with ==)
        if now is None or self.current is None or any(
                now[k] != self.current.layers[k] for k in now):
            self._attach(self.layer_set.value)

    def _helper(self, kind, name, **kwargs):
        ls = self.current
        full = f"{ls.name} {name}"
        if full in self._viewer.layers:
            return self._viewer.layers[full]
        ref = ls.layers["nucleus"]
        add = self._viewer.add_shapes if kind is Shapes else self._viewer.add_points
        return add(name=full, scale=ref.scale, translate=ref.translate,
                   metadata={HELPER: True}, **kwargs)

    # ---- refresh ----------------------------------------------------------------------------
    def _on_layers_changed(self, cells=()) -> None:
        self._refresh()

    def _refresh(self) -> None:
        ls = self.current
        if ls is None or not ls.alive or getattr(self, "_refreshing", False):
            return  # (a recount while refreshing calls back here: shown once)
        self._refreshing = True
        try:
            self._show_counts(ls)
        finally:
            self._refreshing = False

    def _show_counts(self, ls) -> None:
        # the shared count of the layers: what the Segment dock and the features show
        self.table, diff = ls.refresh_features()
        ids = set(self.table.index.tolist())
        if self.selected not in ids:
            self.selected = 0
        if self.second not in ids or self.second == self.selected:
            self.second = 0
        self.counts.value = counts_value(diff)
        review = ls.review
        if self.image_reviewed.value != review.reviewed:
            self.image_reviewed.value = review.reviewed
        self.review_label.value = (f"{len(review.cells & ids)} of {len(ids)} cells marked; "
                                   f"{diff.attrs['total']} white cells counted; "
                                   f"{summary_line(diff, self.table)}")
        self._show_selection()

    def _show_selection(self) -> None:
        ls = self.current
        if ls is None:
            return
        row = self.table.loc[self.selected] if self.selected and self.table is not None else None
        if row is None:
            self.info.value = "No cell selected: click a cell."
        else:
            um = f" ({row['cell_area_um2']:.0f} µm²)" if "cell_area_um2" in row.index else ""
            mark = "reviewed" if self.selected in ls.review.cells else "not reviewed"
            self.info.value = (
                f"Cell {self.selected}: {row['class']} ({mark})\n"
                f"area {row['cell_area_px']} px{um}, nucleus {row['nucleus_area_px']} px, "
                f"cytoplasm {row['cytoplasm_area_px']} px")
            if self.second:
                self.info.value += f"\nsecond cell for merge: {self.second}"
            for kind in ("nucleus", "cytoplasm"):
                ls.layers[kind].selected_label = self.selected
        self.cell_reviewed_button.text = ("Unmark cell reviewed" if row is not None and
                                          self.selected in ls.review.cells else
                                          "Mark cell reviewed")
        self._outline()

    def _outline(self) -> None:
        """Rectangles around the selected cell (white) and the merge partner (cyan).

        Redrawn only when they moved (a shapes layer update costs tens of ms, and every
        refresh of the dock comes here); the same colours: one ``data`` update."""
        ls = self.current
        name = f"{ls.name} selected cell"
        cells = [(c, col) for c, col in ((self.selected, PRIMARY), (self.second, SECOND)) if c]
        if not cells and name not in self._viewer.layers:
            return
        a = ls.arrays()
        rects = []
        for cid, _ in cells:
            mask = (a["nucleus"] == cid) | (a["cytoplasm"] == cid)
            r, c = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
            rects.append([[r[0] - 3, c[0] - 3], [r[-1] + 3, c[-1] + 3]])
        colors = [col for _, col in cells]
        if name not in self._viewer.layers:
            active = self._viewer.layers.selection.active
            ref = ls.layers["nucleus"]
            self._viewer.add_shapes(name=name, scale=ref.scale, translate=ref.translate,
                                    metadata={HELPER: True}, ndim=2)
            self._viewer.layers.selection.active = active  # keys stay with the active layer
        layer = self._viewer.layers[name]
        drawn = getattr(self, "_outlined", None)  # (layer, colours) of the last drawing
        # (viewer.layers[name] gives a plugin a proxy of the layer: compare with ==)
        if drawn is not None and drawn[0] == layer and drawn[1] == colors:
            shown = [[d.min(0).tolist(), d.max(0).tolist()] for d in layer.data]
            if shown == rects:
                return  # the same rectangles: nothing to draw
            if rects and len(shown) == len(rects):
                layer.data = np.array(rects, float)  # keeps the shape types and colours
                return
        layer.data = []
        if rects:
            layer.add_rectangles(np.array(rects, float), edge_width=3,
                                 face_color="transparent", edge_color=colors)
        self._outlined = (layer, colors)

    def _remove_helpers(self) -> None:
        for layer in [lay for lay in self._viewer.layers if lay.metadata.get(HELPER)]:
            if layer.name.endswith(" selected cell") or not len(layer.data):
                self._viewer.layers.remove(layer)

    # ---- lifetime -------------------------------------------------------------------------
    def close_widget(self) -> None:
        """Undo everything the widget hooked into the viewer (called when its dock closes)."""
        if self._closed:
            return
        self._closed = True
        self._unbind_keys()
        if self._on_mouse in self._viewer.mouse_drag_callbacks:
            self._viewer.mouse_drag_callbacks.remove(self._on_mouse)
        layers = self._viewer.layers
        layers.events.inserted.disconnect(self._on_inserted)
        layers.events.removed.disconnect(self.refresh_sets)
        for layer in layers:
            layer.events.name.disconnect(self.refresh_sets)
        if self.current is not None:
            self.current.close()
            self._remove_helpers()
            self.current = None
