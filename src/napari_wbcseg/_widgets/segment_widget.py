"""Dock widget: segment white cells with a bundled or user network.

Thin: it snapshots the image and a ``SegmentParams``, drives
``inference.segment.segment_steps`` in a worker thread, and only touches layers
in the ``returned`` handler on the GUI thread (new layers a step per event-loop turn, the
dock busy until the last is in).  Cancel closes the generator
between tiles; nothing is added for a cancelled or failed run.  A re-run on the same
image replaces its result layers (``segment_results``: one "Undo replace", a question if
they were corrected).  The counts shown and exported are the layers' live count
(``live_counts``), so they follow every edit of the Correct dock, napari's brush and undo.
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

from ..core.gc_policy import RunHold, freeze_long_lived, in_run
from .differential_view import EMPTY_COUNTS, counts_value, summary_line
from .live_counts import live_counts
from .segment_results import CANCEL, ResultLayers, ask_replace, corrected, image_class_table
from .worker_errors import one_line, original, reported
from .dock_scroll import scroll_in_dock
from .dock_help import add_help_link
from .tooltips import SEGMENT, apply_tooltips

_log = logging.getLogger(__name__)


class SegmentWidget(ResultLayers, Container):
    def __init__(self, napari_viewer: "napari.viewer.Viewer"):  # noqa: F821
        super().__init__()
        scroll_in_dock(self)  # scrolls in its dock instead of growing the window
        freeze_long_lived()  # napari's and the plugin's modules: never walked again (gc_policy)
        self._viewer = napari_viewer
        self._worker = None
        self._worker_done = False  # the run ends when its worker is done and its layers are in
        self._gc_hold = None  # gc_policy.RunHold of the run in progress
        self._live = None  # the live count of the result layers the dock shows
        self._answer = None  # the answer to "replace corrected layers?" given at Segment
        # (image name) -> "replace" / "keep both" / "cancel"; tests and scripts answer it
        self.confirm_replace = ask_replace
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
        self.tta = CheckBox(text="mirror test-time augmentation (slower)", value=False,
                            tooltip="average the network over the image and its three mirror "
                            "images: a few tenths of a Dice point better; the network runs "
                            "4 times, a field takes about 2.5x longer (docs/segmentation.md)")
        self.coarse_pass = CheckBox(text="find cells at 0.7x first (large images)", value=True,
                                    tooltip="an image that needs 4 or more windows is first "
                                    "searched at 0.7x scale, then predicted at full scale only "
                                    "around the cells found (1.6x faster on large smears); off: "
                                    "every window at full scale (docs/segmentation.md)")
        self.run_button = PushButton(text="Segment")
        self.progress = ProgressBar(min=0, max=1, value=0, visible=False)
        self.status = Label(value="")
        self.undo_replace_button = PushButton(text="Undo replace", visible=False,
                                              tooltip="put back the layers the last run "
                                              "replaced (while the new ones are unedited)")
        self.counts = Table(value=EMPTY_COUNTS)
        self.summary = Label(value="")
        self.export_button = PushButton(text="Export differential count (CSV)...", enabled=False)
        self.extend([self.image, self.model, self.device, self.preprocess, self.cell_diameter,
                     self.pixel_size, self.classifier, self.class_threshold, self.count_border,
                     self.tta, self.coarse_pass, self.run_button, self.progress, self.status,
                     self.undo_replace_button, self.counts, self.summary, self.export_button])
        apply_tooltips(self, SEGMENT)
        add_help_link(self, "segmentation.md")
        # a long status (model and classifier names) wraps instead of widening the dock
        self.status.native.setWordWrap(True)
        self.status.native.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.summary.native.setWordWrap(True)
        self.run_button.changed.connect(self._on_run_clicked)
        self.count_border.changed.connect(self._on_count_border_changed)
        self.export_button.changed.connect(self._on_export_clicked)
        self.undo_replace_button.changed.connect(lambda *_: self.undo_replace())
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
                             include_border_cells=bool(self.count_border.value),
                             tta=bool(self.tta.value),
                             coarse_pass=bool(self.coarse_pass.value),
                             # the image's table (a loaded project's), else the model's
                             classes=image_class_table(self._viewer.layers, self.image.value))

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
        previous = self.previous_results(layer.name)
        # ask now (not after the run) whether corrected layers may be replaced
        self._answer = (self.confirm_replace(layer.name)
                        if previous is not None and corrected(previous) else None)
        if self._answer == CANCEL:
            self.status.value = f"cancelled: the corrected layers of {layer.name!r} are kept"
            return
        # the label layers are 2D: the row and column axes come first (an HxWxC layer
        # that napari did not take as RGB has a third, channel, axis)
        self._source = (layer.name, tuple(layer.scale)[:2], tuple(layer.translate)[:2], params)
        # errors are shown by _on_errored (unexpected ones with their traceback in the log)
        worker = thread_worker(reported(in_run(segment_steps)), start_thread=False,
                               ignore_errors=True)(rgb, params)
        worker.yielded.connect(self._on_event)
        worker.returned.connect(self._on_returned)
        worker.errored.connect(self._on_errored)
        worker.finished.connect(self._on_finished)
        self._worker, self._worker_done = worker, False
        self._gc_hold = RunHold()  # fewer full collections until the layers are in
        self.run_button.text = "Cancel"
        self.progress.visible, self.progress.value = True, 0
        self.status.value = "starting..."
        worker.start()

    def cancel(self):
        if self._worker is None:
            return
        if self.stop_staging():  # the result came back: its layers were being added
            self.status.value = "cancelled: nothing was added"
            if self._worker_done:
                self._end_run()
        else:
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
        self._worker_done = True
        if self.staging is None:  # else the run ends when its last layer is in
            self._end_run()

    def _end_run(self):
        self._worker = None
        if self._gc_hold is not None:
            self._gc_hold, hold = None, self._gc_hold
            hold.end()
        self.run_button.text = "Segment"
        self.progress.visible = False

    def _on_returned(self, result):
        name, scale, translate, params = self._source
        answer, self._answer = self._answer, None
        if name not in self._viewer.layers:
            show_warning(f"Segment: layer {name!r} was removed while segmenting; results dropped")
            return
        # from a running worker the new layers come in over several event-loop turns (the
        # dock stays busy until then); a result handed in directly is put in at once
        self.put_result(name, result, scale, translate, params, answer=answer,
                        in_turns=self._worker is not None,
                        then=lambda layers, done: self._result_in(name, result, layers, done))
        if self.staging is not None:
            self.status.value = "adding the result layers..."

    def _result_in(self, name, result, layers, done):
        try:
            self._report_result(name, result, layers, done)
        finally:  # the run is over once the layers are in and the status says so
            if self._worker is not None and self._worker_done:
                self._end_run()

    def _report_result(self, name, result, layers, done):
        if layers is None:
            self.status.value = done
            show_info(f"Segment: {done}")
            return
        self._show_layers(layers)
        self._on_count_border_changed()  # the box may have changed while segmenting
        for msg in result.messages:
            show_warning(msg)
        types = result.cell_type_source()
        self._set_status(f"{len(result.table)} white cells in {result.timings['total_s']:.1f} s "
                         f"on {result.device} (model {result.model}; cell types: {types})"
                         + (f"; {done}" if done else ""))
        show_info(f"Segment: {len(result.table)} white cells found in {name!r} "
                  f"by {result.model}")

    def _set_status(self, text: str) -> None:
        self.status.value = text

    # ---- the counts shown: the live count of the shown layers ---------------------------
    def _show_layers(self, layers, box_follows: bool = False) -> None:
        """Show (and export) the live count of ``layers``; ``box_follows``: set 'count
        border cells' from their metadata instead of the other way round."""
        if self._live is not None:
            self._live.unlisten(self._on_counts)
        self._live = live_counts(self._viewer, layers)
        self._live.listen(self._on_counts)
        if box_follows:
            self.count_border.value = self._live.rules.include_border
        self._on_counts(self._live.current())

    def _on_counts(self, counts) -> None:
        if counts is None:  # the layers were removed
            self._live = None
            self.counts.value = EMPTY_COUNTS
            self.summary.value = ""
            self.export_button.enabled = False
            return
        self.counts.value = counts_value(counts.differential)
        self.summary.value = summary_line(counts.differential, counts.table)
        self.export_button.enabled = True

    def _on_count_border_changed(self, *_):
        """Recount the shown layers under the new border rule (no new segmentation needed);
        the rule lives in their metadata, so the Correct dock counts by it too."""
        live = self._live
        if live is None or not live.alive:
            return
        value = bool(self.count_border.value)
        for layer in live.layers.values():
            if layer.metadata.get("include_border_cells") is not value:
                # a new dict: emits the layer's metadata event
                layer.metadata = {**layer.metadata, "include_border_cells": value}
        live.update()

    # ---- export ---------------------------------------------------------------------------
    def export_differential(self, path) -> str:
        from ..io.writer import save_table

        if self._live is None or not self._live.alive:
            raise ValueError("nothing segmented yet")
        # the layers' count now (what the dock shows), border rule and edits included
        return save_table(path, self._live.current().differential)

    def _on_export_clicked(self, *_):
        from qtpy.QtWidgets import QFileDialog

        path, _ = QFileDialog.getSaveFileName(None, "Save differential count", "differential.csv",
                                              "CSV (*.csv)")
        if path:
            try:
                show_info(f"saved {self.export_differential(path)}")
            except (OSError, ValueError) as exc:
                show_error(f"could not save: {exc}")
