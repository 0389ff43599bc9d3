"""The reviewed images open in a viewer, as training data (no widgets here).

An image counts when its three schema label layers (``<image> nucleus``, ``<image>
cytoplasm``, ``<image> cell type``; napari's `` [n]`` duplicates form sets of their own)
are open beside it and their metadata marks them reviewed: the correction widget's
``wbcseg_review`` dict, or the flat keys ``wbcseg_reviewed`` / ``wbcseg_reviewed_cells``.
"""
from __future__ import annotations

import numpy as np
from napari.layers import Image, Labels

from ..core.correction_state import METADATA_KEY as REVIEW_DICT_KEY
from .correction_layers import LABEL_NAME

REVIEWED_KEY = "wbcseg_reviewed"
REVIEWED_CELLS_KEY = "wbcseg_reviewed_cells"


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
    """``(reviewed, reviewed cell ids)`` from the label layers' metadata: the correction
    widget's ``wbcseg_review`` dict (``{"reviewed", "reviewed_cells"}``) or the flat keys
    ``wbcseg_reviewed`` / ``wbcseg_reviewed_cells``.  Reviewed = marked on all three."""
    reviewed, cells = [], set()
    for layer in label_layers:
        meta = layer.metadata
        packed = meta.get(REVIEW_DICT_KEY) if isinstance(meta.get(REVIEW_DICT_KEY), dict) else {}
        reviewed.append(meta.get(REVIEWED_KEY) is True or packed.get("reviewed") is True)
        for ids in (meta.get(REVIEWED_CELLS_KEY), packed.get("reviewed_cells")):
            try:
                cells.update(int(i) for i in (ids or ()) if int(i) > 0)
            except (TypeError, ValueError):
                pass
    return all(reviewed), sorted(cells)


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
    from ..training.session import LayerSet

    found, notes = reviewed_in_viewer(layers)
    return [LayerSet(name, np.array(image.data), *(np.array(x.data) for x in trio),
                     reviewed=reviewed, reviewed_cells=None if reviewed else tuple(cells))
            for name, image, trio, reviewed, cells in found], notes
