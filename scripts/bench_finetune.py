"""Proof that learning from corrections works (a benchmark, not a test).

    .venv/bin/python scripts/bench_finetune.py               # --pick wrong, ~3 x 40 s on 2 CPU cores
    .venv/bin/python scripts/bench_finetune.py --quick        # seconds: the mechanics only

Dataset 1 of segmentation_WBC, group-aware split (``split_by_group``, 20 %, seed 0: the
split the bundled models were validated on, so none of these images was trained on).
Ten held-out images that the bundled model gets wrong play the corrected images
(``--pick``: ``worst`` = the 10 lowest whole-cell Dice; ``wrong`` = 10 drawn at random
among the images with a whole-cell, nucleus or cytoplasm Dice below 0.90; ``random`` =
any 10, a control).  Their ground truth is handed, as the three schema label arrays of a
reviewed image, to ``training.engine.session.run`` (the training widget's code path, with the
widget's default settings) under a 2-minute time limit.  Whole-cell / nucleus /
cytoplasm Dice are measured on the *other* held-out images (no group shared with the
corrected ones) before and after, and on the corrected images themselves.  Each repeat
draws its own images (``wrong``/``random``) and training seed; the summary is the mean
and standard deviation of the changes.  Fine-tuned models go to a temporary folder,
never the user's.
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
REPORTED = METRICS + ("class_accuracy",)  # cell type: one labelled cell per image
WRONG_BELOW = 0.90  # --pick wrong: an image with any Dice below this has a visible error


def per_image_scores(predict, samples, multiple):
    """``(whole-cell, nucleus, cytoplasm)`` Dice per sample (1.0 where a part is absent)."""
    from napari_wbcseg.training.evaluation.evaluate import predict_at_own_resolution, score_sample

    out = []
    for s in samples:
        sc = score_sample(predict_at_own_resolution(predict, s, multiple), s.semantic,
                          s.cell_class)
        out.append(tuple(sc.get(m, 1.0) for m in METRICS))
    return out


def order_for_correction(scores, samples, pick: str, seed: int):
    """The held-out samples in the order they are taken as corrected images.

    worst: lowest whole-cell Dice first.  wrong: images the model gets visibly wrong
    (whole-cell, nucleus or cytoplasm Dice below ``WRONG_BELOW``) in random order.
    random: every image in random order (a control)."""
    import numpy as np

    by_cell = sorted(zip(scores, samples), key=lambda pair: pair[0][0])
    if pick == "worst":
        return by_cell
    pool = [(sc, s) for sc, s in by_cell if pick == "random" or min(sc) < WRONG_BELOW]
    return [pool[i] for i in np.random.default_rng(seed).permutation(len(pool))]


def as_layer_set(sample):
    """A reviewed 'viewer image' from a public sample: its ground truth as schema arrays."""
    import numpy as np

    from napari_wbcseg.schema import layers_from_semantic
    from napari_wbcseg.training.data.sample import IGNORE
    from napari_wbcseg.training.engine.session import LayerSet

    unknown = sample.semantic == IGNORE
    sem = np.where(unknown | (sample.semantic > 2), 0, sample.semantic)
    nucleus, cytoplasm, cell_type = layers_from_semantic(sem, int(sample.image_class) or 255)
    return LayerSet(sample.name.split("/")[-1], sample.image, nucleus, cytoplasm, cell_type,
                    reviewed=True, ignore=unknown if unknown.any() else None)


def pick_groups(ordered, samples, n):
    """The first ``n`` samples of ``ordered``, whole groups at a time; the other groups."""
    picked, groups = [], set()
    for _, s in ordered:
        if len(picked) >= n:
            break
        if s.group not in groups:
            groups.add(s.group)
            picked += [t for t in samples if t.group == s.group]
    return picked, [s for s in samples if s.group not in groups]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=str(REPO.parent / "shared" / "data"))
    p.add_argument("--model", default=None,
                   help="bundled or user model to start from (default: the default model)")
    p.add_argument("--corrections", type=int, default=10, help="images to correct (10)")
    p.add_argument("--minutes", type=float, default=2.0, help="training time limit (2)")
    p.add_argument("--quick", action="store_true",
                   help="seconds: 2 corrections, 8 held-out images, 2 batches of 64 px")
    p.add_argument("--json", default=None, help="also write the numbers here")
    p.add_argument("--lr", type=float, default=None, help="learning rate (widget default)")
    p.add_argument("--epochs", type=int, default=None, help="epochs (widget default)")
    p.add_argument("--steps", type=int, default=None, help="batches per epoch (widget default)")
    p.add_argument("--seed", type=int, default=0,
                   help="training seed of the first repeat (batches, augmentation)")
    p.add_argument("--repeats", type=int, default=3,
                   help="fine-tunes with seeds seed..seed+N-1 (and pick seeds likewise) (3)")
    p.add_argument("--pick", choices=("worst", "wrong", "random"), default="wrong",
                   help="which held-out images play the corrected ones: worst (lowest "
                        "whole-cell Dice), wrong (random among those with a Dice below "
                        f"{WRONG_BELOW}) or random (a control)")
    p.add_argument("--pick-seed", type=int, default=0,
                   help="order of --pick wrong/random in the first repeat")
    p.add_argument("--val-fraction", type=float, default=None,
                   help="validation fraction of the corrected images (widget default)")
    p.add_argument("--update-norm", action="store_true",
                   help="let BatchNorm statistics follow the corrected images")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-finetune-") as models:
        os.environ["NAPARI_WBCSEG_MODELS"] = models  # the tuned model and checkpoint go here
        return bench(args)


def bench(args) -> int:
    t_start = time.perf_counter()

    import numpy as np

    from napari_wbcseg.io.model_store import DEFAULT_MODEL, find_model
    from napari_wbcseg.models.weights import build_from_file
    from napari_wbcseg.training.engine import session
    from napari_wbcseg.training.data.datasets import load_segmentation_wbc, split_by_group

    samples = load_segmentation_wbc(args.data, 1)
    _, held = split_by_group(samples, 0.2, seed=0)
    if args.quick:
        held = held[:8]
    model_name = args.model or DEFAULT_MODEL
    entry = find_model(model_name)
    base = build_from_file(entry.weights)
    predict = session.predictor(base)
    scores = per_image_scores(predict, held, base.size_multiple)
    print(f"Dataset 1: {len(samples)} images, {len(held)} held out; start: {model_name}; "
          f"corrected images: {args.pick}; {args.repeats} repeat(s)", flush=True)
    runs = []
    for r in range(args.repeats):
        run = fine_tune_once(args, r, held, scores, entry, model_name, base, predict)
        if run is None:
            return 1
        runs.append(run)
    changes = {label: {m: [run["results"][label]["after"].get(m, np.nan) -
                           run["results"][label]["before"].get(m, np.nan) for run in runs]
                       for m in REPORTED} for label in runs[0]["results"]}
    print(f"\nchange in Dice, mean +- sd over {len(runs)} repeat(s) "
          f"({model_name}, {args.pick}):")
    print(f"{'images':24} {'n':>5} " + " ".join(f"{m:>17}" for m in REPORTED))
    for label, ch in changes.items():
        n = "/".join(sorted({str(run["results"][label]["n"]) for run in runs}))
        print(f"{label:24} {n:>5} " + " ".join(
            f"{np.mean(v):+8.3f} +- {np.std(v):.3f}" for v in ch.values()))
    if args.json:
        Path(args.json).write_text(json.dumps(
            {"model": model_name, "pick": args.pick, "runs": runs,
             "change_mean": {k: {m: float(np.mean(v)) for m, v in ch.items()}
                             for k, ch in changes.items()},
             "change_sd": {k: {m: float(np.std(v)) for m, v in ch.items()}
                           for k, ch in changes.items()}}, indent=1) + "\n")
    print(f"\ntotal {time.perf_counter() - t_start:.0f} s")
    return 0


def fine_tune_once(args, r, held, scores, entry, model_name, base, predict):
    """Repeat ``r``: pick the corrected images, fine-tune through the session, score."""
    import numpy as np

    from napari_wbcseg.core.batch import run_to_end
    from napari_wbcseg.training.engine import session
    from napari_wbcseg.training.evaluation.evaluate import evaluate, summary
    from napari_wbcseg.training.engine.loop import EpochEvent

    ordered = order_for_correction(scores, held, args.pick, args.pick_seed + r)
    fixes, others = pick_groups(ordered, held, 2 if args.quick else args.corrections)
    fixed = {s.name for s in fixes}
    print(f"\nrepeat {r + 1}: corrected {len(fixes)} (whole-cell/nucleus/cytoplasm Dice: "
          f"{', '.join('/'.join(f'{v:.2f}' for v in sc) for sc, s in ordered if s.name in fixed)}"
          f"); evaluated on the other {len(others)}", flush=True)
    defaults = dict(epochs=1, steps_per_epoch=2, batch_size=2, crop=64, threads=1) \
        if args.quick else {}
    for key, value in (("lr", args.lr), ("epochs", args.epochs), ("steps_per_epoch", args.steps),
                       ("val_fraction", args.val_fraction)):
        if value is not None:
            defaults[key] = value
    params = session.SessionParams(f"bench-finetune-{r}", architecture=entry.architecture,
                                   base_model=model_name, seed=args.seed + r,
                                   keep_norm_statistics=not args.update_norm,
                                   train_classifier=False, **defaults)  # no install as "auto"
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
    res = outcome.result
    if res is None or not outcome.saved:
        print(f"fine-tuning did not produce a model: {outcome.messages or outcome.error}")
        return None
    tuned = session.predictor(res.model)
    rows = {}
    for label, group in (("other held-out images", others), ("the corrected images", fixes)):
        before = summary(evaluate(predict, group, base.size_multiple))
        after = summary(evaluate(tuned, group, res.model.size_multiple))
        rows[label] = {"n": len(group), "before": before, "after": after}
    print(f"  fine-tuned through training.engine.session ({outcome.batches} batches, {len(epochs)} "
          f"epoch(s), {res.stopped}, best epoch {res.best_epoch}) in {seconds:.0f} s on the "
          f"CPU; epochs {params.epochs} x {params.steps_per_epoch} batches of "
          f"{params.batch_size}, crop {params.crop}, lr {params.lr:g}, BatchNorm statistics "
          f"{'kept' if params.keep_norm_statistics else 'updated'}")
    print(f"  {'images':24} {'n':>3} {'metric':16} {'before':>7} {'after':>7} {'change':>7}")
    for label, row in rows.items():
        for m in REPORTED:
            b, a = row["before"].get(m, np.nan), row["after"].get(m, np.nan)
            print(f"  {label:24} {row['n']:>3} {m:16} {b:7.3f} {a:7.3f} {a - b:+7.3f}")
    return {"repeat": r, "seed": params.seed, "pick_seed": args.pick_seed + r,
            "corrected": [s.name for s in fixes], "evaluated": [s.name for s in others],
            "batches": outcome.batches, "seconds": round(seconds, 1), "stopped": res.stopped,
            "best_epoch": res.best_epoch, "settings": res.config, "results": rows}


if __name__ == "__main__":
    sys.exit(main())
