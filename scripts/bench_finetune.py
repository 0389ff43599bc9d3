"""Proof that learning from corrections works (a benchmark, not a test).

    .venv/bin/python scripts/bench_finetune.py            # the real run, ~3-4 min on 2 CPU cores
    .venv/bin/python scripts/bench_finetune.py --quick    # seconds: the mechanics only

Dataset 1 of segmentation_WBC, group-aware split (``split_by_group``, 20 %, seed 0: the
split the bundled models were validated on, so none of these images was trained on).
Among the held-out images, the 10 that the bundled default model gets most wrong (lowest
whole-cell Dice) play the corrected images: their ground truth is handed, as the three
schema label arrays of a reviewed image, to ``training.session.run`` (the training
widget's code path, with the widget's default settings) under a 2-minute time limit.
Whole-cell / nucleus / cytoplasm Dice are measured on the *other* held-out images (no
group shared with the corrected ones) before and after, and on the corrected images
themselves.  The fine-tuned model is saved in a temporary folder, never in the user's.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
METRICS = ("cell_dice", "nucleus_dice", "cytoplasm_dice")


def per_image_dice(predict, samples, multiple):
    from napari_wbcseg.training.augment import resample_to_native
    from napari_wbcseg.training.evaluate import predict_sample, score_sample

    out = []
    for s in samples:
        n = resample_to_native(s)
        out.append(score_sample(predict_sample(predict, n.image, multiple), n.semantic,
                                n.cell_class).get("cell_dice", 1.0))
    return out


def as_layer_set(sample):
    """A reviewed 'viewer image' from a public sample: its ground truth as schema arrays."""
    import numpy as np

    from napari_wbcseg.schema import layers_from_semantic
    from napari_wbcseg.training.sample import IGNORE
    from napari_wbcseg.training.session import LayerSet

    unknown = sample.semantic == IGNORE
    sem = np.where(unknown | (sample.semantic > 2), 0, sample.semantic)
    nucleus, cytoplasm, cell_type = layers_from_semantic(sem, int(sample.image_class) or 255)
    return LayerSet(sample.name.split("/")[-1], sample.image, nucleus, cytoplasm, cell_type,
                    reviewed=True, ignore=unknown if unknown.any() else None)


def pick_worst(ranked, samples, n):
    """The ``n`` worst-scored samples, whole groups at a time; the rest of the groups."""
    picked, groups = [], set()
    for _, s in ranked:
        if len(picked) >= n:
            break
        if s.group not in groups:
            groups.add(s.group)
            picked += [t for t in samples if t.group == s.group]
    return picked, [s for s in samples if s.group not in groups]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=str(REPO.parent / "shared" / "data"))
    p.add_argument("--corrections", type=int, default=10, help="images to correct (10)")
    p.add_argument("--minutes", type=float, default=2.0, help="training time limit (2)")
    p.add_argument("--quick", action="store_true",
                   help="seconds: 2 corrections, 8 held-out images, 2 batches of 64 px")
    p.add_argument("--json", default=None, help="also write the numbers here")
    p.add_argument("--lr", type=float, default=None, help="learning rate (widget default)")
    p.add_argument("--epochs", type=int, default=None, help="epochs (widget default)")
    p.add_argument("--steps", type=int, default=None, help="batches per epoch (widget default)")
    p.add_argument("--update-norm", action="store_true",
                   help="let BatchNorm statistics follow the corrected images")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-finetune-") as models:
        os.environ["NAPARI_WBCSEG_MODELS"] = models  # the tuned model and checkpoint go here
        return bench(args)


def bench(args) -> int:
    t_start = time.perf_counter()

    import numpy as np

    from napari_wbcseg.core.batch import run_to_end
    from napari_wbcseg.io.model_store import DEFAULT_MODEL, find_model
    from napari_wbcseg.models.weights import build_from_file
    from napari_wbcseg.training import session
    from napari_wbcseg.training.datasets import load_segmentation_wbc, split_by_group
    from napari_wbcseg.training.evaluate import evaluate, summary
    from napari_wbcseg.training.loop import EpochEvent

    samples = load_segmentation_wbc(args.data, 1)
    _, held = split_by_group(samples, 0.2, seed=0)
    n_fix = 2 if args.quick else args.corrections
    if args.quick:
        held = held[:8]
    base = build_from_file(find_model(DEFAULT_MODEL).weights)
    predict = session.predictor(base)
    dice = per_image_dice(predict, held, base.size_multiple)
    ranked = sorted(zip(dice, held), key=lambda pair: pair[0])
    fixes, others = pick_worst(ranked, held, n_fix)
    fixed = {s.name for s in fixes}
    print(f"Dataset 1: {len(samples)} images, {len(held)} held out; corrected: {len(fixes)} "
          f"(whole-cell Dice of {DEFAULT_MODEL}: "
          f"{', '.join(f'{d:.2f}' for d, s in ranked if s.name in fixed)}); "
          f"evaluated on the other {len(others)}", flush=True)

    defaults = dict(epochs=1, steps_per_epoch=2, batch_size=2, crop=64, threads=1) \
        if args.quick else {}
    for key, value in (("lr", args.lr), ("epochs", args.epochs), ("steps_per_epoch", args.steps)):
        if value is not None:
            defaults[key] = value
    defaults["keep_norm_statistics"] = not args.update_norm
    params = session.SessionParams("bench-finetune", base_model=DEFAULT_MODEL, **defaults)
    limit = (0.5 if args.quick else args.minutes) * 60
    t0 = time.perf_counter()
    epochs = []

    def on_event(ev):
        if isinstance(ev, EpochEvent):
            epochs.append(ev)
            print(f"  epoch {ev.epoch}: loss {ev.train_loss:.3f}, validation score "
                  f"{ev.score:.3f}{' (best)' if ev.improved else ''} "
                  f"[{time.perf_counter() - t0:.0f} s]", flush=True)
        elif isinstance(ev, session.DataEvent) and ev.warning:
            print(f"  note: {ev.message}")

    outcome = run_to_end(session.run(params, [as_layer_set(s) for s in fixes],
                                     should_stop=lambda: time.perf_counter() - t0 > limit),
                         on_event)
    seconds = time.perf_counter() - t0
    r = outcome.result
    if r is None or not outcome.saved:
        print(f"fine-tuning did not produce a model: {outcome.messages or outcome.error}")
        return 1
    tuned = session.predictor(r.model)

    rows = {}
    for label, group in (("other held-out images", others), ("the corrected images", fixes)):
        before = summary(evaluate(predict, group, base.size_multiple))
        after = summary(evaluate(tuned, group, r.model.size_multiple))
        rows[label] = {"n": len(group), "before": before, "after": after}
    print(f"\nfine-tuned through training.session ({outcome.batches} batches, {len(epochs)} "
          f"epoch(s), {r.stopped}, best epoch {r.best_epoch}) in {seconds:.0f} s on the CPU; "
          f"settings: epochs {params.epochs} x {params.steps_per_epoch} batches of "
          f"{params.batch_size}, crop {params.crop}, lr {params.lr:g}, BatchNorm statistics "
          f"{'kept' if params.keep_norm_statistics else 'updated'}")
    print(f"\n{'images':24} {'n':>3} {'metric':16} {'before':>7} {'after':>7} {'change':>7}")
    for label, row in rows.items():
        for m in METRICS:
            b, a = row["before"].get(m, np.nan), row["after"].get(m, np.nan)
            print(f"{label:24} {row['n']:>3} {m:16} {b:7.3f} {a:7.3f} {a - b:+7.3f}")
    if args.json:
        Path(args.json).write_text(json.dumps(
            {"corrected": [s.name for s in fixes], "evaluated": [s.name for s in others],
             "batches": outcome.batches, "seconds": round(seconds, 1), "stopped": r.stopped,
             "settings": r.config, "results": rows}, indent=1) + "\n")
    print(f"\ntotal {time.perf_counter() - t_start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
