"""Calibrate and validate :func:`napari_wbcseg.core.scale.estimate_cell_diameter`.

Usage (from the repository root)::

    PYTHONPATH=src python benchmarks/calibrate_scale.py [--data ../shared/data]
        [--synthetic-seeds 6] [--repeats 21] [--csv out.csv]

Ground truth is the median equivalent diameter of the expert white-cell masks of
each image: BCISC full fields (every distinct mask PNG of a field), BCISC
sub-images (mask component under the crop centre), segmentation_WBC Datasets 1
and 2 (``mask >= 64``, largest component) and synthetic smears at several pixel
sizes (generator labels).  The images are split in two halves by group: odd BCISC
group numbers N (fields and their crops together), odd segmentation_WBC ids (a
Dataset 1 duplicate pair goes with its smaller id), odd synthetic seeds.  The two
ratio constants are fitted on half A of the real data only (the geometric mean over
the real datasets of each dataset's median truth/raw ratio, so that no dataset
dominates), then the table reports est/true on both halves with the constants of
the module (``--use-fitted`` to report with the fitted ones instead).  The runtime
is the median over ``--repeats`` calls on a 2048x1536 BCISC field.
"""
from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from napari_wbcseg.core import scale  # noqa: E402
from napari_wbcseg.core.synthetic import synthetic_smear  # noqa: E402
from napari_wbcseg.io.imread import read_image  # noqa: E402
from napari_wbcseg.training.data.bcisc import _centre_component, _read_mask, field_masks  # noqa: E402
from napari_wbcseg.training.data.datasets import SEGWBC_DUPLICATES  # noqa: E402

REAL = ("BCISC-field", "BCISC-sub", "segWBC-2", "segWBC-1")
PIXEL_SIZES = (0.1, 0.15, 0.2, 0.25, 0.3, 0.4)


def _ed(area) -> float:
    return float(np.sqrt(4.0 * float(area) / np.pi))


def real_cases(root: Path):
    """Yield (dataset, name, group, loader, true median WBC diameter)."""
    base = root / "BCISC" / "original-images"
    for (cls, stem), paths in field_masks(root).items():
        masks = []
        for p in paths:
            m = _read_mask(p)
            if not any(np.array_equal(m, u) for u in masks):
                masks.append(m)
        yield ("BCISC-field", f"{cls}/{stem}", int(stem.split("-")[0]),
               base / cls / f"{stem}.jpg", float(np.median([_ed(m.sum()) for m in masks])))
    sub = root / "BCISC" / "sub-images"
    for p in sorted((sub / "images").glob("*.jpg")):
        cc, c = _centre_component(_read_mask(sub / "masks" / f"{p.stem}.png"))
        match = re.match(r"^[a-z]+_(\d+)-", p.stem)
        if c and match:
            yield "BCISC-sub", p.stem, int(match[1]), p, _ed((cc == c).sum())
    first = {b: a for a, b in SEGWBC_DUPLICATES}
    for k in (2, 1):
        for p in sorted((root / "segmentation_WBC" / f"Dataset {k}").glob("*.bmp")):
            m = read_image(p.with_suffix(".png"))
            m = m[..., 0] if m.ndim == 3 else m
            _, _, st, _ = cv2.connectedComponentsWithStats((m >= 64).astype(np.uint8))
            idx = int(p.stem)
            group = first.get(idx, idx) if k == 1 else idx
            yield f"segWBC-{k}", p.stem, group, p, _ed(st[1:, cv2.CC_STAT_AREA].max())


def synthetic_cases(n_seeds: int):
    for px in PIXEL_SIZES:
        for seed in range(n_seeds):
            dens = (0.3, 0.55, 0.8)[seed % 3]
            sm = synthetic_smear(pixel_size_um=px, seed=seed, rbc_density=dens, n_wbc=3)
            cell = np.maximum(sm.nucleus, sm.cytoplasm)
            truth = np.median([_ed((cell == i).sum()) for i in sm.classes])
            yield f"synthetic-{px:g}um", f"{px:g}um-s{seed}", seed, sm.image, float(truth)


def measure(cases):
    rows = []
    for ds, name, group, src, truth in cases:
        img = src if isinstance(src, np.ndarray) else read_image(src)[..., :3]
        rows.append(dict(ds=ds, name=name, half="A" if group % 2 else "B", truth=truth,
                         cues=scale.scale_cues(img)))
    return rows


def fit(rows):
    """(RBC_TO_WBC, RAY_TO_WBC) from half A of the real datasets."""
    out = []
    for key in ("rbc", "ray"):
        per_ds = []
        for ds in REAL:
            r = [row["truth"] / raw for row in rows if row["ds"] == ds and row["half"] == "A"
                 for raw in [_raw(row["cues"], key)] if raw]
            if len(r) >= 5:
                per_ds.append(np.median(np.log(r)))
        out.append(float(np.exp(np.mean(per_ds))) if per_ds else float("nan"))
    return tuple(out)


