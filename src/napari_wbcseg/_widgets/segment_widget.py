"""Dock widget: segment white cells with a bundled or user network.

Thin: it snapshots the image and a ``SegmentParams``, drives
``inference.segment.segment_steps`` in a worker thread, and only touches layers
in the ``returned`` handler on the GUI thread.  Cancel closes the generator
between tiles; nothing is added for a cancelled or failed run.
"""
from __future__ import annotations

import logging

import numpy as np
from magicgui.widgets import (CheckBox, ComboBox, Container, FloatSpinBox, Label, ProgressBar,
                              PushButton, Table, create_widget)
from napari.layers import Image
from napari.qt.threading import thread_worker
from napari.utils.notifications import show_error, show_info, show_warning
from qtpy.QtWidgets import QSizePolicy

from ..schema import labels_layer_kwargs
from .differential_view import EMPTY_COUNTS, counts_value, summary_line
from .worker_errors import one_line, original, reported
from .dock_scroll import scroll_in_dock

_log = logging.getLogger(__name__)


class SegmentWidget(Container):
    def __init__(self, napari_viewer: "napari.viewer.Viewer"):  # noqa: F821
        super().__init__()
        scroll_in_dock(self)  # scrolls in its dock instead of growing the window
        self._viewer = napari_viewer
        self._worker = None
        self._last = None  # (image name, Segmentation) of the last finished run
        self._last_params = None  # the SegmentParams of that run
        self._shown = None  # the differential the dock shows (and exports)
        self._result_layers = []  # the label layers of the last run
        self.image = create_widget(annotation=Image, label="image")
        self.model = ComboBox(label="model", choices=self._model_choices)
        self.device = ComboBox(label="device", choices=["auto", "cpu", "cuda", "mps"], value="auto",
                               tooltip="auto = CUDA GPU, then Apple MPS, then CPU")
        self.preprocess = ComboBox(label="colour correction",
                                   choices=[("as trained", "model"), ("none", "none"),
                                            ("AHE-Retinex", "ahe-retinex")], value="model")
        self.cell_diameter = FloatSpinBox(label="cell diameter (px)", min=0, max=2000, step=5,
                                          value=0, tooltip="typical white-cell diameter; "
                                          "0 = estimate it from the red cells (auto)")
        self.pixel_size = FloatSpinBox(label="pixel size (µm)", min=0, max=10, step=0.01, value=0,
                                       tooltip="0 = unknown (table in pixels)")
        self.classifier = ComboBox(label="cell types", choices=self._classifier_choices,
                                   tooltip="auto = the per-cell classifier installed for the "
                                   "model's classes, else the network's own cell-type head")
        self.class_threshold = FloatSpinBox(label="unidentified below", min=0, max=1, step=0.05,
                                            value=0.5, tooltip="calibrated confidence below "
                                            "which a cell is 'unidentified' (classifier only); "
                                            "cells below it are counted 'to check'")
        self.count_border = CheckBox(text="count border cells", value=False,
                                     tooltip="count cells cut by the image border in the "
                                     "differential (off: left out, as hematologists count; "
                                     "the per-cell table flags them in touches_border)")
        self.run_button = PushButton(text="Segment")
        self.progress = ProgressBar(min=0, max=1, value=0, visible=False)
        self.status = Label(value="")
        self.counts = Table(value=EMPTY_COUNTS)
        self.summary = Label(value="")
        self.export_button = PushButton(text="Export differential count (CSV)...", enabled=False)
        self.extend([self.image, self.model, self.device, self.preprocess, self.cell_diameter,
                     self.pixel_size, self.classifier, self.class_threshold, self.count_border,
                     self.run_button, self.progress, self.status, self.counts, self.summary,
                     self.export_button])
        # a long status (model and classifier names) wraps instead of widening the dock
        self.status.native.setWordWrap(True)
        self.status.native.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.summary.native.setWordWrap(True)
        self.run_button.changed.connect(self._on_run_clicked)
        self.count_border.changed.connect(self._on_count_border_changed)
        self.export_button.changed.connect(self._on_export_clicked)
        napari_viewer.layers.events.inserted.connect(self.image.reset_choices)
        # models trained meanwhile (CLI, training widget) show up without a restart
        napari_viewer.layers.events.inserted.connect(self.refresh_models)
        napari_viewer.layers.events.removed.connect(self.image.reset_choices)

    @staticmethod
    def _model_choices(_widget=None):
        """(label, name) pairs, default model first; the label names the network family."""
        from ..io.model_store import DEFAULT_MODEL, model_entries
        from ..models import UnknownArchitectureError, architecture_info

        choices = []
        for name, entry in sorted(model_entries().items(),
                                  key=lambda kv: (kv[0] != DEFAULT_MODEL, kv[0])):
            try:
                family = architecture_info(entry.architecture)["family"]
            except (UnknownArchitectureError, AttributeError, TypeError, ValueError):
                # a hand-edited card: listed, and loading it says what is wrong
                family = "unknown architecture"
            mine = ", yours" if entry.origin == "user" else ""
            choices.append((f"{name} ({family}{mine})", name))
        return choices or [("(no model installed)", "(no model installed)")]

    @staticmethod
    def _classifier_choices(_widget=None):
        """(label, value) pairs: auto, the network head, then each installed classifier."""
        from ..io.classifier_store import classifier_entries

        choices = [("auto (installed classifier)", "auto"), ("network head", "none")]
        seen = set()
        for entry in classifier_entries():  # a user classifier hides a bundled one's name
            if entry.name not in seen:
                seen.add(entry.name)
                mine = " (yours)" if entry.origin == "user" else ""
                choices.append((f"{entry.name}{mine}", entry.name))
        return choices

    def refresh_models(self, *_):
        self.model.reset_choices()
        self.classifier.reset_choices()

    def params(self):
        from ..inference.segment import SegmentParams

        return SegmentParams(model=self.model.value, device=self.device.value,
                             preprocess=self.preprocess.value,
                             cell_diameter=self.cell_diameter.value or "auto",
                             pixel_size_um=self.pixel_size.value or None,
                             classifier=self.classifier.value,
                             class_threshold=float(self.class_threshold.value),
                             include_border_cells=bool(self.count_border.value))

    # ---- running ----------------------------------------------------------------------------
    def _on_run_clicked(self, *_):
        if self._worker is not None:
            self.cancel()
        else:
            self.run()

    def run(self):
        from ..core.image import ImageFormatError, as_rgb_uint8
        from ..inference.segment import check_image_size, segment_steps

        layer = self.image.value
        if layer is None:
            show_error("Segment: open or select an image layer first")
            return
        data = np.asarray(layer.data) if not layer.multiscale else None
        if data is None or data.ndim > 3 or (data.ndim == 3 and not layer.rgb and data.shape[-1] > 8):
            show_error(f"Segment: {layer.name!r} must be one 2D image (not a stack or pyramid)")
            return
        try:
            check_image_size(data.shape[:2], what=repr(layer.name))  # before the copy below
            rgb = as_rgb_uint8(data, what=layer.name)  # a snapshot: the worker never sees the layer
        except (ImageFormatError, ValueError) as exc:
            show_error(f"Segment: {exc}")
            return
        try:
            params = self.params()
        except ValueError as exc:  # e.g. a cell diameter in (0, 4) px: 0 means auto
            show_error(f"Segment: {one_line(exc)}")
            return
        # the label layers are 2D: the row and column axes come first (an HxWxC layer
        # that napari did not take as RGB has a third, channel, axis)
        self._source = (layer.name, tuple(layer.scale)[:2], tuple(layer.translate)[:2], params)
        # errors are shown by _on_errored (unexpected ones with their traceback in the log)
        worker = thread_worker(reported(segment_steps), start_thread=False,
                               ignore_errors=True)(rgb, params)
        worker.yielded.connect(self._on_event)
        worker.returned.connect(self._on_returned)
        worker.errored.connect(self._on_errored)
        worker.finished.connect(self._on_finished)
        self._worker = worker
        self.run_button.text = "Cancel"
        self.progress.visible, self.progress.value = True, 0
        self.status.value = "starting..."
        worker.start()

    def cancel(self):
        if self._worker is not None:
            self._worker.quit()  # the generator is closed after the current tile
            self.status.value = "cancelling..."

    def _on_event(self, ev):
        self.progress.max = max(ev.total, 1)
        self.progress.value = ev.done
        self.status.value = ev.message

    def _on_errored(self, exc):
        from ..io.model_store import ModelNotFoundError

        expected = isinstance(exc, (ValueError, OSError, ModelNotFoundError))
        if not expected:
            _log.error("segmentation failed", exc_info=original(exc))
        message = one_line(exc)
        show_error(f"{'Segment' if expected else 'Segment failed'}: {message}")
        self.status.value = f"failed: {message}"

    def _on_finished(self):
        if self._worker is not None and self._worker.abort_requested:
            self.status.value = "cancelled: nothing was added"
        self._worker = None
        self.run_button.text = "Segment"
        self.progress.visible = False

    def _on_returned(self, result):
        name, scale, translate, params = self._source
        if name not in self._viewer.layers:
            show_warning(f"Segment: layer {name!r} was removed while segmenting; results dropped")
            return
        self._add_layers(name, result, scale, translate, params)
        self._last, self._last_params = (name, result), params
        self._on_count_border_changed()  # the box may have changed while segmenting
        for msg in result.messages:
            show_warning(msg)
        types = result.cell_type_source()
        self.status.value = (f"{len(result.table)} white cells in {result.timings['total_s']:.1f} s "
                             f"on {result.device} ({result.model}; cell types: {types})")
        show_info(f"Segment: {len(result.table)} white cells found in {name!r}")

    def _add_layers(self, name, result, scale, translate, params):
        features = result.table.reset_index().rename(columns={"cell_id": "index"})
        diff = result.differential.reset_index().rename(columns={"class_code": "index"})
        self._result_layers = []
        for kind, data, feats in (("nucleus", result.nucleus, features),
                                  ("cytoplasm", result.cytoplasm, features),
                                  ("cell_type", result.cell_type, diff)):
            # always new layers: a re-run must never overwrite hand corrections
            # (napari numbers duplicate names)
            meta = {"model": result.model, "device": result.device, "source_layer": name,
                    "classifier": result.classifier,
                    # the Correct dock counts the cells to check below the same confidence
                    "class_threshold": float(params.class_threshold),
                    "include_border_cells": bool(params.include_border_cells)}
            self._result_layers.append(self._viewer.add_labels(
                data, features=feats, metadata=meta, scale=scale, translate=translate,
                **labels_layer_kwargs(name, kind)))

    def _show_counts(self, differential):
        self._shown = differential
        self.counts.value = counts_value(differential)
        self.summary.value = summary_line(differential, self._last[1].table if self._last else None)
        self.export_button.enabled = True

    def _on_count_border_changed(self, *_):
        """Recount the last run under the new border rule (no new segmentation needed)."""
        if self._last is None:
            return
        from dataclasses import replace

        params = replace(self._last_params, include_border_cells=bool(self.count_border.value))
        self._last_params = params
        self._show_counts(params.differential(self._last[1].table))
        for layer in self._result_layers:  # the Correct dock counts by the same choice
            if layer in self._viewer.layers:  # a new dict: emits the layer's metadata event
                layer.metadata = {**layer.metadata,
                                  "include_border_cells": params.include_border_cells}

    # ---- export ---------------------------------------------------------------------------
    def export_differential(self, path) -> str:
        from ..io.writer import save_table

        if self._shown is None:
            raise ValueError("nothing segmented yet")
        return save_table(path, self._shown)  # what the dock shows, border rule included

    def _on_export_clicked(self, *_):
        from qtpy.QtWidgets import QFileDialog

        path, _ = QFileDialog.getSaveFileName(None, "Save differential count", "differential.csv",
                                              "CSV (*.csv)")
        if path:
            try:
                show_info(f"saved {self.export_differential(path)}")
            except (OSError, ValueError) as exc:
                show_error(f"could not save: {exc}")
