"""Where a segmentation's label layers go: new layers, or in place of an earlier run's.

A run on an image that has its three result layers already (``<image> nucleus``, ...)
replaces them in place: the same layer objects get the new data, table and metadata, so
the Correct dock stays attached and the layer list does not grow.  The earlier arrays,
tables and metadata are kept for one "Undo replace".  Layers that were corrected (their
arrays differ from what Segment wrote, or cells were marked reviewed; layers from a
project or a script count as corrected) are only replaced after a question: Replace, Keep
both (new layers named ``<image> (<model>) ...``) or Cancel.  New layers are added a step
per event-loop turn (``staged_layers``), and a replace writes a layer per turn, so the
viewer does not freeze while they come in.

``ResultLayers`` is a mixin of ``SegmentWidget``; ``confirm_replace(image name)`` is an
attribute, so tests (and scripts) answer the question without a modal dialog.

:func:`image_class_table` is the class table an image is segmented in (a loaded
project's); the result layers carry it in their metadata (``classes``), as a loaded
project's layers do, so the counts, Correct and the gallery use it.
"""
from __future__ import annotations

from contextlib import ExitStack
from dataclasses import dataclass

import numpy as np
from napari.utils.notifications import show_info

from ..core.image_counts import labels_checksum
from ..schema import labels_layer_kwargs, style_labels_layer
from ..schemes.tables import classes_to_json
from .correction_layers import find_layer_sets
from .live_counts import KINDS, layer_classes, live_counts
from .review_metadata import read_review
from .staged_layers import StagedLayers, StagedReplace

REPLACE, KEEP, CANCEL = "replace", "keep both", "cancel"
CHECKSUM_KEY = "wbcseg_result_checksum"  # label-layer metadata: the arrays Segment wrote


def ask_replace(image_name: str) -> str:
    """The modal question for corrected layers: REPLACE, KEEP or CANCEL."""
    from qtpy.QtWidgets import QMessageBox

    box = QMessageBox(QMessageBox.Icon.Question, "Segment again",
                      f"The label layers of {image_name!r} were corrected (edited or cells "
                      "marked reviewed). Replace them with the new result?")
    box.setInformativeText("Replace: the new result goes into the same layers ('Undo "
                           "replace' in the Segment dock brings the corrected ones back). "
                           "Keep both: the new result gets its own layers, named with the "
                           "model. Cancel: nothing changes.")
    replace = box.addButton("Replace", QMessageBox.ButtonRole.DestructiveRole)
    keep = box.addButton("Keep both", QMessageBox.ButtonRole.AcceptRole)
    box.addButton(QMessageBox.StandardButton.Cancel)
    box.setDefaultButton(keep)
    box.exec_()
    clicked = box.clickedButton()
    return REPLACE if clicked is replace else KEEP if clicked is keep else CANCEL


def image_class_table(layers, image) -> tuple | None:
    """The class table ``image`` is counted in: that of its cell-type layer (a loaded
    project puts the project's there), else the image layer's own metadata ``classes``;
    None where neither has one (the model's table)."""
    if image is None:
        return None
    labels = find_layer_sets(layers).get(image.name)
    for holder in ((labels or {}).get("cell_type"), image):
        if holder is not None and holder.metadata.get("classes"):
            return layer_classes(holder)
    return None


def checksum_of(layers: dict) -> str:
    return labels_checksum(*(np.asarray(layers[k].data) for k in KINDS))


def corrected(layers: dict) -> bool:
    """Were these result layers changed since Segment wrote them (or not written by it)?"""
    recorded = layers["nucleus"].metadata.get(CHECKSUM_KEY)
    review = read_review(layers.values())
    return recorded is None or recorded != checksum_of(layers) or review.reviewed or bool(
        review.cells)


@dataclass
class _Replaced:
    """What one replace overwrote, and the checksum of what it wrote."""

    image: str
    layers: dict
    before: dict  # kind -> (data, features, metadata, scale, translate)
    written: str


