"""The three schema label layers of one image, as the correction widget edits them.

``find_layer_sets`` groups a viewer's Labels layers by image (``<image> nucleus``,
``<image> cytoplasm``, ``<image> cell type``, napari's `` [n]`` suffix of a re-run
included).  A :class:`CorrectionLayers` applies ``core.editing`` edits with napari's
undoable ``Labels.data_setitem``, groups the per-layer history items of one step
(``core.correction_state.UndoGroups``) so that one undo reverts the step on every
layer and repairs the schema after free-hand painting (``core.editing.reconcile``).  The
per-cell table and differential count (the layers' ``features``) are the set's shared
``live_counts.LiveCounts``: recounted once per step, the same count the Segment dock shows.
"""
from __future__ import annotations

import re

import numpy as np
from napari.layers import Image, Labels

from ..core import editing
from ..core.correction_state import ReviewState, UndoGroups
from ..schema import CellClass
from .live_counts import layer_classes, live_counts
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

    ``on_change(cells_changed)`` is called (on the GUI thread) each time the set's counts
    change: its own edit, undo or redo, a brush stroke, napari's undo, new
    metadata (the Segment dock's "count border cells").
    """

    def __init__(self, viewer, name: str, layers: dict[str, Labels], on_change=None):
        self.viewer, self.name, self.layers = viewer, name, dict(layers)
        self.on_change = on_change or (lambda cells: None)
        self.groups = UndoGroups()
        self._applying = False
        self._stroke_pending = False
        # the one count of these layers, shared with the Segment dock and kept current
        self.live = live_counts(viewer, self.layers)
        self.live.listen(self._on_counts)
        self._handlers = {}
        for kind, layer in self.layers.items():
            self._handlers[kind] = (lambda event, kind=kind: self._on_paint(kind))
            layer.events.paint.connect(self._handlers[kind])
        # new data (a re-run of Segment replaced the layers): the old undo steps are void
        self._on_data = lambda event: self.groups.clear()
        self.layers["nucleus"].events.data.connect(self._on_data)

    def close(self) -> None:
        for kind, layer in self.layers.items():
            layer.events.paint.disconnect(self._handlers[kind])
        self._handlers = {}
        self.layers["nucleus"].events.data.disconnect(self._on_data)
        self.live.unlisten(self._on_counts)

    def _on_counts(self, counts) -> None:
        if counts is not None:  # the layers are recounted: an edit, undo, brush, metadata
            self.on_change(())

    @property
    def alive(self) -> bool:
        return all(layer in self.viewer.layers for layer in self.layers.values())

    # ---- what the set knows --------------------------------------------------------------
    def arrays(self) -> dict[str, np.ndarray]:
        return {k: np.asarray(layer.data) for k, layer in self.layers.items()}

    @property
    def image_layer(self) -> Image | None:
        return self.live.image_layer(self.name)

    @property
    def classes(self) -> tuple[CellClass, ...]:
        return layer_classes(self.layers["cell_type"])

    @property
    def pixel_size_um(self) -> float | None:
        return self.live.pixel_size_um(self.image_layer)

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
        with self.live.hold(), self.groups.step():  # one recount, when the step is written
            self._write(edit)
            self.live.forget_confidence(edit.cells_changed)
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

    def _replay(self, keys, name: str) -> bool:
        if keys is None:
            return False
        with self.live.hold():
            for kind in keys:
                getattr(self.layers[kind], name)()
        return True

    def undo(self) -> bool:
        return self._replay(self.groups.pop_undo(), "undo")

    def redo(self) -> bool:
        return self._replay(self.groups.pop_redo(), "redo")

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
        with self.live.hold(), self.groups.extend_last():
            self._write(edit)
            self.live.forget_confidence(edit.cells_changed)

    # ---- table -------------------------------------------------------------------------------
    @property
    def include_border(self) -> bool:
        """Whether border cells are counted: the Segment dock's choice for these layers."""
        return self.live.rules.include_border

    def refresh_features(self):
        """The per-cell table and differential count of the layers as they are now (also
        in their ``features``): ``core.image_counts`` through the shared live count."""
        counts = self.live.current()
        return counts.table, counts.differential
