"""The three schema label layers of one image, as the correction widget edits them.

``find_layer_sets`` groups a viewer's Labels layers by image (``<image> nucleus``,
``<image> cytoplasm``, ``<image> cell type``, napari's `` [n]`` suffix of a re-run
included).  A :class:`CorrectionLayers` applies ``core.editing`` edits with napari's
undoable ``Labels.data_setitem``, groups the per-layer history items of one step
(``core.correction_state.UndoGroups``) so that one undo reverts the step on every
layer, repairs the schema after free-hand painting (``core.editing.reconcile``)
and rewrites the per-cell table and differential count in the layers' ``features``.
"""
from __future__ import annotations

import re

import numpy as np
from napari.layers import Image, Labels

from ..core import editing
from ..core.correction_state import ReviewState, UndoGroups
from ..core.measurements import cell_table, differential_count
from ..schema import DEFAULT_CLASSES, CellClass
from .review_metadata import read_review, write_review

KINDS = editing.LAYERS  # ("nucleus", "cytoplasm", "cell_type")
# "<image> nucleus", "<image> cytoplasm", "<image> cell type" (+ napari's " [n]" of a re-run)
LABEL_NAME = re.compile(r"^(?P<base>.+) (?P<kind>nucleus|cytoplasm|cell type)(?P<dup> \[\d+\])?$")


def find_layer_sets(layers) -> dict[str, dict[str, Labels]]:
    """``{set name: {kind: layer}}`` for every image with all three 2-D label layers."""
    found: dict[str, dict[str, Labels]] = {}
    for layer in layers:
        m = LABEL_NAME.match(layer.name)
        if m and isinstance(layer, Labels) and layer.ndim == 2 and not layer.multiscale:
            key = m["base"] + (m["dup"] or "")
            found.setdefault(key, {})[m["kind"].replace(" ", "_")] = layer
    return {k: v for k, v in found.items() if len(v) == 3}


def shape_problem(layers: dict[str, Labels]) -> str | None:
    """Why the three label layers cannot be edited together (None: they can)."""
    shapes = {k: tuple(layer.data.shape) for k, layer in layers.items()}
    if len(set(shapes.values())) == 1:
        return None
    return ("its label layers differ in size (" + ", ".join(
        f"{k.replace('_', ' ')} {'x'.join(map(str, s))}" for k, s in shapes.items()) + ")")


