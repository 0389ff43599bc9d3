"""The one label schema used by layers, files and training targets.

See ``DESIGN.md``: nucleus and cytoplasm layers share a cell id per white cell,
the cell-type layer holds the class code on the whole cell area.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

BACKGROUND = 0
UNIDENTIFIED = 255  # reserved code for a cell whose class nobody has decided


@dataclass(frozen=True)
class CellClass:
    """One row of a class table (see :mod:`napari_wbcseg.schemes`).

    ``group`` (lineage, e.g. "myeloid", "erythroid") and ``hotkey`` (one key of 0-9/a-z
    for the review gallery) are extras: two classes with the same code, name and colour
    are equal whatever their group and hotkey, so tables read from old projects (which
    carry neither) still compare equal to the built-in ones.
    """

    code: int
    name: str
    color: str  # hex RGB, used for napari's DirectLabelColormap
    group: str = field(default="", compare=False)
    hotkey: str = field(default="", compare=False)


# Codes follow the public data (segmentation_WBC CSVs); colours after Zhu et al.
# The same table is the built-in scheme "blood-5part" (schemes/blood-5part.csv).
DEFAULT_CLASSES: tuple[CellClass, ...] = (
    CellClass(1, "neutrophil", "#9b30ff", "myeloid", "1"),  # purple
    CellClass(2, "lymphocyte", "#ffd700", "lymphoid", "2"),  # yellow
    CellClass(3, "monocyte", "#1e64ff", "monocytic", "3"),  # blue
    CellClass(4, "eosinophil", "#00c800", "myeloid", "4"),  # green
    CellClass(5, "basophil", "#ff2020", "myeloid", "5"),  # red
    CellClass(UNIDENTIFIED, "unidentified", "#a0a0a0", "", "u"),
)

SEMANTIC_CLASSES = {0: "background", 1: "cytoplasm", 2: "nucleus"}


def class_by_code(classes=DEFAULT_CLASSES) -> dict[int, CellClass]:
    return {c.code: c for c in classes}


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
    """Raise :class:`LabelSchemaError` with a one-line reason if the three arrays disagree.

    Time and memory grow with the number of pixels, never with the size of the cell ids
    (an id of 2**32-1 costs what an id of 1 does).
    """
    nucleus, cytoplasm, cell_type = (np.asarray(a) for a in (nucleus, cytoplasm, cell_type))
    arrays = {"nucleus": nucleus, "cytoplasm": cytoplasm, "cell type": cell_type}
    for name, arr in arrays.items():
        if not np.issubdtype(arr.dtype, np.integer):
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
    mixed = _cells_with_two_classes(nucleus, cytoplasm, cell_type, cell)
    if mixed.size:
        raise LabelSchemaError(f"cells {mixed[:5].tolist()} have more than one class")


def _cells_with_two_classes(nucleus, cytoplasm, cell_type, cell) -> np.ndarray:
    """Sorted ids of cells whose pixels carry more than one class (a sort, not a table by id)."""
    if not cell.any():
        return np.zeros(0, np.uint64)
    nuc = nucleus[cell]
    # ids are positive on cell pixels, so uint64 holds every integer label type
    ids = np.where(nuc > 0, nuc.astype(np.uint64), cytoplasm[cell].astype(np.uint64))
    cls = cell_type[cell].astype(np.int64)
    order = np.lexsort((cls, ids))
    ids, cls = ids[order], cls[order]
    two = (ids[1:] == ids[:-1]) & (cls[1:] != cls[:-1])
    return np.unique(ids[1:][two])


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


# How the three layers look (see docs/display.md).  Nucleus and cytoplasm carry the same
# cell id, so napari's random label colours would paint both regions of a cell alike.
# Instead each cell gets one hue from a fixed cycle: dark for its nucleus, light for its
# cytoplasm.  Neighbouring ids get far-apart hues (the cycle jumps around the colour
# wheel).  The cell type is drawn as a thick outline in its class colour, so that the
# stained cell inside stays visible; napari's ``add_labels`` takes no ``contour``, so
# layer data tuples (samples, reader) carry a light fill and whoever holds the layer
# sets the outline afterwards (:func:`labels_display`, :func:`style_labels_layer`).
CELL_HUES_DEG = (210, 30, 150, 300, 90, 0, 255, 60, 180, 330)  # successive ids far apart
NUCLEUS_STYLE = {"saturation": 0.85, "value": 0.45, "opacity": 0.6}
CYTOPLASM_STYLE = {"saturation": 0.40, "value": 1.0, "opacity": 0.5}
CELL_TYPE_FILL_OPACITY = 0.25  # until the outline is set: the cell shows through
CELL_TYPE_CONTOUR = 3  # outline width in image pixels
CELL_TYPE_CONTOUR_OPACITY = 1.0


def _hsv_hex(hue_deg: float, saturation: float, value: float) -> str:
    import colorsys

    r, g, b = colorsys.hsv_to_rgb(hue_deg / 360.0, saturation, value)
    return "#{:02x}{:02x}{:02x}".format(*(round(255 * c) for c in (r, g, b)))


def region_colors(kind: str) -> list[str]:
    """Colour cycle for the nucleus or cytoplasm layer: index 0 is the (transparent)
    background, cell id ``i`` gets entry ``(i - 1) % len(CELL_HUES_DEG) + 1``, the same
    hue in both layers."""
    style = {"nucleus": NUCLEUS_STYLE, "cytoplasm": CYTOPLASM_STYLE}[kind]
    return ["transparent"] + [_hsv_hex(h, style["saturation"], style["value"])
                              for h in CELL_HUES_DEG]


def _check_kind(kind: str) -> None:
    if kind not in ("nucleus", "cytoplasm", "cell_type"):
        raise ValueError(f"unknown layer kind {kind!r}; expected nucleus, cytoplasm or cell_type")


def labels_style(kind: str, classes=DEFAULT_CLASSES) -> dict:
    """Display keyword arguments napari's ``add_labels`` takes for a schema layer (a list
    is a colour cycle, a dict a fixed colour per label)."""
    _check_kind(kind)
    if kind == "cell_type":
        return {"colormap": class_colors(classes), "opacity": CELL_TYPE_FILL_OPACITY}
    style = NUCLEUS_STYLE if kind == "nucleus" else CYTOPLASM_STYLE
    return {"colormap": region_colors(kind), "opacity": style["opacity"]}


def labels_display(kind: str) -> dict:
    """Layer attributes to set once the layer exists (``add_labels`` does not take them)."""
    _check_kind(kind)
    if kind == "cell_type":
        return {"contour": CELL_TYPE_CONTOUR, "opacity": CELL_TYPE_CONTOUR_OPACITY}
    return {}


def style_labels_layer(layer, kind: str):
    """Give an existing Labels layer the schema's look for ``kind``; returns ``layer``."""
    for attribute, value in labels_display(kind).items():
        setattr(layer, attribute, value)
    return layer


def kind_from_layer_name(name: str) -> str | None:
    """The schema kind a layer name made by :func:`layer_names` ends with, else None."""
    for kind, suffix in layer_names("").items():
        if name.endswith(suffix):
            return kind
    return None


def labels_layer_kwargs(image_name: str, kind: str, classes=DEFAULT_CLASSES) -> dict:
    """Keyword arguments for napari Labels layers of the schema (name and display style);
    follow with :func:`style_labels_layer` for the cell type's outline."""
    return {"name": layer_names(image_name)[kind], **labels_style(kind, classes)}
