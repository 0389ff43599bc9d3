"""Save and open annotation projects (``io.project``) from the correction widget.

``save_layers_to_project`` writes every image of the viewer that has the three schema label
layers (image, labels, class table, review state, pixel size); ``add_project_to_viewer`` adds
each image of a project with its three label layers, schema colours, per-cell
table and review state.  Both raise ``io.project.ProjectError`` with a one-line
reason.  ``ReviewProjectActions`` is the widget side (a mixin of
``CorrectionWidget``): review check boxes and the project buttons, with napari
notifications for failures.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from napari.utils.notifications import show_error, show_info, show_warning

from ..core.correction_state import METADATA_KEY, ReviewState
from ..io.project import ProjectError, load_entry, read_project, save_image_entry
from ..schema import labels_layer_kwargs
from .correction_layers import LayerSet, find_layer_sets


def save_layers_to_project(viewer, folder) -> tuple[list[str], list[str]]:
    """Save every complete layer set with its image; returns (saved names, skipped names)."""
    folder = Path(folder)
    sets = find_layer_sets(viewer.layers)
    if not sets:
        raise ProjectError("no image has its nucleus, cytoplasm and cell type label layers")
    saved, skipped = [], []
    for name, layers in sets.items():
        ls = LayerSet(viewer, name, layers)
        try:
            image = ls.image_layer
            if image is None or image.multiscale:
                skipped.append(name)
                continue
            a = ls.arrays()
            ids = np.unique(np.where(a["nucleus"] > 0, a["nucleus"], a["cytoplasm"]))
            review = ls.review.to_dict(existing=ids[ids > 0].tolist())
            save_image_entry(folder, name, np.asarray(image.data), a["nucleus"], a["cytoplasm"],
                             a["cell_type"], reviewed=review["reviewed"],
                             reviewed_cells=review["reviewed_cells"], classes=ls.classes,
                             pixel_size_um=ls.pixel_size_um)
        finally:
            ls.close()
        for layer in layers.values():
            layer.metadata["project"] = str(folder)
        saved.append(name)
    if not saved:
        raise ProjectError(f"none of {sorted(sets)} has its image layer in the viewer; "
                           "a project stores the image with its labels")
    return saved, skipped


def add_project_to_viewer(viewer, folder) -> list[str]:
    """Add every image of the project at ``folder`` with its label layers; returns the names."""
    project = read_project(folder)
    if not project.entries:
        raise ProjectError(f"{folder}: the project has no images yet")
    data = [(e, load_entry(project.path, e)) for e in project.entries]  # all or nothing
    classes = [{"code": c.code, "name": c.name, "color": c.color} for c in project.classes]
    added = []
    for entry, arrays in data:
        meta = {"project": str(project.path)}
        if project.pixel_size_um is not None:
            meta["pixel_size_um"] = project.pixel_size_um
        rgb = arrays.image.ndim == 3 and arrays.image.shape[-1] in (3, 4)
        image = viewer.add_image(arrays.image, name=entry.name, rgb=rgb, metadata=dict(meta))
        review = ReviewState(entry.reviewed, set(entry.reviewed_cells or ())).to_dict()
        layers = {}
        for kind in ("nucleus", "cytoplasm", "cell_type"):
            kwargs = labels_layer_kwargs(image.name, kind, project.classes)
            layers[kind] = viewer.add_labels(
                getattr(arrays, kind), metadata={**meta, "source_layer": image.name,
                                                 "classes": classes, METADATA_KEY: dict(review)},
                **kwargs)
        ls = LayerSet(viewer, image.name, layers)
        ls.refresh_features()
        ls.close()
        added.append(image.name)
    return added


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
    def save_project(self, folder) -> list[str]:
        try:
            saved, skipped = save_layers_to_project(self._viewer, folder)
        except (ProjectError, OSError) as exc:
            show_error(f"Save project: {exc}")
            return []
        self.project_dir = Path(folder)
        if skipped:
            show_warning(f"Save project: no image layer for {skipped}; not saved")
        show_info(f"Saved {len(saved)} image(s) to the project {folder}")
        return saved

    def open_project(self, folder) -> list[str]:
        try:
            added = add_project_to_viewer(self._viewer, folder)
        except (ProjectError, OSError) as exc:
            show_error(f"Open project: {exc}")
            return []
        self.project_dir = Path(folder)
        self.refresh_sets()
        self.layer_set.value = added[0]
        return added

    def _ask_folder(self, title):
        from qtpy.QtWidgets import QFileDialog

        return QFileDialog.getExistingDirectory(None, title, str(self.project_dir or Path.home()))

    def _on_open_clicked(self):
        folder = self._ask_folder("Open annotation project")
        if folder:
            self.open_project(folder)

    def _on_save_clicked(self):
        folder = self._ask_folder("Save annotation project (choose or create a folder)")
        if folder:
            self.save_project(folder)
