"""Score a model on the group-aware validation split of ../shared/data (+ synthetic smears).

    .venv/bin/python scripts/evaluate_model.py [--model NAME|FILE] [--update-card]

The split is the one the training script uses (seed 0, 20%), so these are
held-out numbers.  ``--update-card`` writes them into the model's JSON card.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=str(REPO.parent / "shared" / "data"))
    p.add_argument("--model", default=None)
    p.add_argument("--synthetic", type=int, default=60)
    p.add_argument("--update-card", action="store_true")
    args = p.parse_args(argv)


    from napari_wbcseg.inference.predictor import load_model
    from napari_wbcseg.training.data.datasets import load_all, split_by_group
    from napari_wbcseg.training.evaluation.evaluate import evaluate, summary

    net = load_model(args.model, "cpu")
    samples = load_all(args.data, fields=True, synthetic=args.synthetic)
    _, val = split_by_group(samples, 0.2, seed=0)

    report = evaluate(net, val, net.size_multiple)  # LoadedModel takes 0..255 pixel values
    print(f"{'dataset':22} {'n':>4} {'cell Dice':>9} {'nucleus':>8} {'cytoplasm':>9} {'class acc':>9}")
    for src, row in report.items():
        cells = [f"{row[k]:.3f}" if k in row else "-" for k in
                 ("cell_dice", "nucleus_dice", "cytoplasm_dice", "class_accuracy")]
        print(f"{src:22} {row['n']:>4} {cells[0]:>9} {cells[1]:>8} {cells[2]:>9} {cells[3]:>9}")
    print("summary:", json.dumps({k: round(v, 4) for k, v in summary(report).items()}))
    if args.update_card:
        card_path = net.entry.weights.with_suffix(".json")
        card = json.loads(card_path.read_text())
        card["validation"] = {"split": "group-aware 20% of ../shared/data (seed 0) + 12 synthetic "
                                       "smears; cell = P(cyto)+P(nucleus) >= 0.5",
                              "per_dataset": report, "summary": summary(report)}
        card_path.write_text(json.dumps(card, indent=2) + "\n")
        print(f"updated {card_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
