"""Dock widget: train or fine-tune a network on corrected labels.

Thin: it snapshots the reviewed images of the viewer (copies of the image and its three
schema label layers whose metadata marks them reviewed, see ``review_metadata``) and a
``SessionParams``, and drives
``training.engine.session.run`` in a worker thread.  Loading the data, training and saving all
happen there; the GUI thread only draws progress, the loss plot and notifications.
Stop ends the run cleanly after the current batch (the best weights are saved and the
checkpoint kept); Resume continues from that checkpoint.  Closing the viewer stops the
worker.  The bar and the time left follow ``training.engine.progress``; a fine-tune that
does not beat its starting model is saved only if the user says so (``train_outcome``).
"""
from __future__ import annotations

import logging
import threading
import time

from magicgui.widgets import (CheckBox, ComboBox, Container, FloatSpinBox, Label, LineEdit,
                              ProgressBar, PushButton, Select, SpinBox)
from napari.qt.threading import thread_worker
from napari.utils.notifications import show_error, show_info, show_warning
from qtpy.QtWidgets import QSizePolicy

from ..core.gc_policy import freeze_long_lived, in_run
from . import train_events, train_outcome
from .loss_plot import LossPlot
from .model_exchange_panel import ModelExchangePanel
from .viewer_training_data import reviewed_class_table, reviewed_in_viewer, snapshot_layer_sets
from .worker_errors import one_line, original, reported
from .dock_scroll import scroll_in_dock
from .dock_help import add_help_link
from .tooltips import EXCHANGE, TRAIN, apply_tooltips

_log = logging.getLogger(__name__)
_SCRATCH = "(random weights)"


def _warm_up():
    """Import what a run needs.  torch (and torch._dynamo, which the first optimiser pulls
    in) hold the GIL for up to a few hundred ms while they load: done here, in the
    background as the dock opens, that never stalls the viewer during a run."""
    try:
        import torch

        from ..io import model_exchange, model_store  # noqa: F401
        from ..models import weights  # noqa: F401
        from ..training.data import sources  # noqa: F401
        from ..training.engine import checkpoint, loop, optim, session  # noqa: F401
        from ..training.evaluation import evaluate  # noqa: F401

        torch.optim.AdamW([torch.zeros(1, requires_grad=True)])
        # the cell classifier's stage after the network's (timm alone takes about 1 s)
        import timm  # noqa: F401

        from ..models import cell_classifier  # noqa: F401
        from ..training.data import cell_data  # noqa: F401
        from ..training.engine import classifier, session_classifier  # noqa: F401
    except Exception:  # noqa: BLE001 - a broken install is reported when training starts
        pass
    freeze_long_lived()  # torch's, timm's modules: never walked by a full collection again


def _architecture(entry) -> str | None:
    """A model's architecture, or None for a card too broken to say (never raises)."""
    try:
        arch = entry.architecture
    except (AttributeError, TypeError, ValueError):
        return None
    return arch if isinstance(arch, str) else None


