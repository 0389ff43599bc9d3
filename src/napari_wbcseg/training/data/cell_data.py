"""Labelled cells for the per-cell classifier: samples -> crops + class indices (no torch).

Crops are made as at inference (:mod:`napari_wbcseg.core.cell_crops` at the native
scale).  Their masks come either from a segmentation network run on the sample
(``predict``: what the classifier will see behind that network, the default for the
public data) or from the labels themselves (corrected layers, where the masks are the
truth).  A predicted cell takes the class that covers at least half of its area in the
labels; cells on unknown or background labels are left out.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ...core.cell_crops import cell_crops
from .augment import resample_to_native
from .sample import NUCLEUS

__all__ = ["CellSet", "class_table_of", "collect_cells", "concat_cells", "truth_instances"]

MIN_COVER = 0.5


@dataclass
class CellSet:
    crops: np.ndarray  # (N, 5, S, S) uint8
    labels: np.ndarray  # (N,) int64 index into the class table
    sources: list = field(default_factory=list)
    groups: list = field(default_factory=list)
    names: list = field(default_factory=list)
    flags: list = field(default_factory=list)  # per crop: "", "border", "shrunk", ...

    def __len__(self) -> int:
        return int(len(self.labels))

    def subset(self, index) -> "CellSet":
        index = np.asarray(index, np.int64)
        pick = lambda xs: [xs[i] for i in index]  # noqa: E731
        return CellSet(self.crops[index], self.labels[index], pick(self.sources),
                       pick(self.groups), pick(self.names), pick(self.flags))


def concat_cells(sets, size: int) -> CellSet:
    sets = [s for s in sets if len(s)]
    if not sets:
        return CellSet(np.zeros((0, 5, size, size), np.uint8), np.zeros(0, np.int64))
    return CellSet(np.concatenate([s.crops for s in sets]),
                   np.concatenate([s.labels for s in sets]),
                   *[sum((getattr(s, k) for s in sets), []) for k in
                     ("sources", "groups", "names", "flags")])


def truth_instances(semantic: np.ndarray, cell_class: np.ndarray):
    """(nucleus, cytoplasm) instance maps of the labelled cells: one id per connected cell."""
    import cv2

    cell = (semantic >= 1) & (semantic <= 3)
    n, cc = cv2.connectedComponents(cell.astype(np.uint8), connectivity=8)
    cc = cc.astype(np.int32)
    nucleus = np.where(semantic == NUCLEUS, cc, 0)
    cytoplasm = np.where(cell & (semantic != NUCLEUS), cc, 0)
    return nucleus, cytoplasm


def _predicted_instances(predict, image, multiple):
    from ...core.postprocessing import instances_from_probabilities
    from ..evaluation.evaluate import predict_sample

    probs = predict_sample(predict, image, multiple)
    # only the cells are needed: their types come from the labels, so the network's own
    # class channels (whatever its table) are not read
    inst = instances_from_probabilities(probs[:3], None)
    return inst.nucleus, inst.cytoplasm


def _labels_of(cells, cell_class, codes):
    """cell id -> class index where one known class covers >= MIN_COVER of the cell."""
    index = {c: i for i, c in enumerate(codes)}
    out = {}
    for cid in np.unique(cells[cells > 0]):
        values = cell_class[cells == cid]
        known = np.isin(values, codes)
        if not known.any():
            continue
        vals, counts = np.unique(values[known], return_counts=True)
        best = int(counts.argmax())
        if counts[best] >= MIN_COVER * values.size:
            out[int(cid)] = index[int(vals[best])]
    return out


def collect_cells(samples, codes, *, predict=None, multiple: int = 32, size: int = 128,
                  on_sample=None) -> CellSet:
    """Crops and class indices of the labelled cells of ``samples``.

    ``codes``: the class table's codes (index i <-> ``codes[i]``; gapped codes fine, see
    :mod:`.class_tables`); cells of other codes are left out.  ``predict``: a
    segmentation predictor ((1, 3, h, w) float 0..1 -> (1, 3 + K, h, w)) whose cells are
    cropped; None crops the labelled cells with their own masks.
    """
    codes = tuple(int(c) for c in codes)
    parts = []
    for i, s in enumerate(samples):
        native = resample_to_native(s)
        if predict is None:
            nucleus, cytoplasm = truth_instances(native.semantic, native.cell_class)
        else:
            nucleus, cytoplasm = _predicted_instances(predict, native.image, multiple)
        cells = np.where(nucleus > 0, nucleus, cytoplasm)
        labels = _labels_of(cells, native.cell_class, codes)
        if labels:
            crops = cell_crops(native.image, nucleus, cytoplasm, scale=1.0, size=size,
                               ids=sorted(labels))
            n = len(crops.ids)
            parts.append(CellSet(crops.crops, np.array([labels[c] for c in crops.ids.tolist()],
                                                       np.int64),
                                 [s.source] * n, [s.group] * n,
                                 [f"{s.name}#{c}" for c in crops.ids.tolist()],
                                 [",".join(crops.flags.get(c, [])) for c in crops.ids.tolist()]))
        if on_sample is not None:
            on_sample(i + 1, len(samples))
    return concat_cells(parts, size)


def class_table_of(cells: CellSet, classes) -> None:
    """``ValueError`` (one line) unless the cells hold at least two classes of ``classes``."""
    if len(cells) == 0:
        raise ValueError("no labelled cell in the training data: label the cell types "
                         "(or mark cells reviewed) before training a classifier")
    present = np.unique(cells.labels)
    if present.size < 2:
        name = classes[int(present[0])]["name"] if len(classes) > int(present[0]) else "?"
        raise ValueError(f"the training cells hold only one class ({name}): a classifier "
                         "needs labelled cells of at least two classes")