def _clear_history(layer) -> None:
    """Drop napari's undo history of ``layer`` (its items are about the old data): napari
    resets a Labels layer's history when it stops being editable."""
    editable = layer.editable
    layer.editable = False
    layer.editable = editable


def _write_layer(layer, data, features, metadata, scale, translate) -> None:
    """One layer's data, table, metadata and placement; its undo history is dropped."""
    layer.data = data  # the old array object stays as it was (Undo replace)
    layer.features = features
    layer.metadata = metadata
    # each placement change re-slices the layer (and redraws the cell type's outline,
    # ~0.1 s on a 2048x1536 field): only when it really changes
    if not np.array_equal(layer.scale, np.asarray(scale, float)):
        layer.scale = scale
    if not np.array_equal(layer.translate, np.asarray(translate, float)):
        layer.translate = translate
    _clear_history(layer)


class ResultLayers:
    """Adding, replacing and un-replacing result layers (expects ``SegmentWidget``'s
    ``_viewer``, ``native``, ``confirm_replace``, ``undo_replace_button``, ``_show_layers``
    and ``_set_status``)."""

    _replaced: _Replaced | None = None
    staging: StagedLayers | None = None  # new layers being added, a step a turn

    def previous_results(self, image_name: str) -> dict | None:
        """The result layers of ``image_name`` now in the viewer (schema names), or None."""
        return find_layer_sets(self._viewer.layers).get(image_name)

    def answer_for(self, image_name: str, answer: str | None = None) -> str:
        """REPLACE, KEEP or CANCEL for a result of ``image_name``: unedited earlier layers
        are replaced, corrected ones only as ``answer`` or ``confirm_replace`` says."""
        previous = self.previous_results(image_name)
        if previous is None:
            return KEEP
        if answer is None and corrected(previous):
            answer = self.confirm_replace(image_name)
        return answer or REPLACE

    def put_result(self, name, result, scale, translate, params, then, answer=None,
                   in_turns=False) -> None:
        """Put ``result`` into the viewer, then call ``then(layers, what was done)`` (layers
        None: why nothing was put).  A replace is done at once; new layers are added over
        several event-loop turns when ``in_turns`` (``staging`` meanwhile), else at once."""
        answer = self.answer_for(name, answer)
        if answer == CANCEL:
            then(None, f"kept the corrected layers of {name!r}; the new result was dropped")
            return
        previous = self.previous_results(name)
        if previous is not None and answer == REPLACE:
            self._replace(name, previous, result, scale, translate, params, then, in_turns)
            return
        base = name if previous is None else f"{name} ({result.model})"
        table = (params.classes,) if params.classes else ()  # its colours, else the default
        specs = [(kind, data, dict(features=feats, metadata=meta, scale=scale, translate=translate,
                                   **labels_layer_kwargs(base, kind, *table)),
                  lambda layer, kind=kind: style_labels_layer(layer, kind))
                 for kind, data, feats, meta in self._layer_contents(name, result, params)]
        staging = StagedLayers(self._viewer, specs, parent=self.native,
                               wanted=lambda: name in self._viewer.layers)
        done = "" if previous is None else f"kept both: the new layers are '{base} ...'"

        def added(layers):
            self.staging = None
            self._stamp(layers)
            # the result's table is the count of these arrays: no second measuring
            live_counts(self._viewer, layers).adopt(result.table)
            then(layers, done)

        def dropped():
            self.staging = None
            then(None, f"layer {name!r} was removed while its results were added; "
                       "results dropped")
        if not in_turns:
            added(staging.run_now())
            return
        self.staging = staging
        staging.start(added, dropped)

    def stop_staging(self) -> bool:
        """Stop adding new layers (those added so far are removed); False if none were."""
        staging, self.staging = self.staging, None
        if staging is None or not staging.active:
            return False
        staging.stop()
        return True

    @staticmethod
    def _layer_contents(name, result, params):
        features = result.table.reset_index().rename(columns={"cell_id": "index"})
        diff = result.differential.reset_index().rename(columns={"class_code": "index"})
        meta = {"model": result.model, "device": result.device, "source_layer": name,
                "classifier": result.classifier,
                # the counting rules of the differential (core.image_counts.CountRules)
                "class_threshold": float(params.class_threshold),
                "include_border_cells": bool(params.include_border_cells)}
        if params.classes:  # as a loaded project's layers carry its table
            meta["classes"] = classes_to_json(params.classes)
        return [("nucleus", result.nucleus, features, dict(meta)),
                ("cytoplasm", result.cytoplasm, features, dict(meta)),
                ("cell_type", result.cell_type, diff, dict(meta))]

    @staticmethod
    def _stamp(layers) -> str:
        """Record the checksum of the arrays just written (``corrected`` compares with it)."""
        written = checksum_of(layers)
        for layer in layers.values():
            layer.metadata[CHECKSUM_KEY] = written
        return written

    def _replace(self, name, layers, result, scale, translate, params, then,
                 in_turns=False) -> None:
        """Write ``result`` into ``layers`` (a layer per event-loop turn when ``in_turns``,
        ``staging`` meanwhile), keep what they held for "Undo replace", then ``then``."""
        before = {k: (layer.data, layer.features.copy(), dict(layer.metadata),
                      tuple(layer.scale), tuple(layer.translate)) for k, layer in layers.items()}
        contents = {k: (d, f, m, scale, translate)
                    for k, d, f, m in self._layer_contents(name, result, params)}
        live = live_counts(self._viewer, layers)
        held = ExitStack()  # one recount, from the new table, after the last write
        held.enter_context(live.hold())

        def finished(_layers=None):
            self.staging = None
            try:
                live.adopt(result.table)
            finally:
                held.close()
            self._replaced = _Replaced(name, layers, before, self._stamp(layers))
            self.undo_replace_button.visible = True
            then(layers, f"replaced the layers of {name!r} ('Undo replace' brings the "
                         "earlier ones back)")

        def restore(kinds):
            try:
                for k in kinds:
                    _write_layer(layers[k], *before[k])
            finally:
                held.close()

        def dropped():
            self.staging = None
            then(None, f"layer {name!r} or its result layers were removed while the "
                       "results were written; the earlier layers were kept")
        writes = [(k, lambda k=k: _write_layer(layers[k], *contents[k])) for k in KINDS]
        staging = StagedReplace(self._viewer, layers, writes, restore, parent=self.native,
                                wanted=lambda: name in self._viewer.layers)
        if not in_turns:
            staging.run_now()
            finished()
            return
        self.staging = staging
        staging.start(finished, dropped)

    def _write(self, layers, contents, table=None) -> None:
        """Data, table, metadata and placement of each layer, recounted once (or counted
        from ``table``, the ``cell_table`` of the new arrays)."""
        live = live_counts(self._viewer, layers)
        with live.hold():
            for kind, data, feats, meta, scale, translate in contents:
                _write_layer(layers[kind], data, feats, meta, scale, translate)
            if table is not None:
                live.adopt(table)

    def undo_replace(self) -> bool:
        """Put back what the last replace overwrote, if the new layers are still unedited."""
        done = self._replaced
        self._replaced = None
        self.undo_replace_button.visible = False
        if done is None:
            show_info("Undo replace: nothing to undo")
            return False
        if not all(lay in self._viewer.layers for lay in done.layers.values()):
            show_info(f"Undo replace: the layers of {done.image!r} were removed")
            return False
        if checksum_of(done.layers) != done.written:
            show_info(f"Undo replace: the layers of {done.image!r} were edited since; "
                      "nothing was changed")
            return False
        self._write(done.layers, [(k, *done.before[k]) for k in KINDS])
        self._show_layers(done.layers, box_follows=True)
        self._set_status(f"restored the earlier layers of {done.image!r} "
                         f"(model {done.layers['nucleus'].metadata.get('model', 'unknown')})")
        return True
