"""Cell-type accuracy behind a segmentation model: its own head vs the per-cell classifier.

    .venv/bin/python scripts/evaluate_cell_types.py [--model wbcseg-lite0] [--classifier NAME]
        [--part validation|selection] [--choose-weight] [--tta]

Scored on the cells the segmentation model finds (as a user gets them): a found cell
counts when one labelled class covers at least half of it.  Three readings classify the
same cells: the network's cell-type head (probabilities averaged over the found cell),
the classifier alone (crops of the found cell's masks), and both combined with the
weight in the classifier's card for this model (``head_weights``).  ``--part selection`` scores the
inner selection split of the card's split (for choices: ``--choose-weight`` picks the
head weight there and writes it into the classifier's card); ``--part validation``
(default) scores the validation split, once, for the report.  Prints accuracy per
dataset, recall per class, the classifier's negative log-likelihood of the true class
(calibrated; lower is better, and unlike accuracy it does not saturate) and the coverage /
accuracy above the default 0.5 confidence.
"""
from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
NAMES = ("neutrophil", "lymphocyte", "monocyte", "eosinophil", "basophil")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=str(REPO.parent / "shared" / "data"))
    p.add_argument("--model", default=None)
    p.add_argument("--classifier", default="auto")
    p.add_argument("--synthetic", type=int, default=40)
    p.add_argument("--json", default=None, help="also write the numbers here")
    p.add_argument("--part", default="validation", choices=["validation", "selection"])
    p.add_argument("--choose-weight", action="store_true",
                   help="with --part selection: pick the head weight (0, 0.25, 0.5, 0.75, 1) "
                   "and write it into the classifier's card")
    p.add_argument("--tta", action="store_true", help="the segmentation network with "
                   "test-time mirror augmentation (as segment --tta); the head weight in the "
                   "card is used as it is")
    args = p.parse_args(argv)
    if args.tta and args.choose_weight:
        p.error("--choose-weight chooses the head weight without --tta (the one the card keeps)")

    from napari_wbcseg.core.postprocessing import instances_from_probabilities
    from napari_wbcseg.inference.classify import (cell_mean_probabilities, classify_cells,
                                                  fuse, load_classifier)
    from napari_wbcseg.inference.predictor import load_model
    from napari_wbcseg.io.classifier_store import classifier_for
    from napari_wbcseg.training.data.augment import resample_to_native
    from napari_wbcseg.training.data.cell_data import _labels_of
    from napari_wbcseg.training.data.datasets import load_all
    from napari_wbcseg.training.evaluation.evaluate import predict_sample
    from napari_wbcseg.training.evaluation.protocol import SplitSpec, three_way_split

    net = load_model(args.model, "cpu", tta=args.tta)
    spec = SplitSpec.from_card(net.card) or SplitSpec(seed=0)
    clf = load_classifier(classifier_for(net.card["classes"]) if args.classifier == "auto"
                          else args.classifier)
    samples = load_all(args.data, fields=True, synthetic=args.synthetic)
    _, selection, val = three_way_split(samples, spec)
    if args.part == "selection":
        if not selection:  # an older card: its epochs were picked on validation itself
            raise SystemExit(f"{net.entry.name}'s card has no inner selection split "
                             f"({spec.note or 'inner fraction 0'}): nothing can be chosen "
                             "on it; score --part validation with the weight in place")
        val = selection
    elif args.choose_weight:
        p.error("--choose-weight needs --part selection (choices are never made on validation)")
    codes = list(net.class_codes)
    rows = defaultdict(list)  # source -> (truth, head, classifier, classifier confidence)
    for s in val:
        native = resample_to_native(s)
        probs = predict_sample(net, native.image, net.size_multiple)
        inst = instances_from_probabilities(probs[:3], probs[3:], class_codes=codes)
        labels = _labels_of(inst.cells, native.cell_class, codes)
        if not labels:
            continue
        ids = sorted(labels)
        got = classify_cells(native.image, inst.nucleus, inst.cytoplasm, clf, scale=1.0,
                             threshold=0.0, ids=ids, head_weight=0.0)
        head = cell_mean_probabilities(inst.cells.astype(np.int64), probs[3:], ids)
        for i, cid in enumerate(ids):
            rows[s.source].append((codes[labels[cid]], inst.classes[cid], got.codes[cid],
                                   got.confidence[cid], got.probabilities[cid], head[i]))
    weight = float((clf.entry.card.get("head_weights") or {}).get(net.entry.name, 0.0))
    if args.choose_weight:
        allr = [r for rs in rows.values() for r in rs]
        t = np.array([r[0] for r in allr])
        pc, ph = np.stack([r[4] for r in allr]), np.stack([r[5] for r in allr])
        scores = {w: float(np.mean(np.asarray(codes)[fuse(pc, ph, w).argmax(1)] == t))
                  for w in (0.0, 0.25, 0.5, 0.75, 1.0)}
        weight = max(scores, key=lambda w: (scores[w], -abs(w - 0.5)))
        print(f"selection accuracy by head weight: {scores}; chosen {weight}")
        _write_weight(clf.entry, net.entry.name, weight, scores)
    report = {}
    allrows = [r for rs in rows.values() for r in rs]
    for source, rs in sorted(rows.items()) + [("all", allrows)]:
        t, h, c, conf = (np.array([r[k] for r in rs]) for k in range(4))
        f = np.asarray(codes)[fuse(np.stack([r[4] for r in rs]), np.stack([r[5] for r in rs]),
                                   weight).argmax(1)]
        sure = conf >= 0.5
        col = {int(c["code"]): i for i, c in enumerate(clf.entry.card["classes"])}
        p_true = np.array([r[4][col[r[0]]] for r in rs])
        report[source] = {
            "classifier_nll": float(-np.mean(np.log(np.clip(p_true, 1e-12, 1)))),
            "cells": int(len(t)), "head_accuracy": float(np.mean(h == t)),
            "combined_accuracy": float(np.mean(f == t)),
            "classifier_accuracy": float(np.mean(c == t)),
            "classifier_coverage_at_0.5": float(sure.mean()),
            "classifier_accuracy_at_0.5": float(np.mean(c[sure] == t[sure])) if sure.any()
            else float("nan")}
    t, h, c = (np.array([r[k] for r in allrows]) for k in range(3))
    f = np.asarray(codes)[fuse(np.stack([r[4] for r in allrows]),
                               np.stack([r[5] for r in allrows]), weight).argmax(1)]
    report["recall"] = {NAMES[k - 1]: {"cells": int((t == k).sum()),
                                       "head": float(np.mean(h[t == k] == k)),
                                       "classifier": float(np.mean(c[t == k] == k)),
                                       "combined": float(np.mean(f[t == k] == k))}
                        for k in codes if (t == k).any()}
    report["head_weight"], report["part"], report["tta"] = weight, args.part, args.tta
    report["model"], report["classifier"] = net.entry.name, clf.entry.name
    report["split"] = spec.to_card()
    print(json.dumps(report, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1) + "\n")
    return 0


def _write_weight(entry, model, weight, scores) -> None:
    from napari_wbcseg.io.atomic import write_text_atomic

    card_path = entry.weights.with_suffix(".json")
    card = json.loads(card_path.read_text(encoding="utf-8"))
    card.setdefault("head_weights", {})[model] = weight
    card.setdefault("head_weight_selection", {})[model] = {
        "chosen_on": "inner selection split of the segmentation model's split",
        "accuracy_by_weight": {str(k): v for k, v in scores.items()}}
    write_text_atomic(card_path, json.dumps(card, indent=2) + "\n")


if __name__ == "__main__":
    raise SystemExit(main())
