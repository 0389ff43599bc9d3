"""Export and import of model files, the bottom row of the training dock.

Copying and checking a model file runs in a worker thread (an import rebuilds the network
to check it); errors become notifications.  ``io.model_exchange`` does the work and
never unpickles anything.
"""
from __future__ import annotations

import logging

from magicgui.widgets import ComboBox, Container, PushButton
from napari.qt.threading import thread_worker
from napari.utils.notifications import show_error, show_info

from .worker_errors import one_line

_log = logging.getLogger(__name__)


class ModelExchangePanel(Container):
    """``on_imported()`` is called on the GUI thread after a successful import."""

    def __init__(self, on_imported=lambda: None):
        super().__init__(labels=True)
        self._on_imported = on_imported
        self.closed = False
        self.worker = None
        self.model_to_export = ComboBox(label="model to export", choices=self._model_names,
                                        tooltip="the model that Export... writes to a file")
        self.export_button = PushButton(text="Export...")
        self.import_button = PushButton(text="Import...")
        self.extend([self.model_to_export,
                     Container(widgets=[self.export_button, self.import_button],
                               layout="horizontal", labels=False)])
        self.margins = (0, 0, 0, 0)
        self.export_button.changed.connect(self._on_export_clicked)
        self.import_button.changed.connect(self._on_import_clicked)

    @staticmethod
    def _model_names(_widget=None):
        from ..io.model_store import list_models

        return list_models() or ["(none)"]

    def export_model(self, path, name=None):
        from ..io.model_exchange import export_model

        name = name or self.model_to_export.value
        self._run(export_model, (name, path), lambda p: f"exported {name!r} to {p}",
                  what="Export model")

    def import_model(self, path):
        from ..io.model_exchange import import_model

        self._run(import_model, (path,), lambda n: f"imported model {n!r}", imported=True,
                  what="Import model")

    def _run(self, func, args, done, imported=False, what="Model file"):
        from ..io.model_exchange import ModelFileError

        def returned(value):
            if not self.closed:
                show_info(done(value))
                if imported:
                    self._on_imported()

        def errored(exc):
            expected = isinstance(exc, (ModelFileError, OSError))
            if not expected:
                _log.error("%s failed", func.__name__, exc_info=exc)
            if not self.closed:
                message = one_line(exc)
                show_error(f"{what}: {message}" if expected else f"{what} failed: {message}")

        def finished():
            self.worker = None
            self.export_button.enabled = self.import_button.enabled = True

        worker = thread_worker(func, start_thread=False, ignore_errors=True)(*args)
        worker.returned.connect(returned)
        worker.errored.connect(errored)
        worker.finished.connect(finished)
        self.worker = worker
        self.export_button.enabled = self.import_button.enabled = False  # one file at a time
        worker.start()

    def close_worker(self):
        """The dock closed: later results are not shown."""
        self.closed = True
        if self.worker is not None:
            self.worker.quit()

    def _on_export_clicked(self, *_):
        from qtpy.QtWidgets import QFileDialog

        name = self.model_to_export.value
        path, _ = QFileDialog.getSaveFileName(None, f"Export model {name}",
                                              f"{name}.safetensors",
                                              "napari-wbcseg model (*.safetensors)")
        if path:
            self.export_model(path, name)

    def _on_import_clicked(self, *_):
        from qtpy.QtWidgets import QFileDialog

        path, _ = QFileDialog.getOpenFileName(None, "Import model", "",
                                              "napari-wbcseg model (*.safetensors)")
        if path:
            self.import_model(path)
