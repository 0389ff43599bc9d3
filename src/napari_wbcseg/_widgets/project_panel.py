"""Save and open annotation projects (``io.project``) from the correction widget.

``save_layers_to_project`` writes every image of the viewer that has the three schema label
layers (image, labels, class table, review state, pixel size); ``add_project_to_viewer`` adds
each image of a project with its three label layers, schema colours, per-cell
table and review state.  Both raise ``io.project.ProjectError`` with a one-line
reason.  Each is split into a GUI-thread half (copying layers, adding layers) and a
half for any thread (writing, decoding).  ``ReviewProjectActions`` is the widget side (a
mixin of ``CorrectionWidget``): review check boxes and the project buttons (whose files
are written and decoded in a worker thread), with napari notifications for failures.  The
dock holds the project's one-writer lock (``review.ProjectLock``) from its first save or
open until it closes: a second napari window on the same project is refused its saves.
Every save of a viewer's project writes that viewer's pending audit entries
(``viewer_audit``) into it.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from napari.qt.threading import thread_worker
from napari.utils.notifications import show_error, show_info, show_warning

from ..core.correction_state import ReviewState
from ..io.project import ProjectError, load_entry, read_project, save_image_entry
from ..review import CaseError, ProjectLock
from ..schema import labels_layer_kwargs, style_labels_layer
from ..schemes.tables import classes_to_json
from .correction_layers import CorrectionLayers, find_layer_sets, shape_problem
from .correction_view import _RemovalWatcher
from .review_metadata import review_metadata
from .viewer_audit import flush_after_save

# (callback, viewer or None): callback(folder) after each project save or open (the case
# panel); a listener with a viewer hears only that viewer's docks
_SAVE_LISTENERS: list = []
_OPEN_LISTENERS: list = []


def _unwrapped(viewer):
    """The viewer itself: napari hands each plugin widget its own proxy of it."""
    return getattr(viewer, "__wrapped__", viewer)


def _listen(listeners: list, callback, remove: bool, viewer) -> None:
    listeners[:] = [e for e in listeners if e[0] != callback]
    if not remove:
        listeners.append((callback, None if viewer is None else _unwrapped(viewer)))


def _notify(listeners: list, viewer, folder) -> None:
    for callback, wanted in list(listeners):
        if wanted is None or wanted is _unwrapped(viewer):
            callback(Path(folder))


def on_project_saved(callback, remove: bool = False, viewer=None) -> None:
    """Call ``callback(folder)`` after each successful project save (``remove``: stop);
    with ``viewer``, only after saves made in that viewer."""
    _listen(_SAVE_LISTENERS, callback, remove, viewer)


def on_project_opened(callback, remove: bool = False, viewer=None) -> None:
    """Call ``callback(folder)`` after a project was opened into the viewer (``viewer``:
    only that one), its layers added."""
    _listen(_OPEN_LISTENERS, callback, remove, viewer)


def notify_project_saved(viewer, folder) -> None:
    """Tell the save listeners of ``viewer`` that its project at ``folder`` was written
    (for a save made elsewhere than the Correct dock's buttons, e.g. the case panel);
    the viewer's pending audit entries are written first."""
    flush_after_save(viewer, folder)
    _notify(_SAVE_LISTENERS, viewer, folder)


def _same_folder(a, b) -> bool:
    try:
        return Path(a).resolve() == Path(b).resolve()
    except OSError:
        return Path(a).absolute() == Path(b).absolute()


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


def mark_saved(sets, saved, folder) -> None:
    """GUI thread: the saved sets' layers now belong to the project at ``folder``."""
    for name in saved:
        for layer in sets[name].values():
            layer.metadata["project"] = str(folder)


def save_layers_to_project(viewer, folder) -> tuple[list[str], list[str]]:
    """Save every complete layer set with its image; returns (saved names, skipped names)."""
    entries, skipped, sets = snapshot_for_project(viewer)
    saved = write_project(Path(folder), entries)
    mark_saved(sets, saved, folder)
    return saved, skipped


def read_project_arrays(folder):
    """Any thread: ``(project, [(entry, arrays)])``, all images decoded (all or nothing)."""
    project = read_project(folder)
    if not project.entries:
        raise ProjectError(f"{folder}: the project has no images yet")
    return project, [(e, load_entry(project.path, e)) for e in project.entries]


def add_loaded_project(viewer, project, data) -> list[str]:
    """GUI thread: add the decoded images with their label layers; returns the names."""
    classes = classes_to_json(project.classes)  # group and hotkey too (the gallery's keys)
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
    _project_lock: ProjectLock | None = None  # this dock's one-writer lock, once it has one

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
    # The lock is taken after the snapshot succeeded (so a refused save creates no folder)
    # and before anything is written.
    def save_project(self, folder) -> list[str]:
        try:
            entries, skipped, sets = snapshot_for_project(self._viewer)
        except ProjectError as exc:
            show_error(f"Save project: {exc}")
            return []
        if not self._lock_project(folder):
            return []
        try:
            saved = write_project(Path(folder), entries)
        except (ProjectError, OSError) as exc:
            show_error(f"Save project: {exc}")
            return []
        mark_saved(sets, saved, folder)
        self._saved(folder, saved, skipped)
        return saved

    def _saved(self, folder, saved, skipped) -> None:
        self.project_dir = Path(folder)
        notify_project_saved(self._viewer, folder)  # this viewer's audit trail first
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
        refusal = self._try_lock(folder)
        if refusal:
            show_warning(f"Open project: {refusal}; saving it from this window will be "
                         "refused while it is open there")
        self.refresh_sets()
        self.layer_set.value = added[0]
        _notify(_OPEN_LISTENERS, self._viewer, folder)  # e.g. the case panel restores its case
        return added

    # ---- one writer per project ------------------------------------------------------------
    def _try_lock(self, folder) -> str | None:
        """Hold the lock of the project at ``folder`` (keeping the one held for it); the
        reason when it cannot be had (another window holds it, unwritable folder)."""
        old = self._project_lock
        if old is not None and old.held and _same_folder(old.project_dir, folder):
            return None
        try:
            new = ProjectLock(folder).acquire()
        except CaseError as exc:
            return str(exc)
        if old is not None:
            old.release()
        self._project_lock = new
        self._release_on_close()
        return None

    def _lock_project(self, folder, what: str = "Save project") -> bool:
        """``_try_lock`` with one error notification ("<what>: reason") on refusal."""
        refusal = self._try_lock(folder)
        if refusal:
            show_error(f"{what}: {refusal}")
        return refusal is None

    def release_project_lock(self) -> None:
        if self._project_lock is not None:
            self._project_lock.release()
            self._project_lock = None

    def _release_on_close(self) -> None:
        native = self.native
        if getattr(native, "_wbcseg_lock_watcher", None) is None:
            # the dock's close button un-parents the widget; the viewer closing deletes it
            native._wbcseg_lock_watcher = watcher = _RemovalWatcher(
                native, self.release_project_lock)
            native.installEventFilter(watcher)
            native.destroyed.connect(lambda *_: self.release_project_lock())

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
        if not self._lock_project(folder):
            return None

        def done(saved):
            mark_saved(sets, saved, folder)
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
