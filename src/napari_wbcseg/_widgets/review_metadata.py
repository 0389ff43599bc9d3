"""The one format of the review state in label-layer metadata, read and written here only.

Written: ``metadata["wbcseg_review"] = {"reviewed": bool, "reviewed_cells": [ids] or None}``
(``core.correction_state.ReviewState.to_dict``) on each of an image's three label layers.
Read: that dict, and also the older flat keys ``wbcseg_reviewed`` (bool) and
``wbcseg_reviewed_cells`` (ids) that scripts may still set; writing drops the flat keys so
the two forms can never disagree.
"""
from __future__ import annotations

from ..core.correction_state import METADATA_KEY, ReviewState

LEGACY_REVIEWED_KEY = "wbcseg_reviewed"
LEGACY_CELLS_KEY = "wbcseg_reviewed_cells"


def _cell_ids(ids) -> set[int]:
    try:
        return {int(i) for i in (ids or ()) if int(i) > 0}
    except (TypeError, ValueError):  # hand-made metadata: ignore what is not a list of ids
        return set()


def layer_review(metadata) -> ReviewState:
    """The review state one layer's metadata records (either format; lenient)."""
    packed = metadata.get(METADATA_KEY)
    packed = packed if isinstance(packed, dict) else {}
    reviewed = packed.get("reviewed") is True or metadata.get(LEGACY_REVIEWED_KEY) is True
    cells = _cell_ids(packed.get("reviewed_cells")) | _cell_ids(metadata.get(LEGACY_CELLS_KEY))
    return ReviewState(reviewed, cells)


def read_review(label_layers) -> ReviewState:
    """The state of an image's label layers: reviewed only when all of them say so; the
    checked cells of any of them."""
    states = [layer_review(layer.metadata) for layer in label_layers]
    return ReviewState(bool(states) and all(s.reviewed for s in states),
                       set().union(*(s.cells for s in states)))


def review_metadata(state: ReviewState) -> dict:
    """``{METADATA_KEY: ...}`` to put into a new label layer's metadata."""
    return {METADATA_KEY: state.to_dict()}


def write_review(label_layers, state: ReviewState) -> None:
    """Record ``state`` on every layer in the one current format."""
    for layer in label_layers:
        layer.metadata.pop(LEGACY_REVIEWED_KEY, None)
        layer.metadata.pop(LEGACY_CELLS_KEY, None)
        layer.metadata.update(review_metadata(state))