class TrainWidget(Container):
    def __init__(self, napari_viewer: "napari.viewer.Viewer"):  # noqa: F821
        from ..io.model_store import DEFAULT_MODEL, find_model
        from ..models import list_architectures
        from ..training.engine.session import FINETUNE_DEFAULTS as D

        super().__init__()
        scroll_in_dock(self)  # scrolls in its dock instead of growing the window
        freeze_long_lived()  # napari's and the plugin's modules: never walked again (gc_policy)
        self._viewer = napari_viewer
        self._worker = None
        self._stop = threading.Event()
        self._closed = False
        self._folders: list[str] = []
        self._last = None  # SessionOutcome of the last run (its data serves Resume)
        self._last_params = None
        self._steps = 1
        self._saving = None  # the worker saving a fine-tune kept after the question
        # "keep" / "save": the answer when a fine-tune is not better than its starting
        # model (tests); None asks the user
        self.worse_answer = None
        self.data_info = Label(value="")
        self.use_viewer = CheckBox(text="reviewed images in the viewer", value=True)
        self.folders = Select(label="project folders", choices=[],
                              tooltip="annotation-project folders (io.project layout); their "
                              "reviewed images are trained on")
        self.add_folder_button = PushButton(text="Add folder...")
        self.remove_folder_button = PushButton(text="Remove")
        arch = find_model(DEFAULT_MODEL).architecture
        self.architecture = ComboBox(label="network", choices=list_architectures(), value=arch)
        self.start = ComboBox(label="start from", choices=self._start_choices,
                              tooltip="a bundled or your model of this network, or random "
                              "weights (training from scratch needs far more data and time)")
        self.epochs = SpinBox(label="epochs", min=1, max=1000, value=D["epochs"])
        self.steps = SpinBox(label="batches per epoch", min=1, max=10000,
                             value=D["steps_per_epoch"])
        self.lr = FloatSpinBox(label="learning rate", min=1e-5, max=0.1, step=1e-5, value=D["lr"])
        self.batch = SpinBox(label="batch size", min=1, max=64, value=D["batch_size"])
        self.crop = SpinBox(label="crop (px)", min=64, max=1024, step=32, value=D["crop"])
        self.augment = CheckBox(text="augmentation (flips, rotations, colour)", value=True)
        self.val_fraction = FloatSpinBox(label="validation fraction", min=0.0, max=0.5,
                                         step=0.05, value=0.2)
        self.name = LineEdit(label="new model name")
        self.train_button = PushButton(text="Train")
        self.resume_button = PushButton(
            text="Resume", enabled=False,
            tooltip="continue the stopped run from its checkpoint; after a restart of napari, "
                    "type the run's name above (the same reviewed data should be open)")
        # always shown: making it appear relaid the dock out and stalled the viewer
        self.progress = ProgressBar(min=0, max=1, value=0)
        self.status = Label(value="")
        self.plot = LossPlot()
        self.exchange = ModelExchangePanel(on_imported=self.refresh_models)
        self.model_to_export = self.exchange.model_to_export
        row = lambda *ws: Container(widgets=ws, layout="horizontal", labels=False)  # noqa: E731
        self.extend([Label(value="<b>Training data</b>"), self.use_viewer, self.data_info,
                     self.folders, row(self.add_folder_button, self.remove_folder_button),
                     Label(value="<b>Network and settings</b>"), self.architecture, self.start,
                     self.epochs, self.steps, self.lr, self.batch, self.crop, self.augment,
                     self.val_fraction, self.name,
                     row(self.train_button, self.resume_button), self.progress, self.status,
                     self.exchange])
        apply_tooltips(self, TRAIN)
        apply_tooltips(self.exchange, EXCHANGE)
        add_help_link(self, "finetune.md")
        self.folders.native.setMaximumHeight(60)
        self.native.layout().insertWidget(self.index(self.status) + 1, self.plot)
        for label in (self.status, self.data_info):  # changing text never resizes the dock
            label.native.setWordWrap(True)
            label.native.setSizePolicy(QSizePolicy.Policy.Ignored,
                                       QSizePolicy.Policy.Preferred)
        self.architecture.changed.connect(self._on_architecture)
        self.start.changed.connect(self._on_start)
        self.train_button.changed.connect(self._on_train_clicked)
        self.resume_button.changed.connect(self.resume)
        self.name.changed.connect(self._update_resume)
        self.add_folder_button.changed.connect(self._on_add_folder_clicked)
        self.remove_folder_button.changed.connect(self._on_remove_folder_clicked)
        for ev in (napari_viewer.layers.events.inserted, napari_viewer.layers.events.removed,
                   napari_viewer.layers.selection.events.active):
            ev.connect(self.refresh_data_info)
        self.native.destroyed.connect(self._on_destroyed)
        self._scratch = False
        self.name.value = self._fresh_name()
        self.refresh_data_info()
        # torch's first import holds the GIL for a moment: do it now, in the background,
        # so that it never stalls the viewer in the middle of a run
        self._warm_up = threading.Thread(target=_warm_up, daemon=True)
        self._warm_up.start()

    # ---- choices -----------------------------------------------------------------------------
    def _start_choices(self, _widget=None):
        from ..io.model_store import model_entries

        arch = self.architecture.value
        mine = [(f"{n} ({'bundled' if e.origin == 'bundled' else 'yours'})", n)
                for n, e in sorted(model_entries().items(), key=lambda kv: (kv[1].origin, kv[0]))
                if _architecture(e) == arch]
        return mine + [(f"{_SCRATCH} (from scratch)", _SCRATCH)]

    def _on_architecture(self, *_):
        self.start.reset_choices()
        self.start.value = self._start_choices()[0][1]  # its bundled model if there is one
        self._on_start()

    def _on_start(self, *_):
        from ..training.engine.session import FINETUNE_DEFAULTS, SCRATCH_DEFAULTS

        scratch = self.start.value == _SCRATCH
        if scratch != self._scratch:  # only a switch between fine-tuning and scratch
            self._scratch = scratch
            d = SCRATCH_DEFAULTS if scratch else FINETUNE_DEFAULTS
            self.epochs.value, self.steps.value = d["epochs"], d["steps_per_epoch"]
            self.lr.value, self.batch.value, self.crop.value = d["lr"], d["batch_size"], d["crop"]
        if self._worker is None:
            self.name.value = self._fresh_name()

    def _fresh_name(self) -> str:
        from ..io.model_store import list_models

        base = self.start.value if self.start.value not in (None, _SCRATCH) else \
            self.architecture.value
        stem = f"{base}-ft-{time.strftime('%Y%m%d-%H%M')}"
        taken, name, k = set(list_models()), stem, 2
        while name in taken:
            name, k = f"{stem}-{k}", k + 1
        return name

    def refresh_models(self, *_):
        """Model lists here and in every dock widget that has ``refresh_models`` (Segment)."""
        self.model_to_export.reset_choices()
        self.start.reset_choices()
        for widget in list(self._viewer.window.dock_widgets.values()):
            refresh = getattr(widget, "refresh_models", None)
            if widget is not self and callable(refresh):
                refresh()

    # ---- data --------------------------------------------------------------------------------
    def reviewed_layer_sets(self):
        """``(LayerSets, notes)``: copies of the reviewed images open in the viewer."""
        return snapshot_layer_sets(self._viewer.layers)

    def refresh_data_info(self, *_):
        if self._closed:
            return
        found, _ = reviewed_in_viewer(self._viewer.layers)
        names = ", ".join(f[0] + ("" if f[3] else " (some cells)") for f in found)
        self.data_info.value = (f"{len(found)} reviewed: {names}" if found else
                                "no reviewed image open (mark corrected images as reviewed)")

    def add_folder(self, path) -> None:
        path = str(path)
        if path not in self._folders:
            self._folders.append(path)
            self.folders.choices = self._folders
            self.folders.value = list(self._folders)

    def _on_add_folder_clicked(self, *_):
        from qtpy.QtWidgets import QFileDialog

        path = QFileDialog.getExistingDirectory(None, "Annotation project folder")
        if path:
            self.add_folder(path)

    def _on_remove_folder_clicked(self, *_):
        self._folders = [f for f in self._folders if f not in (self.folders.value or [])]
        self.folders.choices = self._folders

    def params(self):
        from ..training.engine.session import SessionParams

        start = self.start.value
        # the reviewed images' class table: the per-cell classifier's fine-tune learns it
        classes = reviewed_class_table(self._viewer.layers) if self.use_viewer.value else None
        return SessionParams(name=self.name.value.strip(), architecture=self.architecture.value,
                             base_model=None if start == _SCRATCH else start,
                             epochs=self.epochs.value, steps_per_epoch=self.steps.value,
                             lr=self.lr.value, batch_size=self.batch.value, crop=self.crop.value,
                             augment=self.augment.value, val_fraction=self.val_fraction.value,
                             classes=classes)

    # ---- running -----------------------------------------------------------------------------
    def _on_train_clicked(self, *_):
        self.stop() if self._worker is not None else self.train()

    def _training_data(self, hint: str):
        """Copies of the reviewed viewer images (warnings for skipped ones); None, after an
        error notification ending in ``hint``, when there is no data at all."""
        sets, notes = self.reviewed_layer_sets() if self.use_viewer.value else ([], [])
        for note in notes:
            show_warning(f"Train: {note}")
        if not sets and not self._folders:
            show_error(f"Train: no reviewed training data. {hint}")
            return None
        return sets

    def train(self):
        from ..training.engine.session import ModelFileError, check_name, run

        sets = self._training_data("Mark corrected images as reviewed in the correction "
                                   "widget, or add an annotation-project folder.")
        if sets is None:
            return
        params = self.params()
        try:
            check_name(params.name)
        except ModelFileError as exc:
            show_error(f"Train: {exc}")
            return
        self.plot.clear(params.epochs * params.steps_per_epoch)
        self._start(run, params, sets, list(self._folders))

    def _resumable_in_memory(self) -> bool:
        last = self._last
        return last is not None and last.result is not None and bool(last.result.checkpoint) \
            and (last.error is not None or last.result.stopped == "user")

    def _update_resume(self, *_):
        from ..training.engine.session import saved_checkpoint

        if self._worker is None and not self._closed:
            self.resume_button.enabled = self._resumable_in_memory() or \
                saved_checkpoint(self.name.value.strip()) is not None

    def resume(self, *_):
        """Continue the stopped run of this session (same data and settings), or else the
        run whose name is in the name field from its checkpoint on disk (e.g. one from an
        earlier napari session), on the reviewed data open now."""
        from ..training.engine.session import run, saved_checkpoint

        if self._worker is not None:
            return
        if self._resumable_in_memory():
            last = self._last
            self._start(run, self._last_params, prepared=last.prepared,
                        resume=last.result.checkpoint)
            return
        params = self.params()
        path = saved_checkpoint(params.name)
        if path is None:
            show_error(f"Train: no checkpoint of a run called {params.name!r} to resume")
            return
        sets = self._training_data("To resume, open the reviewed images (or add the "
                                   "project folders) the run was trained on.")
        if sets is None:
            return
        self.plot.clear(params.epochs * params.steps_per_epoch)
        self._start(run, params, sets, list(self._folders), resume=path)

    def _start(self, run, params, *args, **kwargs):
        from ..training.engine.progress import RunProgress

        self._stop.clear()
        self._last_params, self._run = params, RunProgress()
        self._x = 0  # last plotted batch
        self._baseline = getattr(kwargs.get("prepared"), "baseline", None)
        self._steps = params.steps_per_epoch
        # errors are shown by _on_errored (unexpected ones with their traceback in the log)
        worker = thread_worker(reported(in_run(run)), start_thread=False, ignore_errors=True)(
            params, *args, should_stop=self._stop.is_set, if_worse="ask", **kwargs)
        worker.yielded.connect(self._on_event)
        worker.returned.connect(self._on_returned)
        worker.errored.connect(self._on_errored)
        worker.finished.connect(self._on_finished)
        self._worker = worker
        self.train_button.text, self.resume_button.enabled = "Stop", False
        self.progress.max, self.progress.value = 1, 0
        self.status.value = "starting..."
        worker.start()

    def stop(self):
        """End the run after the current batch; the best weights so far are saved."""
        if self._worker is not None:
            self._stop.set()
            self.train_button.enabled = False
            self.status.value = "stopping after the current batch..."

    def _on_event(self, ev):
        if not self._closed:
            train_events.show(self, ev, (show_info, show_warning))

    def _on_returned(self, outcome):
        if self._closed:
            return
        self._last = outcome
        if outcome.pending is not None and outcome.worse is not None:
            self.status.value = f"{outcome.worse.message()}: save it?"
            if train_outcome.ask_if_worse(self, outcome.worse) == train_outcome.SAVE:
                self._save_pending(outcome)
                return
            train_outcome.keep_starting_model(outcome)
        train_outcome.report(self, outcome, self._run, (show_info, show_warning, show_error))

    def _save_pending(self, outcome):
        """Save the fine-tune kept after the question, in the background (a model file)."""
        from ..training.engine.session import save_pending

        self.status.value = f"saving {outcome.name} (not better than the starting model)..."
        self.train_button.enabled = False
        worker = thread_worker(save_pending, start_thread=False, ignore_errors=True)(outcome)
        worker.returned.connect(lambda out: None if self._closed else train_outcome.report(
            self, out, self._run, (show_info, show_warning, show_error)))
        worker.errored.connect(self._on_errored)
        worker.finished.connect(self._on_saved)
        self._saving = worker
        worker.start()

    def _on_saved(self):
        self._saving = None
        self._on_finished()

    def _on_errored(self, exc):
        if self._closed:
            return
        from ..training.engine.session import TrainingInputError

        expected = isinstance(exc, TrainingInputError)
        if not expected:
            _log.error("training failed", exc_info=original(exc))
        message = one_line(exc)
        show_error(f"{'Train' if expected else 'Training failed'}: {message}")
        self.status.value = f"failed: {message}"

    def _on_finished(self):
        self._worker = None
        if self._closed or self._saving is not None:  # _on_saved comes back here
            return
        self.train_button.text, self.train_button.enabled = "Train", True
        self._update_resume()

    def _on_destroyed(self, *_):
        """The dock (or the viewer) closed: stop the worker; handlers then do nothing."""
        self._closed = True
        self._stop.set()
        self.exchange.close_worker()
        if self._worker is not None:
            self._worker.quit()
        if self._saving is not None:
            self._saving.quit()

    # ---- export / import (ModelExchangePanel) ------------------------------------------------
    def export_model(self, path, name=None):
        self.exchange.export_model(path, name)

    def import_model(self, path):
        self.exchange.import_model(path)
