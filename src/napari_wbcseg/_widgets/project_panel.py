"""Save and open annotation projects (``io.project``) from the correction widget.

``save_layers_to_project`` writes every image of the viewer that has the three schema label
layers (image, labels, class table, review state, pixel size); ``add_project_to_viewer`` adds
each image of a project with its three label layers, schema colours, per-cell
table and review state.  Both raise ``io.project.ProjectError`` with a one-line
reason.  Each is split into a GUI-thread half (copying layers, adding layers) and a
half for any thread (writing, decoding).  ``ReviewProjectActions`` is the widget side (a
mixin of ``CorrectionWidget``): review check boxes and the project buttons (whose files
are written and decoded in a worker thread), with napari notifications for failures.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from napari.qt.threading import thread_worker
from napari.utils.notifications import show_error, show_info, show_warning

from ..core.correction_state import ReviewState
from ..io.project import ProjectError, load_entry, read_project, save_image_entry
from ..schema import labels_layer_kwargs, style_labels_layer
from .correction_layers import CorrectionLayers, find_layer_sets, shape_problem
from .review_metadata import review_metadata


_SAVE_LISTENERS: list = []  # callback(folder) after each project save (the gallery's audit)


def on_project_saved(callback, remove: bool = False) -> None:
    """Call ``callback(folder)`` after each successful project save (``remove``: stop)."""
    if remove:
        if callback in _SAVE_LISTENERS:
            _SAVE_LISTENERS.remove(callback)
    elif callback not in _SAVE_LISTENERS:
        _SAVE_LISTENERS.append(callback)


def snapshot_for_project(viewer) -> tuple[list[dict], list[str], dict]:
    """GUI thread: copies of what a project save writes, ``(entries, skipped names, layers
    by name)``, so that edits during a background save never reach the files."""
    sets = find_layer_sets(viewer.layers)
    if not sets:
        raise ProjectError("no image has its nucleus, cytoplasm and cell type label layers")
    entries, skipped = [], []
    for name, layers in sets.items():
        problem = shape_problem(layers)
        if problem:
            raise ProjectError(f"{name!r}: {problem}")
        ls = CorrectionLayers(viewer, name, layers)
        try:
            image = ls.image_layer
            if image is None or image.multiscale:
                skipped.append(name)
                continue
            a = {k: np.array(v) for k, v in ls.arrays().items()}
            ids = np.unique(np.where(a["nucleus"] > 0, a["nucleus"], a["cytoplasm"]))
            review = ls.review.to_dict(existing=ids[ids > 0].tolist())
            entries.append(dict(name=name, image=np.array(image.data), **a,
                                reviewed=review["reviewed"],
                                reviewed_cells=review["reviewed_cells"], classes=ls.classes,
                                pixel_size_um=ls.pixel_size_um))
        finally:
            ls.close()
    if not entries:
        raise ProjectError(f"none of {sorted(sets)} has its image layer in the viewer; "
                           "a project stores the image with its labels")
    return entries, skipped, sets


def write_project(folder, entries) -> list[str]:
    """Any thread: write the snapshot's entries; returns their names."""
    for e in entries:
        e = dict(e)
        save_image_entry(folder, e.pop("name"), e.pop("image"), e.pop("nucleus"),
                         e.pop("cytoplasm"), e.pop("cell_type"), **e)
    return [e["name"] for e in entries]


def _mark_saved(sets, saved, folder) -> None:
    for name in saved:
        for layer in sets[name].values():
            layer.metadata["project"] = str(folder)


def save_layers_to_project(viewer, folder) -> tuple[list[str], list[str]]:
    """Save every complete layer set with its image; returns (saved names, skipped names)."""
    entries, skipped, sets = snapshot_for_project(viewer)
    saved = write_project(Path(folder), entries)
    _mark_saved(sets, saved, folder)
    return saved, skipped


def read_project_arrays(folder):
    """Any thread: ``(project, [(entry, arrays)])``, all images decoded (all or nothing)."""
    project = read_project(folder)
    if not project.entries:
        raise ProjectError(f"{folder}: the project has no images yet")
    return project, [(e, load_entry(project.path, e)) for e in project.entries]


def add_loaded_project(viewer, project, data) -> list[str]:
    """GUI thread: add the decoded images with their label layers; returns the names."""
    classes = [{"code": c.code, "name": c.name, "color": c.color} for c in project.classes]
    added = []
    for entry, arrays in data:
        meta = {"project": str(project.path)}
        if project.pixel_size_um is not None:
            meta["pixel_size_um"] = project.pixel_size_um
        rgb = arrays.image.ndim == 3 and arrays.image.shape[-1] in (3, 4)
        image = viewer.add_image(arrays.image, name=entry.name, rgb=rgb, metadata=dict(meta))
        review = ReviewState(entry.reviewed, set(entry.reviewed_cells or ()))
        layers = {}
        for kind in ("nucleus", "cytoplasm", "cell_type"):
            kwargs = labels_layer_kwargs(image.name, kind, project.classes)
            layers[kind] = style_labels_layer(viewer.add_labels(
                getattr(arrays, kind), metadata={**meta, "source_layer": image.name,
                                                 "classes": classes, **review_metadata(review)},
                **kwargs), kind)
        ls = CorrectionLayers(viewer, image.name, layers)
        ls.refresh_features()  # the layers' live count (per-cell table, differential)
        ls.close()
        added.append(image.name)
    return added


