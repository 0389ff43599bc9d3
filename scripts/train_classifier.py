"""Train the bundled per-cell classifier on ../shared/data (+ synthetic smears).

    .venv/bin/python scripts/train_classifier.py [--segmenter wbcseg-lite0] [--minutes 10]

Cells are cropped from the segmenter's own masks (as at inference).  The split is the
group-aware three-way split of training.protocol (seed 0): epoch and temperature are
chosen on the inner selection part, and the validation part is scored once.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=str(REPO.parent / "shared" / "data"))
    p.add_argument("--out", default=str(REPO / "src" / "napari_wbcseg" / "weights" / "classifiers"))
    p.add_argument("--name", default="cell-classifier-lite0")
    p.add_argument("--segmenter", default=None, help="model whose masks are cropped (default: "
                   "the default model); 'truth' crops the labels' own masks")
    p.add_argument("--synthetic", type=int, default=40)
    p.add_argument("--epochs", type=int, default=12)
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--crop", type=int, default=128)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--patience", type=int, default=5)
    p.add_argument("--minutes", type=float, default=None)
    p.add_argument("--folds", type=int, default=1, help="> 1: cross-validated ensemble "
                   "(epoch and temperature chosen out of fold on the inner-train cells)")
    args = p.parse_args(argv)

    from napari_wbcseg.schema import DEFAULT_CLASSES
    from napari_wbcseg.training.engine.classifier import ClassifierConfig
    from napari_wbcseg.training.engine.classifier_run import run_classifier_training
    from napari_wbcseg.training.data.datasets import load_all
    from napari_wbcseg.training.engine.loop import BatchEvent, EpochEvent, NoticeEvent
    from napari_wbcseg.training.evaluation.protocol import SplitSpec

    t0 = time.perf_counter()
    samples = load_all(args.data, fields=True, synthetic=args.synthetic)
    spec = SplitSpec(seed=args.seed, data=(Path(args.data).resolve().name,)
                     + ((f"synthetic:{args.synthetic}",) if args.synthetic else ()))
    classes = [{"code": c.code, "name": c.name, "color": c.color}
               for c in DEFAULT_CLASSES if c.code < 255]
    config = ClassifierConfig(crop_size=args.crop, epochs=args.epochs,
                              steps_per_epoch=args.steps, batch_size=args.batch, lr=args.lr,
                              seed=args.seed, patience=args.patience)
    print(f"loaded {len(samples)} samples in {time.perf_counter() - t0:.0f} s", flush=True)
    deadline = time.monotonic() + 60 * args.minutes if args.minutes else float("inf")

    held = "out-of-fold" if args.folds > 1 else "selection"

    def log(ev):
        if isinstance(ev, NoticeEvent):
            print("note:", ev.message, flush=True)
        elif isinstance(ev, BatchEvent) and ev.step % 25 == 0:
            print(f"  epoch {ev.epoch} step {ev.step}/{ev.steps} loss {ev.loss:.3f}", flush=True)
        elif isinstance(ev, EpochEvent):
            v = ev.validation
            print(f"epoch {ev.epoch}: loss {ev.train_loss:.3f} {held} accuracy "
                  f"{v.get('accuracy', float('nan')):.3f} balanced "
                  f"{v.get('balanced_accuracy', float('nan')):.3f} "
                  f"{json.dumps({k: round(x, 3) for k, x in v.get('per_source', {}).items()})}"
                  f"{' *' if ev.improved else ''} ({ev.seconds:.0f} s)", flush=True)

    segmenter = None if args.segmenter == "truth" else (args.segmenter or "default")
    if segmenter == "default":
        from napari_wbcseg.io.model_store import DEFAULT_MODEL

        segmenter = DEFAULT_MODEL
    card, result, report = run_classifier_training(
        samples, spec, classes, config, segmenter=segmenter, out_dirs=[args.out],
        name=args.name, log=lambda m: print(m, flush=True), on_event=log,
        should_stop=lambda: time.monotonic() > deadline,
        folds=args.folds,
        notes=f"Trained by scripts/train_classifier.py (masks from {segmenter or 'truth'}"
              + (f", {args.folds}-fold cross-validated ensemble" if args.folds > 1 else "")
              + ")")
    if "selection_split" in report_data(card):
        print("selection split (scored only):", json.dumps(
            {k: v for k, v in report_data(card)["selection_split"].items() if k != "confusion"}))
    print(f"validation (selection-free): accuracy {report.get('accuracy', float('nan')):.3f}, "
          f"balanced {report.get('balanced_accuracy', float('nan')):.3f}, per source "
          f"{json.dumps(report.get('per_source', {}))}, recall {json.dumps(report.get('recall', {}))}, "
          f"calibration {json.dumps(report.get('calibration', {}))}")
    print(f"best epoch {result.best_epoch} ({result.stopped}), T={result.temperature:.2f}, "
          f"{result.seconds / 60:.1f} min -> {card}")
    return 0


def report_data(card) -> dict:
    return json.loads(Path(card).read_text())["training"]["data"] if card else {}


if __name__ == "__main__":
    raise SystemExit(main())
