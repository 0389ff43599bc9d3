"""The coarse pass (``SegmentParams.coarse_pass``) against every window, side by side.

    .venv/bin/python benchmarks/bench_coarse_pass.py [--smears 8] [--real 40] [--sizes 2]
        [--threads 1]

Three sets, each segmented twice by ``segment`` (coarse pass on and off, in alternating
order, the model loaded once):

* synthetic 2048x1536 smears (seeds 100 on: no test or other benchmark draws them), whose
  cells the model sees at ~80 px, so the image needs 20-35 windows of 512 px.  Scored
  against the generator's masks: white cells found (IoU >= 0.5 with a true cell), missed,
  false ones, mean IoU of the found ones, and the seconds of each path;
* real images of the inner *selection* split of the default model's card (BCISC full
  fields and sub-images, segmentation_WBC, at the model's scale), segmented with 256 px
  windows so that they need several (at 512 they are one window and the coarse pass never
  runs).  Scored as the evaluators do, per image: whole-cell Dice against the expert mask.

* ``--sizes N``: synthetic smears of 400x400 to 1200x1600 px with 2 to 24 white cells, N
  seeds each, segmented at the model's scale with 256 px windows (4 to 63 windows): where the
  pass is skipped, where its boxes run and where it falls back to every window, and what each
  costs against every window.

Both paths also give cell types; the number of found cells whose type differs is printed.
Without ``../shared/data`` only the smears run.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"


def _instances(nucleus: np.ndarray, cytoplasm: np.ndarray) -> np.ndarray:
    return np.where(nucleus > 0, nucleus, cytoplasm)


def match(pred: np.ndarray, truth: np.ndarray) -> tuple[list[tuple[int, int, float]], int, int]:
    """One-to-one matches ``[(pred id, true id, IoU)]`` at IoU >= 0.5, missed, false."""
    pairs = []
    t_ids = [t for t in np.unique(truth) if t]
    p_ids = [p for p in np.unique(pred) if p]
    for t in t_ids:
        tm = truth == t
        cand, counts = np.unique(pred[tm], return_counts=True)
        for p, inter in zip(cand, counts):
            if p:
                iou = inter / float(np.count_nonzero(tm | (pred == p)))
                if iou >= 0.5:
                    pairs.append((int(p), int(t), iou))
    return pairs, len(t_ids) - len(pairs), len(p_ids) - len(pairs)


def dice(cell: np.ndarray, semantic: np.ndarray) -> float:
    known = semantic != 255
    truth = (semantic >= 1) & (semantic <= 3) & known
    pred = cell & known
    denom = truth.sum() + pred.sum()
    return 1.0 if denom == 0 else 2.0 * (truth & pred).sum() / denom


def _run(image, params, on: bool):
    from dataclasses import replace

    from napari_wbcseg.inference.segment import segment_steps
    from napari_wbcseg.core.batch import run_to_end

    t0 = time.perf_counter()
    result = run_to_end(segment_steps(image, replace(params, coarse_pass=on)))
    return result, time.perf_counter() - t0


def _pair(image, params, k: int):
    """Both paths, in alternating order: ``{on: (result, seconds)}``."""
    out = {}
    for on in ((True, False) if k % 2 else (False, True)):
        out[on] = _run(image, params, on)
    return out


def _type_changes(a, b) -> int:
    ia, ib = _instances(a.nucleus, a.cytoplasm), _instances(b.nucleus, b.cytoplasm)
    pairs, _, _ = match(ia, ib)
    return sum(a.table.loc[p, "class_code"] != b.table.loc[t, "class_code"]
               for p, t, _ in pairs if p in a.table.index and t in b.table.index)


def smears(n: int) -> None:
    from napari_wbcseg.core.synthetic import synthetic_smear
    from napari_wbcseg.inference.segment import SegmentParams

    params = SegmentParams(classifier="none")
    rows = {True: [], False: []}
    changed = 0
    for k, seed in enumerate(range(100, 100 + n)):
        smear = synthetic_smear(shape=(1536, 2048), n_wbc=8, seed=seed)
        truth = _instances(smear.nucleus, smear.cytoplasm)
        both = _pair(smear.image, params, k)
        for on, (res, sec) in both.items():
            pairs, missed, false = match(_instances(res.nucleus, res.cytoplasm), truth)
            rows[on].append((sec, len(pairs), missed, false, [iou for *_, iou in pairs]))
        changed += _type_changes(both[True][0], both[False][0])
    print(f"\nsynthetic 2048x1536 smears, seeds 100-{99 + n}, classifier none")
    print("| path | seconds (sum) | x every window | found | missed | false | mean IoU |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    base = sum(r[0] for r in rows[False])
    for on, label in ((False, "every window"), (True, "coarse pass")):
        r = rows[on]
        sec = sum(x[0] for x in r)
        ious = [i for x in r for i in x[4]]
        print(f"| {label} | {sec:.1f} | {base / sec:.2f} | {sum(x[1] for x in r)} | "
              f"{sum(x[2] for x in r)} | {sum(x[3] for x in r)} | {statistics.mean(ious):.4f} |")
    print(f"cells found by both whose type differs: {changed}")


def real(n: int) -> None:
    from napari_wbcseg.inference.predictor import load_model
    from napari_wbcseg.inference.segment import SegmentParams
    from napari_wbcseg.training.data.datasets import load_all
    from napari_wbcseg.training.evaluation.protocol import SplitSpec, three_way_split

    card = load_model(None, "cpu").card
    samples = load_all(DATA, fields=True)
    _, selection, _ = three_way_split(samples, SplitSpec.from_card(card))
    pick = [selection[round(i * len(selection) / n)] for i in range(min(n, len(selection)))]
    params = SegmentParams(cell_diameter=None, tile=256, classifier="none")
    scores = {True: [], False: []}
    seconds = {True: 0.0, False: 0.0}
    changed = cells = ran = 0
    for k, sample in enumerate(pick):
        both = _pair(sample.image, params, k)
        for on, (res, sec) in both.items():
            cell = (res.nucleus > 0) | (res.cytoplasm > 0)
            scores[on].append((sample.source, dice(cell, sample.semantic)))
            seconds[on] += sec
        ran += both[True][0].timings.get("coarse_pass_boxes") is not None
        changed += _type_changes(both[True][0], both[False][0])
        cells += int(both[False][0].table.shape[0])
    print(f"\nreal images of the selection split ({len(pick)}), model scale, 256 px windows; "
          f"the coarse pass ran on {ran}")
    print("| source | images | whole-cell Dice, every window | coarse pass |")
    print("|---|---:|---:|---:|")
    for source in sorted({s for s, _ in scores[False]}):
        a = [d for s, d in scores[False] if s == source]
        b = [d for s, d in scores[True] if s == source]
        print(f"| {source} | {len(a)} | {100 * statistics.mean(a):.2f} | "
              f"{100 * statistics.mean(b):.2f} |")
    print(f"seconds: every window {seconds[False]:.1f}, coarse pass {seconds[True]:.1f} "
          f"({seconds[False] / seconds[True]:.2f}x); of {cells} cells, {changed} change type")


SIZES = ((400, 400, 2), (640, 800, 3), (640, 800, 12), (900, 1300, 6), (900, 1300, 24),
         (1200, 1600, 8))


def sizes(n: int) -> None:
    from napari_wbcseg.core.synthetic import synthetic_smear
    from napari_wbcseg.inference.segment import SegmentParams

    params = SegmentParams(cell_diameter=None, tile=256, classifier="none")
    print(f"\nsynthetic smears at the model's scale, 256 px windows, {n} seeds each (200 on)")
    print("| size | white cells | windows | coarse pass | seconds, every window | coarse pass | "
          "x every window | cells found (of true), every window / coarse pass |")
    print("|---|---:|---:|---|---:|---:|---:|---|")
    from napari_wbcseg.inference.sparse_windows import _grid

    k = 0
    for h, w, n_wbc in SIZES:
        sec = {True: 0.0, False: 0.0}
        found = {True: 0, False: 0}
        what, true = set(), 0
        for seed in range(200, 200 + n):
            smear = synthetic_smear(shape=(h, w), n_wbc=n_wbc, seed=seed)
            truth = _instances(smear.nucleus, smear.cytoplasm)
            true += len([t for t in np.unique(truth) if t])
            both = _pair(smear.image, params, k)
            k += 1
            for on, (res, s) in both.items():
                sec[on] += s
                found[on] += len(match(_instances(res.nucleus, res.cytoplasm), truth)[0])
            boxes = both[True][0].timings.get("coarse_pass_boxes", "skipped")
            what.add("skipped" if boxes == "skipped" else
                     "fell back" if boxes is None else "boxes")
        print(f"| {h}x{w} | {n_wbc} | {len(_grid((h, w), 256, 64, 32))} | "
              f"{', '.join(sorted(what))} | {sec[False]:.1f} | {sec[True]:.1f} | "
              f"{sec[False] / sec[True]:.2f} | {found[False]} / {found[True]} of {true} |")


def _warm_up() -> None:
    """Load the model and run it once, untimed: otherwise the first image timed pays for
    both (7x on a 400x400 smear that the coarse pass skips, so both paths are the same)."""
    from napari_wbcseg.core.synthetic import synthetic_smear
    from napari_wbcseg.inference.segment import SegmentParams

    smear = synthetic_smear(shape=(256, 256), n_wbc=1, seed=99)
    _run(smear.image, SegmentParams(cell_diameter=None, tile=256, classifier="none"), False)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--smears", type=int, default=8)
    p.add_argument("--real", type=int, default=40)
    p.add_argument("--sizes", type=int, default=0, metavar="SEEDS")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    print(f"torch threads: {args.threads}")
    _warm_up()
    if args.smears:
        smears(args.smears)
    if args.sizes:
        sizes(args.sizes)
    if args.real and DATA.is_dir():
        real(args.real)
    return 0


if __name__ == "__main__":
    sys.exit(main())