def add_project_to_viewer(viewer, folder) -> list[str]:
    """Add every image of the project at ``folder`` with its label layers; returns the names."""
    return add_loaded_project(viewer, *read_project_arrays(folder))


class ReviewProjectActions:
    # ---- review --------------------------------------------------------------------------
    def _on_image_reviewed(self, value):
        if self.current is None and value:
            show_info("Reviewed: no image with nucleus, cytoplasm and cell type label layers")
            self.image_reviewed.value = False
        elif self.current is not None and value != self.current.review.reviewed:
            state = self.current.review
            state.reviewed = bool(value)
            self.current.review = state
            self._refresh()

    def toggle_cell_reviewed(self) -> bool:
        cid = self._need_set("Review") and self._need_cell("Review")
        if not cid:
            return False
        state = self.current.review
        state.toggle_cell(cid)
        self.current.review = state
        self._refresh()
        return True

    # ---- project ------------------------------------------------------------------------
    # save_project / open_project run on the calling thread (scripts, tests); the buttons
    # decode and write in a worker (save_project_in_background / open_project_in_background)
    def save_project(self, folder) -> list[str]:
        try:
            saved, skipped = save_layers_to_project(self._viewer, folder)
        except (ProjectError, OSError) as exc:
            show_error(f"Save project: {exc}")
            return []
        self._saved(folder, saved, skipped)
        return saved

    def _saved(self, folder, saved, skipped) -> None:
        self.project_dir = Path(folder)
        for callback in list(_SAVE_LISTENERS):  # e.g. the review gallery's audit trail
            callback(Path(folder))
        if skipped:
            show_warning(f"Save project: no image layer for {skipped}; not saved")
        show_info(f"Saved {len(saved)} image(s) to the project {folder}")

    def open_project(self, folder) -> list[str]:
        try:
            added = add_project_to_viewer(self._viewer, folder)
        except (ProjectError, OSError) as exc:
            show_error(f"Open project: {exc}")
            return []
        return self._opened(folder, added)

    def _opened(self, folder, added) -> list[str]:
        self.project_dir = Path(folder)
        self.refresh_sets()
        self.layer_set.value = added[0]
        return added

    def _project_worker(self, func, args, what, on_done):
        """Run ``func(*args)`` in a worker; ``on_done(result)`` on the GUI thread; errors
        become one notification; the project buttons are off meanwhile."""
        def errored(exc):
            if not self._closed:
                show_error(f"{what}: {exc}" if isinstance(exc, (ProjectError, OSError))
                           else f"{what} failed: {exc}")

        def finished():
            self.project_worker = None
            self.open_button.enabled = self.save_button.enabled = True

        worker = thread_worker(func, start_thread=False, ignore_errors=True)(*args)
        worker.returned.connect(lambda value: None if self._closed else on_done(value))
        worker.errored.connect(errored)
        worker.finished.connect(finished)
        self.project_worker = worker
        self.open_button.enabled = self.save_button.enabled = False
        worker.start()
        return worker

    def save_project_in_background(self, folder):
        """Snapshot the layers now, write the files in a worker (returns it, or None)."""
        try:
            entries, skipped, sets = snapshot_for_project(self._viewer)
        except ProjectError as exc:
            show_error(f"Save project: {exc}")
            return None

        def done(saved):
            _mark_saved(sets, saved, folder)
            self._saved(folder, saved, skipped)
        return self._project_worker(write_project, (Path(folder), entries), "Save project", done)

    def open_project_in_background(self, folder):
        """Decode the project's images in a worker, then add the layers (returns the worker)."""
        def done(loaded):
            self._opened(folder, add_loaded_project(self._viewer, *loaded))
        return self._project_worker(read_project_arrays, (folder,), "Open project", done)

    def _ask_folder(self, title):
        from qtpy.QtWidgets import QFileDialog

        return QFileDialog.getExistingDirectory(None, title, str(self.project_dir or Path.home()))

    def _on_open_clicked(self):
        folder = self._ask_folder("Open annotation project")
        if folder:
            self.open_project_in_background(folder)

    def _on_save_clicked(self):
        folder = self._ask_folder("Save annotation project (choose or create a folder)")
        if folder:
            self.save_project_in_background(folder)
