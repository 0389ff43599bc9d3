"""Cell-type accuracy behind a segmentation model: its own head vs the per-cell classifier.

    .venv/bin/python scripts/evaluate_cell_types.py [--model wbcseg-lite0] [--classifier NAME]

Scored on the validation part of the model card's split (training.protocol), once, on
the cells the segmentation model finds (as a user gets them): a found cell counts when
one labelled class covers at least half of it.  Both readings classify the same cells:
the network's cell-type head (probabilities averaged over the found cell) and the
classifier (crops of the found cell's masks).  Prints accuracy per dataset, recall per
class and the coverage / accuracy above the default 0.5 confidence.
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
    args = p.parse_args(argv)

    from napari_wbcseg.core.postprocessing import instances_from_probabilities
    from napari_wbcseg.inference.classify import classify_cells, load_classifier
    from napari_wbcseg.inference.predictor import load_model
    from napari_wbcseg.io.classifier_store import classifier_for
    from napari_wbcseg.training.augment import resample_to_native
    from napari_wbcseg.training.cell_data import _labels_of
    from napari_wbcseg.training.datasets import load_all
    from napari_wbcseg.training.evaluate import predict_sample
    from napari_wbcseg.training.protocol import SplitSpec, three_way_split

    net = load_model(args.model, "cpu")
    spec = SplitSpec.from_card(net.card) or SplitSpec(seed=0)
    clf = load_classifier(classifier_for(net.card["classes"]) if args.classifier == "auto"
                          else args.classifier)
    samples = load_all(args.data, fields=True, synthetic=args.synthetic)
    _, _, val = three_way_split(samples, spec)
    codes = list(net.class_codes)
    rows = defaultdict(list)  # source -> (truth, head, classifier, classifier confidence)
    for s in val:
        native = resample_to_native(s)
        probs = predict_sample(lambda x: net(x * 255.0), native.image, net.size_multiple)
        inst = instances_from_probabilities(probs[:3], probs[3:], class_codes=codes)
        labels = _labels_of(inst.cells, native.cell_class, codes)
        if not labels:
            continue
        got = classify_cells(native.image, inst.nucleus, inst.cytoplasm, clf, scale=1.0,
                             threshold=0.0, ids=sorted(labels))
        for cid, truth in labels.items():
            rows[s.source].append((codes[truth], inst.classes[cid], got.codes[cid],
                                   got.confidence[cid]))
    report = {}
    allrows = [r for rs in rows.values() for r in rs]
    for source, rs in sorted(rows.items()) + [("all", allrows)]:
        t, h, c, conf = (np.array(x) for x in zip(*rs))
        sure = conf >= 0.5
        report[source] = {
            "cells": int(len(t)), "head_accuracy": float(np.mean(h == t)),
            "classifier_accuracy": float(np.mean(c == t)),
            "classifier_coverage_at_0.5": float(sure.mean()),
            "classifier_accuracy_at_0.5": float(np.mean(c[sure] == t[sure])) if sure.any()
            else float("nan")}
    t, h, c, _ = (np.array(x) for x in zip(*allrows))
    report["recall"] = {NAMES[k - 1]: {"cells": int((t == k).sum()),
                                       "head": float(np.mean(h[t == k] == k)),
                                       "classifier": float(np.mean(c[t == k] == k))}
                        for k in codes if (t == k).any()}
    report["model"], report["classifier"] = net.entry.name, clf.entry.name
    report["split"] = spec.to_card()
    print(json.dumps(report, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
