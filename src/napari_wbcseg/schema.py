"""The one label schema used by layers, files and training targets.

See ``DESIGN.md``: nucleus and cytoplasm layers share a cell id per white cell,
the cell-type layer holds the class code on the whole cell area.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

BACKGROUND = 0
UNIDENTIFIED = 255  # reserved code for a cell whose class nobody has decided


@dataclass(frozen=True)
class CellClass:
    code: int
    name: str
    color: str  # hex RGB, used for napari's DirectLabelColormap


# Codes follow the public data (segmentation_WBC CSVs); colours after Zhu et al.
DEFAULT_CLASSES: tuple[CellClass, ...] = (
    CellClass(1, "neutrophil", "#9b30ff"),  # purple
    CellClass(2, "lymphocyte", "#ffd700"),  # yellow
    CellClass(3, "monocyte", "#1e64ff"),  # blue
    CellClass(4, "eosinophil", "#00c800"),  # green
    CellClass(5, "basophil", "#ff2020"),  # red
    CellClass(UNIDENTIFIED, "unidentified", "#a0a0a0"),
)

SEMANTIC_CLASSES = {0: "background", 1: "cytoplasm", 2: "nucleus"}


def class_by_code(classes=DEFAULT_CLASSES) -> dict[int, CellClass]:
    return {c.code: c for c in classes}


def class_by_name(classes=DEFAULT_CLASSES) -> dict[str, CellClass]:
    return {c.name: c for c in classes}


def class_colors(classes=DEFAULT_CLASSES) -> dict[int | None, str]:
    """Mapping for ``napari.utils.DirectLabelColormap(color_dict=...)``."""
    colors: dict[int | None, str] = {0: "transparent", None: "#808080"}
    colors.update({c.code: c.color for c in classes})
    return colors


def layer_names(image_name: str) -> dict[str, str]:
    return {
        "nucleus": f"{image_name} nucleus",
        "cytoplasm": f"{image_name} cytoplasm",
        "cell_type": f"{image_name} cell type",
    }


class LabelSchemaError(ValueError):
    """Label arrays that break the schema of DESIGN.md."""


def check_labels(nucleus: np.ndarray, cytoplasm: np.ndarray, cell_type: np.ndarray) -> None:
    """Raise :class:`LabelSchemaError` with a one-line reason if the three arrays disagree."""
    arrays = {"nucleus": nucleus, "cytoplasm": cytoplasm, "cell type": cell_type}
    for name, arr in arrays.items():
        if not np.issubdtype(np.asarray(arr).dtype, np.integer):
            raise LabelSchemaError(f"{name} labels must be integers, got {arr.dtype}")
    if not (nucleus.shape == cytoplasm.shape == cell_type.shape):
        raise LabelSchemaError(
            f"label shapes differ: nucleus {nucleus.shape}, cytoplasm {cytoplasm.shape}, "
            f"cell type {cell_type.shape}"
        )
    both = (nucleus > 0) & (cytoplasm > 0)
    if both.any():
        raise LabelSchemaError(f"{int(both.sum())} pixels are both nucleus and cytoplasm")
    cell = (nucleus > 0) | (cytoplasm > 0)
    if ((cell_type > 0) != cell).any():
        raise LabelSchemaError("cell type must be non-zero exactly on nucleus + cytoplasm")
    ids = np.where(nucleus > 0, nucleus, cytoplasm).astype(np.int64)
    if cell.any():
        # one class per cell: min and max class over each cell id must agree
        flat_ids, flat_cls = ids[cell], cell_type[cell].astype(np.int64)
        n = int(flat_ids.max()) + 1
        lo = np.full(n, np.iinfo(np.int64).max)
        hi = np.full(n, -1)
        np.minimum.at(lo, flat_ids, flat_cls)
        np.maximum.at(hi, flat_ids, flat_cls)
        mixed = np.nonzero((hi >= 0) & (lo != hi))[0]
        if mixed.size:
            raise LabelSchemaError(f"cells {mixed[:5].tolist()} have more than one class")


def semantic_from_layers(nucleus: np.ndarray, cytoplasm: np.ndarray) -> np.ndarray:
    """Training target: 0 background, 1 cytoplasm, 2 nucleus."""
    sem = np.zeros(nucleus.shape, np.uint8)
    sem[cytoplasm > 0] = 1
    sem[nucleus > 0] = 2
    return sem


def layers_from_semantic(semantic: np.ndarray, class_code: int, cell_id: int = 1):
    """Schema layers for an image with one annotated cell (0 bg, 1 cytoplasm, 2 nucleus)."""
    nucleus = np.where(semantic == 2, cell_id, 0).astype(np.uint16)
    cytoplasm = np.where(semantic == 1, cell_id, 0).astype(np.uint16)
    cell_type = np.where(semantic > 0, class_code, 0).astype(np.uint8)
    return nucleus, cytoplasm, cell_type


def labels_layer_kwargs(image_name: str, kind: str, classes=DEFAULT_CLASSES) -> dict:
    """Keyword arguments for napari Labels layers of the schema (name, fixed colours)."""
    kwargs: dict = {"name": layer_names(image_name)[kind]}
    if kind == "cell_type":
        kwargs["colormap"] = class_colors(classes)
    return kwargs
