"""The cell-type stage of a segmentation: which per-cell classifier serves, its codes
painted on the cells, and the codes mapped onto a project's class table.

Used by :mod:`.segment` (no Qt; torch only inside the classifier).
"""
from __future__ import annotations

import numpy as np

from ..schema import UNIDENTIFIED


def model_classes(net) -> list:
    """The network head's class table (its card's, else the first K blood classes)."""
    return net.card.get("classes") or default_classes(net.num_classes)


def pick_classifier(choice, net, device, messages, table=None):
    """The LoadedClassifier for ``choice`` ("auto" / "none" / name / path), or None.
    "auto": the classifier for ``table`` (a project's), else the one for the model's."""
    from .classify import load_classifier

    if choice in (None, "none"):
        return None
    if choice == "auto":
        from ..io.classifier_store import classifier_entries, same_classes

        wanted = [model_classes(net)]
        if table:
            rows = [{"code": c.code, "name": c.name} for c in table
                    if c.code != UNIDENTIFIED]
            if not same_classes(rows, wanted[0]):
                wanted.insert(0, rows)
        for classes in wanted:
            for entry in classifier_entries():  # newest user classifier first, then bundled
                if same_classes(entry.card.get("classes"), classes):
                    try:
                        return load_classifier(entry, device)
                    except ValueError as exc:  # a broken one must not stop segmentation
                        messages.append(f"{exc}; trying the next classifier")
        return None
    return load_classifier(choice, device)


def in_table(inst, table, classifier, net, messages):
    """``inst`` with its codes (the classifier's table, else the network head's) mapped onto
    ``table`` by name: what has no class there becomes unidentified; the mapping's one line
    goes into ``messages`` unless the tables agree."""
    from dataclasses import replace

    from ..schemes import map_classes, scheme_from_classes

    if classifier is not None:
        source, label = classifier.entry.card["classes"], f"classifier {classifier.entry.name}"
    else:
        source, label = model_classes(net), f"model {net.entry.name}"
    mapping = map_classes(source, scheme_from_classes(table), source_label=label)
    if mapping.identical:
        return inst
    messages.append(mapping.message())
    lut = mapping.apply(np.arange(UNIDENTIFIED + 1))
    return replace(inst, cell_type=mapping.apply(inst.cell_type),
                   classes={cid: int(lut[code]) for cid, code in inst.classes.items()})


def default_classes(k):
    """The first ``k`` blood classes (a card without a table: head index i is code i + 1)."""
    from ..schema import DEFAULT_CLASSES

    return [{"code": c.code, "name": c.name} for c in DEFAULT_CLASSES
            if c.code != UNIDENTIFIED][:k]


def classified(inst, rgb, classifier, factor, threshold, messages, head_probs=None,
               segmenter=""):
    """``inst`` with cell types and confidences from the per-cell classifier (combined with
    the network's head as the classifier's card says)."""
    from dataclasses import replace

    from .classify import classify_cells

    result = classify_cells(rgb, inst.nucleus, inst.cytoplasm, classifier, scale=factor,
                            threshold=threshold, head_probs=head_probs, segmenter=segmenter)
    cells = np.where(inst.nucleus > 0, inst.nucleus, inst.cytoplasm)
    lut = np.zeros(int(cells.max()) + 1, np.uint8)
    for cid, code in result.codes.items():
        lut[cid] = code
    border = sum("border" in n for n in result.notes.values())
    small = sum(n == "too_small" for n in result.notes.values())
    if border:
        messages.append(f"{border} cell(s) cut by the image border: classified from the part "
                        "inside the image")
    if small:
        messages.append(f"{small} object(s) too small to be a white cell: left unidentified")
    return replace(inst, cell_type=lut[cells], classes=dict(result.codes),
                   confidence=dict(result.confidence))
