"""The per-cell classifier stage: cells -> crops -> calibrated probabilities -> class codes.

:func:`classify_cells` takes schema label images (from a segmentation or from a user's
corrections) and returns, per cell id, the class code, its calibrated confidence and
the probabilities.  Below ``threshold`` a cell is "unidentified"
(:data:`~napari_wbcseg.schema.UNIDENTIFIED`); cells too small to be a white cell are
unidentified too, with the reason.  Codes are those of the classifier's card (any class
table: a marrow classifier writes marrow codes, gapped codes too), never head indices;
:func:`cell_type_image` paints them into a cell-type layer, mapped onto a project's
table (:func:`classifier_mapping`) where the two tables differ.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from ..schema import UNIDENTIFIED

__all__ = ["CellClasses", "LoadedClassifier", "cell_type_image", "classifier_mapping",
           "classify_cells", "load_classifier"]

DEFAULT_THRESHOLD = 0.5


@dataclass
class LoadedClassifier:
    entry: object  # io.model_store.ModelEntry
    module: object  # models.cell_classifier.CellClassifier, eval, on ``device``
    device: str

    @property
    def codes(self) -> tuple[int, ...]:
        return tuple(int(c["code"]) for c in self.entry.card["classes"])

    @property
    def crop_size(self) -> int:
        return int(self.module.crop_size)

    def __call__(self, crops: np.ndarray, batch: int = 64) -> np.ndarray:
        """(N, 5, S, S) uint8 -> (N, K) calibrated probabilities."""
        import torch

        out = []
        for i in range(0, len(crops), batch):
            x = torch.from_numpy(crops[i:i + batch].astype(np.float32) / 255.0)
            out.append(self.module.predict_proba(x.to(self.device)).cpu().numpy())
        k = len(self.codes)
        return np.concatenate(out) if out else np.zeros((0, k), np.float32)


@dataclass
class CellClasses:
    codes: dict = field(default_factory=dict)  # cell id -> class code (255 unidentified)
    confidence: dict = field(default_factory=dict)  # cell id -> calibrated max probability
    probabilities: dict = field(default_factory=dict)  # cell id -> (K,) array
    notes: dict = field(default_factory=dict)  # cell id -> "border", "shrunk", "too_small"
    classifier: str = ""


def load_classifier(name_or_entry, device: str = "cpu") -> LoadedClassifier:
    """A classifier by name, path or store entry, cached per (file, device).

    Raises ``ValueError`` (one line) for a file that does not load.
    """
    from ..io.classifier_store import find_classifier

    entry = name_or_entry if hasattr(name_or_entry, "weights") else find_classifier(name_or_entry)
    module = _module_cached(str(entry.weights), device)
    if module.num_classes != len(entry.card.get("classes") or ()):
        raise ValueError(f"classifier {entry.name}: its card lists "
                         f"{len(entry.card.get('classes') or ())} classes but the weights "
                         f"have {module.num_classes}")
    return LoadedClassifier(entry, module, device)


@lru_cache(maxsize=4)
def _module_cached(weights: str, device: str):
    import torch

    from ..models.cell_classifier import create_classifier
    from ..models.weights import load_weights
    from .precision import resolve_precision

    from ..io.classifier_store import CROP_SIZES, MAX_CLASSES

    state, meta = load_weights(weights)
    config = meta.get("config", {})
    if not isinstance(config, dict):
        raise ValueError(f"cannot load classifier {weights}: its config is not a JSON object")
    crop, k = config.get("crop_size", 128), config.get("num_classes", 5)
    rate = config.get("drop_rate", 0.2)
    if (type(crop) is not int or not CROP_SIZES[0] <= crop <= CROP_SIZES[1]
            or type(k) is not int or not 2 <= k <= MAX_CLASSES
            or not isinstance(rate, (int, float)) or not 0 <= rate < 1):
        raise ValueError(f"cannot load classifier {weights}: crop_size must be "
                         f"{CROP_SIZES[0]}..{CROP_SIZES[1]}, num_classes 2..{MAX_CLASSES} "
                         f"and drop_rate in [0, 1) (got {crop!r}, {k!r}, {rate!r})")
    try:
        module = create_classifier(meta.get("architecture", ""), **config)
        module.load_state_dict(state)
    except (TypeError, ValueError, RuntimeError, KeyError) as exc:
        raise ValueError(f"cannot load classifier {weights}: "
                         f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
                         ) from None
    from ..models.fuse_act import prepare_for_prediction

    module = prepare_for_prediction(module.to(device).eval())  # norms folded, ReLU6 fused
    module = module.to(memory_format=torch.channels_last)
    module.precision = resolve_precision("auto", device, module.architecture)
    module.requires_grad_(False)
    return module


def cell_mean_probabilities(cells: np.ndarray, class_probs: np.ndarray, ids) -> np.ndarray:
    """(len(ids), K): a segmentation head's class probabilities averaged over each cell."""
    flat = cells.ravel()
    n = int(flat.max()) + 1 if flat.size else 1
    # only the cells' pixels (a few % of a field): the same sums per cell, without five
    # passes over every background pixel of a 2048x1536 field
    inside = np.flatnonzero(flat)
    flat = flat[inside]
    area = np.maximum(np.bincount(flat, minlength=n), 1)
    sums = np.stack([np.bincount(flat, weights=c.ravel()[inside], minlength=n)
                     for c in class_probs], 1)
    ids = np.asarray(ids, np.int64)
    return sums[ids] / area[ids, None]


