"""Which model and classifier a batch uses, their checksum, and whether each worker has them.

The *model checksum* of a batch is the sha256 over the segmentation model's weights and
card, the classifier's (when one is used) and the settings that change a field's numbers;
a rerun redoes every field when it changes.  (The device is not in it: CPU and GPU runs
of one model are taken as the same result.)
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

from .manifest import sha256_file

# SegmentParams fields that change the labels or tables of a field
NUMBER_FIELDS = ("preprocess", "cell_diameter", "pixel_size_um", "tile", "overlap",
                 "batch_size", "class_threshold")


def classifier_entry(params, model_entry):
    """The classifier entry ``params.classifier`` resolves to for this model (as
    ``segment_cell_types.pick_classifier`` picks it), or None for the network's head."""
    from ..io.classifier_store import classifier_entries, find_classifier, same_classes
    from ..schema import UNIDENTIFIED

    choice = params.classifier
    if choice in (None, "none"):
        return None
    if choice != "auto":
        return find_classifier(choice)
    from ..inference.segment_cell_types import default_classes

    card = model_entry.card
    model_table = card.get("classes") or default_classes(int(card.get("num_classes", 5)))
    wanted = [model_table]
    if params.classes:
        rows = [{"code": c.code, "name": c.name} for c in params.classes
                if c.code != UNIDENTIFIED]
        if not same_classes(rows, model_table):
            wanted.insert(0, rows)
    for classes in wanted:
        for entry in classifier_entries():
            if same_classes(entry.card.get("classes"), classes):
                return entry
    return None


def files_of(entry) -> list[Path]:
    files = [Path(entry.weights)]
    card = Path(entry.weights).with_suffix(".json")
    return files + ([card] if card.is_file() else [])


def model_checksum(params) -> tuple[str, dict]:
    """``(checksum, description)`` of the model, classifier and number-changing settings.
    ``ModelNotFoundError`` for a model or classifier that is not here."""
    from ..io.model_store import find_model

    model = find_model(params.model)
    clf = classifier_entry(params, model)
    h = hashlib.sha256()
    files = files_of(model) + (files_of(clf) if clf is not None else [])
    for f in files:
        h.update(sha256_file(f).encode())
    settings = {k: getattr(params, k) for k in NUMBER_FIELDS}
    settings["classifier"] = params.classifier
    settings["classes"] = [(c.code, c.name) for c in params.classes or ()]
    if params.tta:  # only when on, so that manifests written before it existed stay current
        settings["tta"] = True
    if not params.coarse_pass:  # likewise: only when off
        settings["coarse_pass"] = False
    h.update(json.dumps(settings, sort_keys=True, default=str).encode())
    return h.hexdigest(), {"model": model.name, "model_file": str(model.weights),
                           "model_sha256": sha256_file(model.weights),
                           "classifier": clf.name if clf is not None else "network head",
                           "classifier_sha256": sha256_file(clf.weights) if clf else "",
                           "settings": settings}


def check_model_here(model, classifier, model_sha256: str, classifier_sha256: str) -> str:
    """Run on each worker (``client.run``): "" when the model and classifier are found
    there with the client's checksums, else the reason in a few words."""
    from ..io.classifier_store import find_classifier
    from ..io.model_store import find_model

    try:
        entry = find_model(model)
    except KeyError as exc:
        return str(exc)
    if sha256_file(entry.weights) != model_sha256:
        return f"its model {entry.name} ({entry.weights}) differs from the client's"
    if classifier and classifier_sha256:
        try:
            clf = find_classifier(classifier)
        except KeyError as exc:
            return str(exc)
        if sha256_file(clf.weights) != classifier_sha256:
            return f"its classifier {clf.name} differs from the client's"
    return ""
