"""The reviewed images open in a viewer, as training data (no widgets here).

An image counts when its three schema label layers (``<image> nucleus``, ``<image>
cytoplasm``, ``<image> cell type``; napari's `` [n]`` duplicates form sets of their own)
are open beside it and their metadata marks them reviewed (``review_metadata``).
Their class table is that of their cell-type layers (:func:`reviewed_class_table`).
"""
from __future__ import annotations

import numpy as np
from napari.layers import Image, Labels

from ..core.gallery_groups import merge_classes
from ..schema import DEFAULT_CLASSES, UNIDENTIFIED
from .correction_layers import LABEL_NAME
from .live_counts import layer_classes
from .review_metadata import read_review


def schema_layer_sets(layers) -> dict:
    """``{name: (image layer or None, [nucleus, cytoplasm, cell type layers])}`` of every
    image with its three label layers (the image is found by name or the labels'
    ``source_layer``)."""
    found: dict = {}
    for layer in layers:
        m = LABEL_NAME.match(layer.name)
        if m and isinstance(layer, Labels):
            found.setdefault((m["base"], m["dup"] or ""), {})[m["kind"]] = layer
    out = {}
    for (base, dup), kinds in found.items():
        if len(kinds) != 3:
            continue
        trio = [kinds["nucleus"], kinds["cytoplasm"], kinds["cell type"]]
        image = None
        for candidate in (base + dup, base, trio[0].metadata.get("source_layer")):
            if candidate and candidate in layers and isinstance(layers[candidate], Image):
                image = layers[candidate]
                break
        out[base + dup] = (image, trio)
    return out


def review_state(label_layers) -> tuple[bool, list[int]]:
    """``(reviewed, reviewed cell ids)`` of the label layers (``review_metadata``: the
    ``wbcseg_review`` dict or the older flat keys).  Reviewed = marked on all three."""
    state = read_review(label_layers)
    return state.reviewed, sorted(state.cells)


def reviewed_in_viewer(layers):
    """``([(name, image layer, label layers, reviewed, cells)], notes)``; reads no pixels."""
    found, notes = [], []
    for name, (image, trio) in schema_layer_sets(layers).items():
        reviewed, cells = review_state(trio)
        if not reviewed and not cells:
            continue
        if image is None:
            notes.append(f"{name!r} skipped: no image layer called {name!r} beside its labels")
        elif image.multiscale or image.ndim != 2:
            notes.append(f"{name!r} skipped: only single 2D images can be trained on")
        else:
            found.append((name, image, trio, reviewed, cells))
    return found, notes


def snapshot_layer_sets(layers):
    """``(LayerSets, notes)`` of the reviewed images: copies, taken on the GUI thread, so
    that editing during a run never changes the training data."""
    from ..training.engine.session import LayerSet

    found, notes = reviewed_in_viewer(layers)
    return [LayerSet(name, np.array(image.data), *(np.array(x.data) for x in trio),
                     reviewed=reviewed, reviewed_cells=None if reviewed else tuple(cells))
            for name, image, trio, reviewed, cells in found], notes


def reviewed_class_table(layers) -> tuple | None:
    """The class table of the reviewed images in ``layers``: their cell-type layers' tables
    merged (first seen first, unidentified last); None when they all use the five blood
    classes (the run then takes the project folders' table, else the starting model's)."""
    found, _ = reviewed_in_viewer(layers)
    tables = [layer_classes(trio[2]) for _, _, trio, _, _ in found]
    if all(_named(t) == _named(DEFAULT_CLASSES) for t in tables):
        return None
    merged = merge_classes(tables)
    return (tuple(c for c in merged if c.code != UNIDENTIFIED)
            + tuple(c for c in merged if c.code == UNIDENTIFIED))


def _named(table) -> tuple:
    return tuple((c.code, c.name) for c in table)