class CorrectionLayers:
    """Edits, grouped undo, table and review state of one image's three label layers.

    ``on_change(cells_changed)`` is called (on the GUI thread) after every change the
    set makes itself: an edit, an undo or redo, the repair after a brush stroke.
    """

    def __init__(self, viewer, name: str, layers: dict[str, Labels], on_change=None):
        self.viewer, self.name, self.layers = viewer, name, dict(layers)
        self.on_change = on_change or (lambda cells: None)
        self.groups = UndoGroups()
        self._applying = False
        self._stroke_pending = False
        feats = self.layers["nucleus"].features
        self._confidence = ({int(i): float(c) for i, c in zip(feats["index"], feats["confidence"])
                             if np.isfinite(c)}
                            if {"index", "confidence"} <= set(feats.columns) else {})
        self._handlers = {}
        for kind, layer in self.layers.items():
            self._handlers[kind] = (lambda event, kind=kind: self._on_paint(kind))
            layer.events.paint.connect(self._handlers[kind])
        # a new metadata dict (the Segment dock's "count border cells") changes the count
        self._on_metadata = lambda event: self.on_change(())
        self.layers["cell_type"].events.metadata.connect(self._on_metadata)

    def close(self) -> None:
        for kind, layer in self.layers.items():
            layer.events.paint.disconnect(self._handlers[kind])
        self._handlers = {}
        self.layers["cell_type"].events.metadata.disconnect(self._on_metadata)

    @property
    def alive(self) -> bool:
        return all(layer in self.viewer.layers for layer in self.layers.values())

    # ---- what the set knows --------------------------------------------------------------
    def arrays(self) -> dict[str, np.ndarray]:
        return {k: np.asarray(layer.data) for k, layer in self.layers.items()}

    @property
    def image_layer(self) -> Image | None:
        base = LABEL_NAME.match(self.layers["nucleus"].name)["base"]
        source = self.layers["nucleus"].metadata.get("source_layer")
        for candidate in (self.name, base, source):
            if candidate and candidate in self.viewer.layers:
                layer = self.viewer.layers[candidate]
                if isinstance(layer, Image):
                    return layer
        return None

    @property
    def classes(self) -> tuple[CellClass, ...]:
        table = self.layers["cell_type"].metadata.get("classes")
        if table:
            try:
                return tuple(c if isinstance(c, CellClass) else
                             CellClass(int(c["code"]), str(c["name"]), str(c.get("color", "#808080")))
                             for c in table)
            except (KeyError, TypeError, ValueError):
                pass
        return DEFAULT_CLASSES

    @property
    def pixel_size_um(self) -> float | None:
        for layer in (*self.layers.values(), self.image_layer):
            p = layer.metadata.get("pixel_size_um") if layer is not None else None
            if isinstance(p, (int, float)) and p > 0:
                return float(p)
        feats = self.layers["nucleus"].features  # a table made with a pixel size keeps it
        if {"cell_area_px", "cell_area_um2"} <= set(feats.columns) and len(feats):
            px, um2 = feats["cell_area_px"].to_numpy(float), feats["cell_area_um2"].to_numpy(float)
            ok = px > 0
            if ok.any():
                return float(np.sqrt(um2[ok][0] / px[ok][0]))
        return None

    @property
    def review(self) -> ReviewState:
        return read_review(self.layers.values())

    @review.setter
    def review(self, state: ReviewState) -> None:
        write_review(self.layers.values(), state)

    # ---- changing the layers ---------------------------------------------------------------
    def apply(self, edit: editing.Edit) -> bool:
        """Write ``edit`` with ``data_setitem`` (one napari undo item per layer, one step)."""
        if edit.empty:
            return False
        with self.groups.step():
            self._write(edit)
        for cid in edit.cells_changed:
            self._confidence.pop(cid, None)
        self.on_change(edit.cells_changed)
        return True

    def _write(self, edit: editing.Edit) -> None:
        self._applying = True
        try:
            for kind in KINDS:
                if kind in edit.changes:
                    idx, values = edit.changes[kind]
                    self.layers[kind].data_setitem(idx, values)
        finally:
            self._applying = False

    def undo(self) -> bool:
        keys = self.groups.pop_undo()
        if keys is None:
            return False
        for kind in keys:
            self.layers[kind].undo()
        self.on_change(())
        return True

    def redo(self) -> bool:
        keys = self.groups.pop_redo()
        if keys is None:
            return False
        for kind in keys:
            self.layers[kind].redo()
        self.on_change(())
        return True

    def _on_paint(self, kind: str) -> None:
        self.groups.record(kind)
        if self._applying or self._stroke_pending:
            return
        # a brush stroke, fill or polygon of napari's own tools: repair the schema once the
        # stroke is committed (napari is still inside its history block now)
        from qtpy.QtCore import QTimer

        self._stroke_pending = True
        QTimer.singleShot(0, self.reconcile_after_paint)

    def reconcile_after_paint(self) -> None:
        self._stroke_pending = False
        if not self.alive:
            return
        edit = editing.reconcile(self.arrays())
        with self.groups.extend_last():
            self._write(edit)
        self.on_change(edit.cells_changed)

    # ---- table -------------------------------------------------------------------------------
    @property
    def include_border(self) -> bool:
        """Whether border cells are counted: the Segment dock's choice for these layers."""
        return self.layers["cell_type"].metadata.get("include_border_cells", False) is True

    def refresh_features(self):
        """Recompute the per-cell table and differential count into ``features``."""
        classes = self.classes
        a = self.arrays()
        table = cell_table(a["nucleus"], a["cytoplasm"], a["cell_type"],
                           confidence=self._confidence, pixel_size_um=self.pixel_size_um,
                           classes=classes)
        table["reviewed"] = table.index.isin(sorted(self.review.cells))
        feats = table.reset_index().rename(columns={"cell_id": "index"})
        self.layers["nucleus"].features = feats
        self.layers["cytoplasm"].features = feats
        diff = differential_count(table, classes, include_border=self.include_border)
        self.layers["cell_type"].features = diff.reset_index().rename(
            columns={"class_code": "index"})
        return table, diff
