"""Dock widget: AHE-Retinex / CLAHE / MSRCR colour correction with live preview.

Thin on purpose: it collects parameters, runs ``core.batch.preprocess_planes``
in a background thread and adds the result as a *new* layer; the source layer
is never touched.
"""
from __future__ import annotations

import numpy as np
from magicgui.widgets import (CheckBox, ComboBox, Container, FloatSpinBox, Label, LineEdit,
                              ProgressBar, PushButton, SpinBox, create_widget)
from napari.layers import Image
from napari.qt.threading import thread_worker
from napari.utils.notifications import show_error, show_info, show_warning
from qtpy.QtWidgets import QSizePolicy

from ..core.batch import check_plane_size, plane_count, preprocess_planes
from ..core.image import MIN_SIDE, ImageFormatError, check_image
from .dock_help import add_help_link
from .dock_scroll import scroll_in_dock
from .worker_errors import one_line, reported

METHOD_LABELS = {"ahe-retinex": "AHE-Retinex", "clahe": "CLAHE only", "msrcr": "MSRCR only"}


class PreprocessWidget(Container):
    def __init__(self, napari_viewer: "napari.viewer.Viewer"):  # noqa: F821
        super().__init__()
        scroll_in_dock(self)  # scrolls in its dock instead of growing the window
        from ..core.preprocessing import AheRetinexParams

        self._viewer = viewer = napari_viewer
        self._defaults = AheRetinexParams()
        self._worker = None
        self._preview_pending = False
        self._pending_notify = False
        self._notified = None  # the problem last shown as a notification (shown once)

        self.image = create_widget(annotation=Image, label="image", options={
            "tooltip": "Image layer to correct; it is never changed (the result is a new layer)"})
        self.method = ComboBox(label="method", choices=[(v, k) for k, v in METHOD_LABELS.items()],
                               value=self._defaults.method,
                               tooltip="AHE-Retinex: CLAHE and MSRCR together (Zhu et al. 2023); "
                                       "or one of the two steps alone")
        self.order = ComboBox(label="order", choices=["ahe-first", "retinex-first"],
                              value=self._defaults.order,
                              tooltip="Which step runs first; the paper does not fix the order "
                                      "(docs/preprocessing.md)")
        self.clip_limit = FloatSpinBox(label="CLAHE clip limit", min=0.0, max=40.0, step=0.5,
                                       tooltip="CLAHE contrast limit: higher gives stronger local "
                                               "contrast; 0 = plain AHE without clipping")
        self.tiles = SpinBox(label="CLAHE tiles", min=1, max=64,
                             tooltip="CLAHE grid: the image is equalised in N x N tiles")
        self.sigmas = LineEdit(label="Retinex sigmas (px)",
                               tooltip="Blur scales of the multi-scale Retinex in pixels, "
                                       "separated by commas (paper: 15, 80, 250); checked when "
                                       "you press Enter or leave the field")
        self.gain = FloatSpinBox(label="gain α", min=0.01, max=1000.0, step=1.0,
                                 tooltip="MSRCR colour-restoration gain α (paper: 46)")
        self.offset = FloatSpinBox(label="offset β", min=0.01, max=10000.0, step=5.0,
                                   tooltip="MSRCR colour-restoration offset β (paper: 125)")
        self.low_clip = FloatSpinBox(label="low clip %", min=0.0, max=49.0, step=0.5,
                                     tooltip="Darkest share of pixels, in %, clipped to black "
                                             "when the Retinex result is stretched to 0-255")
        self.high_clip = FloatSpinBox(label="high clip %", min=51.0, max=100.0, step=0.5,
                                      tooltip="Percentile above which pixels are clipped to "
                                              "white when the result is stretched to 0-255")
        self.preview = CheckBox(text="live preview",
                                tooltip="Show the result as an '<image> preview' layer that "
                                        "follows every change; untick to remove it")
        self.apply_button = PushButton(text="Apply (new layer)",
                                       tooltip="Correct the whole image into a new layer "
                                               "'<image> <method>'")
        self.reset_button = PushButton(text="Reset parameters",
                                       tooltip="Back to the parameters of the paper")
        self.progress = ProgressBar(min=0, max=1, value=0, visible=False)
        self.status = Label(value="")
        # a long problem wraps to the dock's width instead of widening the dock
        self.status.native.setWordWrap(True)
        self.status.native.setSizePolicy(QSizePolicy.Policy.Ignored,
                                         QSizePolicy.Policy.Preferred)
        self.extend([self.image, self.method, self.order, self.clip_limit, self.tiles, self.sigmas,
                     self.gain, self.offset, self.low_clip, self.high_clip, self.preview,
                     self.apply_button, self.reset_button, self.progress, self.status])
        add_help_link(self, "preprocessing.md")
        self.reset_parameters()

        self.apply_button.changed.connect(self.apply)
        self.reset_button.changed.connect(self.reset_parameters)
        self.preview.changed.connect(self._on_preview_toggled)
        for w in (self.image, self.method, self.order, self.clip_limit, self.tiles,
                  self.gain, self.offset, self.low_clip, self.high_clip):
            w.changed.connect(self._on_parameter_changed)
        # the sigmas text changes with every key: its problems are shown in the status line
        # while typing and notified once, when the edit is finished (Enter, leaving the field)
        self.sigmas.changed.connect(self._on_sigmas_typed)
        self.sigmas.native.editingFinished.connect(self._on_sigmas_edited)
        self.method.changed.connect(self._update_enabled)
        viewer.layers.events.inserted.connect(self.image.reset_choices)
        viewer.layers.events.removed.connect(self.image.reset_choices)
        self._closed = False
        self.native.destroyed.connect(self._on_destroyed)
        self._update_enabled()

    # ---- parameters -------------------------------------------------------------------------
    def reset_parameters(self, *_):
        d = self._defaults
        self.method.value, self.order.value = d.method, d.order
        self.clip_limit.value, self.tiles.value = d.clip_limit, d.tile_grid[0]
        self.sigmas.value = ", ".join(f"{s:g}" for s in d.sigmas)
        self.gain.value, self.offset.value = d.gain, d.offset
        self.low_clip.value, self.high_clip.value = 100 * d.low_clip, 100 * d.high_clip

    def params(self):
        """The current settings as the core's parameter dataclass (ValueError if invalid)."""
        from ..core.preprocessing import AheRetinexParams

        try:
            sigmas = tuple(float(s) for s in self.sigmas.value.replace(";", ",").split(",") if s.strip())
        except ValueError:
            raise ValueError(f"sigmas must be numbers separated by commas, got {self.sigmas.value!r}") from None
        return AheRetinexParams(method=self.method.value, order=self.order.value,
                                clip_limit=self.clip_limit.value,
                                tile_grid=(self.tiles.value, self.tiles.value), sigmas=sigmas,
                                gain=self.gain.value, offset=self.offset.value,
                                low_clip=self.low_clip.value / 100, high_clip=self.high_clip.value / 100)

    def _update_enabled(self, *_):
        m = self.method.value
        self.order.enabled = m == "ahe-retinex"
        for w in (self.clip_limit, self.tiles):
            w.enabled = m in ("ahe-retinex", "clahe")
        for w in (self.sigmas, self.gain, self.offset, self.low_clip, self.high_clip):
            w.enabled = m in ("ahe-retinex", "msrcr")

    # ---- problems ---------------------------------------------------------------------------
    def _problem(self, message: str, notify: bool) -> None:
        """Show a problem in the status line, and as a notification once (not again while
        the same problem stands: typing, Enter and Apply never repeat it)."""
        self.status.value = message
        if notify and message != self._notified:
            show_error(message)
            self._notified = message

    def _parameter_problem(self) -> str | None:
        try:
            self.params()
        except ValueError as exc:
            return f"AHE-Retinex: {exc}"
        return None

    def _on_sigmas_typed(self, *_):
        if self.preview.value:
            self._refresh_preview(notify=False)
            return
        problem = self._parameter_problem()
        if problem:
            self._problem(problem, notify=False)
        elif self.status.value.startswith("AHE-Retinex:"):
            self.status.value = ""

    def _on_sigmas_edited(self):
        problem = self._parameter_problem()
        if problem:
            self._problem(problem, notify=True)

    # ---- running ----------------------------------------------------------------------------
    def _job(self, layer: Image | None, notify: bool = True):
        """Validate and snapshot what a background job needs; None after reporting a problem."""
        if layer is None:
            self._problem("AHE-Retinex: open or select an image layer first", notify)
            return None
        if layer.multiscale:
            self._problem(f"AHE-Retinex: {layer.name!r} is multiscale; open a single-resolution "
                          "image", notify)
            return None
        try:
            params = self.params()
            data = np.asarray(layer.data)  # snapshot: the worker never sees the layer
            rgb = layer.rgb
            if not rgb and data.ndim == 3 and data.shape[-1] < MIN_SIDE:
                # HxWxC that napari shows as C planes: colour channels, not a stack
                check_image(data, what=layer.name)  # refuses 2, 5.. channels
                rgb = True
            plane_count(data, rgb)
            check_plane_size(data.shape, rgb)  # before any work or allocation
            check_image(data if data.ndim == (3 if rgb else 2) else data[0], what=layer.name)
        except (ValueError, ImageFormatError) as exc:
            self._problem(f"AHE-Retinex: {exc}", notify)
            return None
        self._notified = None  # all good: a later problem is news again
        return data, params, rgb

    def apply(self, *_):
        """Run on the selected layer and add the result as a new layer."""
        layer = self.image.value
        job = self._job(layer)
        if job is not None:
            self._start(job, lambda out, p: self._add_result(layer, out, p, preview=False))

    def _on_preview_toggled(self, on: bool):
        if on:
            self._refresh_preview()
        else:
            self._remove_preview()

    def _on_parameter_changed(self, *_):
        if self.preview.value:
            self._refresh_preview()

    def _refresh_preview(self, notify: bool = True):
        if self._worker is not None:  # one job at a time; redo when it finishes
            self._preview_pending = True
            self._pending_notify = self._pending_notify or notify
            return
        layer = self.image.value
        if layer is None or layer.name.endswith(" preview"):
            return
        job = self._job(layer, notify)
        if job is not None:
            self._start(job, lambda out, p: self._add_result(layer, out, p, preview=True))

    def _start(self, job, on_done):
        data, params, rgb = job
        self.progress.visible, self.progress.value = True, 0
        self.status.value = "working..."
        self.apply_button.enabled = False
        # the errored handler reports every failure (never re-raised on the GUI thread)
        worker = thread_worker(reported(preprocess_planes), start_thread=False,
                               ignore_errors=True)(
            data, params, rgb)
        worker.yielded.connect(self._on_progress)
        worker.returned.connect(lambda out: on_done(out, params))
        worker.errored.connect(self._on_errored)
        worker.finished.connect(self._on_finished)
        self._worker = worker
        worker.start()

    def _on_destroyed(self, *_):
        """The dock (or the viewer) closed: a worker that ends later changes nothing."""
        self._closed = True
        if self._worker is not None:
            self._worker.quit()

    def _on_errored(self, exc):
        if self._closed:
            return
        message = one_line(exc)
        show_error(f"AHE-Retinex failed: {message}")
        self.status.value = f"failed: {message}"

    def _on_progress(self, event):
        if self._closed:
            return
        self.progress.max, self.progress.value = event.total, event.done

    def _on_finished(self):
        self._worker = None
        if self._closed:
            return
        self.progress.visible = False
        self.apply_button.enabled = True
        if self._preview_pending:
            notify, self._preview_pending, self._pending_notify = self._pending_notify, False, False
            self._refresh_preview(notify)

    def _add_result(self, source: Image, out: np.ndarray, params, preview: bool):
        if self._closed:
            return
        label = METHOD_LABELS[params.method]
        if source not in self._viewer.layers:
            show_warning(f"AHE-Retinex: layer {source.name!r} was removed meanwhile; "
                         "result dropped")
            self.status.value = ""
            return
        name = f"{source.name} preview" if preview else f"{source.name} {label}"
        meta = {"source_layer": source.name, "preprocessing": params.__dict__.copy()}
        if preview and name in self._viewer.layers:
            self._viewer.layers[name].data = out
            self._viewer.layers[name].metadata.update(meta)
        else:
            # same world coordinates as the source: its scale/translate exclude the RGB axis
            # (an HxWxC source that napari shows as planes: its first two axes)
            axes = out.ndim - 1
            self._viewer.add_image(out, name=name, rgb=True, metadata=meta,
                                   scale=source.scale[:axes], translate=source.translate[:axes])
        self.status.value = f"{label} -> {name!r}"
        if not preview:
            show_info(f"{label} applied to {source.name!r}; result in new layer {name!r}")

    def _remove_preview(self):
        for layer in list(self._viewer.layers):
            if layer.name.endswith(" preview") and "preprocessing" in layer.metadata:
                self._viewer.layers.remove(layer)
        self.status.value = ""