def fuse(classifier_probs: np.ndarray, head_probs: np.ndarray, head_weight: float) -> np.ndarray:
    """Weighted geometric mean of the two readings, renormalised (weight 0: classifier)."""
    if head_weight <= 0:
        return classifier_probs
    logp = ((1 - head_weight) * np.log(np.clip(classifier_probs, 1e-6, 1))
            + head_weight * np.log(np.clip(head_probs, 1e-6, 1)))
    p = np.exp(logp - logp.max(1, keepdims=True))
    return p / p.sum(1, keepdims=True)


def card_head_weight(classifier: LoadedClassifier, segmenter: str) -> float:
    """The weight of ``segmenter``'s own head chosen for this classifier (its card's
    ``head_weights``; 0 where none was chosen: the classifier alone)."""
    return float((classifier.entry.card.get("head_weights") or {}).get(segmenter, 0))


def classify_cells(image, nucleus, cytoplasm, classifier: LoadedClassifier, *,
                   scale: float = 1.0, threshold: float = DEFAULT_THRESHOLD,
                   ids=None, head_probs=None, head_weight: float | None = None,
                   segmenter: str = "") -> CellClasses:
    """Class code, confidence and probabilities of every cell (or of ``ids``).

    ``scale``: field -> native scale (native / actual cell diameter), as in segmentation.
    ``threshold`` in [0, 1]: below it the cell is unidentified (255).  ``head_probs``
    (K, H, W): the segmentation network's own class probabilities, combined with the
    classifier's with ``head_weight`` (default: the card's ``head_weights[segmenter]``,
    chosen on the inner selection split for that segmentation model; 0, the classifier
    alone, for any other model: a weak head must not dilute it).
    """
    from ..core.cell_crops import cell_crops

    try:
        threshold = float(threshold)
    except (TypeError, ValueError):
        raise ValueError(f"the confidence threshold must be a number in [0, 1], got "
                         f"{threshold!r}") from None
    if not 0.0 <= threshold <= 1.0:
        raise ValueError(f"the confidence threshold must be in [0, 1], got {threshold!r}")
    crops = cell_crops(image, nucleus, cytoplasm, scale=scale, size=classifier.crop_size,
                       ids=ids)
    probs = classifier(crops.crops)
    if head_weight is None:
        head_weight = card_head_weight(classifier, segmenter)
    if not (isinstance(head_weight, (int, float)) and 0 <= head_weight <= 1):
        raise ValueError(f"head_weight must be a number in [0, 1], got {head_weight!r}")
    if head_probs is not None and head_weight > 0 and len(crops.ids):
        head_probs = np.asarray(head_probs, np.float32)
        if head_probs.shape[0] != probs.shape[1] or head_probs.shape[1:] != nucleus.shape:
            raise ValueError(f"head probabilities {head_probs.shape} do not fit "
                             f"{probs.shape[1]} classes on {nucleus.shape}")
        cells = np.where(nucleus > 0, nucleus, cytoplasm).astype(np.int64)
        probs = fuse(probs, cell_mean_probabilities(cells, head_probs, crops.ids), head_weight)
    codes = np.asarray(classifier.codes)
    out = CellClasses(classifier=classifier.entry.name)
    for cid, p in zip(crops.ids.tolist(), probs):
        best = int(p.argmax())
        conf = float(p[best])
        out.codes[cid] = int(codes[best]) if conf >= threshold else UNIDENTIFIED
        out.confidence[cid] = conf
        out.probabilities[cid] = p
    for cid, flags in crops.flags.items():
        out.notes[cid] = ",".join(flags)
    for cid, reason in crops.skipped.items():
        out.codes[cid], out.confidence[cid], out.notes[cid] = UNIDENTIFIED, float("nan"), reason
    return out


def classifier_mapping(classifier: LoadedClassifier, scheme):
    """:class:`~napari_wbcseg.schemes.ClassMapping` of the classifier's classes onto
    ``scheme`` (a project's :class:`~napari_wbcseg.schemes.ClassScheme`): ``identical``
    when the tables agree; ``message()`` names what has no class in the project."""
    from ..schemes import map_classes

    return map_classes(classifier.entry.card["classes"], scheme,
                       source_label=f"classifier {classifier.entry.name}")


def cell_type_image(nucleus, cytoplasm, result: CellClasses, mapping=None) -> np.ndarray:
    """uint8 cell-type layer of ``result``: each cell's code on the whole cell, 0 off the
    cells, 255 on cells ``result`` lacks; ``mapping`` (:func:`classifier_mapping`)
    converts the classifier's codes onto the project's table first."""
    cells = np.where(np.asarray(nucleus) > 0, nucleus, cytoplasm).astype(np.int64)
    lut = np.full(int(cells.max()) + 1 if cells.size else 1, UNIDENTIFIED, np.uint8)
    lut[0] = 0
    for cid, code in result.codes.items():
        if 0 < cid < lut.size:
            lut[cid] = code
    if mapping is not None and not mapping.identical:
        lut = mapping.apply(lut)
    return lut[cells]


def clear_cache() -> None:
    _module_cached.cache_clear()