def _raw(c, key):
    if key == "rbc":
        return c.rbc_diameter
    return float(np.median(c.wbc_diameters)) if c.wbc_diameters else None


def combine(c, k_rbc, k_ray):
    return scale.diameter_from_cues(c, k_rbc, k_ray)


def table(rows, k_rbc, k_ray):
    print(f"{'dataset':16s} {'half':4s} {'n':>4s} {'value%':>6s} {'rbc%':>5s} {'ray%':>5s} "
          f"{'p10':>5s} {'median':>6s} {'p90':>5s} {'<=1.3x':>6s}  (est/true)")
    synth = sorted({r["ds"] for r in rows} - set(REAL), key=lambda d: float(d[10:-2]))
    for ds in list(REAL) + synth + ["synthetic (all)"]:
        for half in ("A", "B", "all"):
            sel = [r for r in rows if half in ("all", r["half"])
                   and (r["ds"] == ds or (ds == "synthetic (all)" and r["ds"] in synth))]
            if not sel:
                continue
            est = [combine(r["cues"], k_rbc, k_ray) for r in sel]
            ratio = np.array([e / r["truth"] for e, r in zip(est, sel) if e])
            n_rbc = sum(r["cues"].rbc_diameter is not None for r in sel)
            n_ray = sum(bool(r["cues"].wbc_diameters) for r in sel)
            q = np.percentile(ratio, [10, 50, 90]) if len(ratio) else [np.nan] * 3
            within = np.mean(np.abs(np.log(ratio)) <= np.log(1.3)) if len(ratio) else np.nan
            print(f"{ds:16s} {half:4s} {len(sel):4d} {100 * len(ratio) / len(sel):6.0f} "
                  f"{100 * n_rbc / len(sel):5.0f} {100 * n_ray / len(sel):5.0f} {q[0]:5.2f} "
                  f"{q[1]:6.2f} {q[2]:5.2f} {100 * within:5.0f}%")


def timing(root: Path, repeats: int):
    fields = sorted((root / "BCISC" / "original-images" / "neut").glob("*.jpg"))
    img = read_image(fields[0])[..., :3] if fields else synthetic_smear((1536, 2048)).image
    scale.estimate_cell_diameter(img)
    t = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        scale.estimate_cell_diameter(img)
        t.append(time.perf_counter() - t0)
    return img.shape, 1000 * float(np.median(t)), 1000 * float(np.max(t))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    ap.add_argument("--synthetic-seeds", type=int, default=6)
    ap.add_argument("--repeats", type=int, default=21)
    ap.add_argument("--use-fitted", action="store_true")
    ap.add_argument("--csv", type=Path)
    args = ap.parse_args(argv)
    cases = list(synthetic_cases(args.synthetic_seeds))
    if args.data.is_dir():
        cases = list(real_cases(args.data)) + cases
    else:
        print(f"no data at {args.data}: synthetic smears only")
    rows = measure(cases)
    k_rbc, k_ray = fit(rows)
    print(f"fitted on half A: RBC_TO_WBC = {k_rbc:.3f}, RAY_TO_WBC = {k_ray:.3f}; module: "
          f"{scale.RBC_TO_WBC}, {scale.RAY_TO_WBC}")
    if args.use_fitted and np.isfinite(k_rbc) and np.isfinite(k_ray):
        scale.RBC_TO_WBC, scale.RAY_TO_WBC = k_rbc, k_ray
    print(f"table with RBC_TO_WBC = {scale.RBC_TO_WBC}, RAY_TO_WBC = {scale.RAY_TO_WBC} "
          "(value%: a diameter was returned; rbc% / ray%: that cue was trusted)")
    table(rows, scale.RBC_TO_WBC, scale.RAY_TO_WBC)
    shape, med, worst = timing(args.data, args.repeats)
    print(f"runtime on {shape[1]}x{shape[0]}: median {med:.1f} ms, max {worst:.1f} ms "
          f"({args.repeats} calls)")
    if args.csv:
        with open(args.csv, "w") as fh:
            fh.write("dataset,name,half,truth,rbc_raw,n_rbc,ray_raw,estimate\n")
            for r in rows:
                c = r["cues"]
                e = combine(c, scale.RBC_TO_WBC, scale.RAY_TO_WBC)
                fh.write(f"{r['ds']},{r['name']},{r['half']},{r['truth']:.1f},"
                         f"{c.rbc_diameter or ''},{c.n_rbc},{_raw(c, 'ray') or ''},{e or ''}\n")


if __name__ == "__main__":
    main()
