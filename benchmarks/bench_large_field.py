"""Block-by-block segmentation with the real network vs the whole image in memory.

A synthetic smear (default 1800 x 1600, 40 white cells, some touching) is segmented
once whole (``segment_steps``) and once by :func:`segment_large_field` with small blocks
(default 1024, so many cells lie on block lines), both at one fixed cell diameter (the
estimate on the whole field).  Prints cells found by each, the IoU of every whole-image
cell with its best block-path match (min / median / share > 0.95), cells only one path
found, the bookkeeping of the stitching (duplicates removed, cells rescued), and times.

    .venv/bin/python benchmarks/bench_large_field.py [--shape 1800 1600] [--block 1024]

The tests (tests/batch/test_large_field*.py) use a pixel-local stand-in for the network,
where the two paths agree exactly; this script measures what the real network's context
at block edges changes.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np


def best_iou(ref: np.ndarray, got: np.ndarray) -> list[float]:
    from scipy import ndimage as ndi

    out = []
    for i, slc in enumerate(ndi.find_objects(ref), 1):
        if slc is None:
            continue
        a = ref[slc] == i
        ids, n = np.unique(got[slc][a], return_counts=True)
        keep = ids > 0
        if not keep.any():
            out.append(0.0)
            continue
        j, inter = ids[keep][np.argmax(n[keep])], n[keep].max()
        out.append(float(inter / (a.sum() + (got == j).sum() - inter)))
    return out


def main() -> None:
    import dask.array as da
    import tifffile

    from napari_wbcseg.batching.large_field import LazyField, segment_large_field
    from napari_wbcseg.core.batch import run_to_end
    from napari_wbcseg.core.scale import estimate_cell_diameter
    from napari_wbcseg.core.synthetic import synthetic_smear
    from napari_wbcseg.inference.segment import SegmentParams, segment_steps

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shape", type=int, nargs=2, default=(1800, 1600))
    ap.add_argument("--block", type=int, default=1024)
    ap.add_argument("--cells", type=int, default=40)
    ap.add_argument("--model", default=None)
    args = ap.parse_args()
    smear = synthetic_smear(tuple(args.shape), n_wbc=args.cells, seed=7, touching=True)
    d = estimate_cell_diameter(smear.image)
    params = SegmentParams(model=args.model, device="cpu", cell_diameter=d)
    t = time.perf_counter()
    whole = run_to_end(segment_steps(smear.image, params))
    whole_s = time.perf_counter() - t
    field = LazyField(Path("synthetic.tif"), da.from_array(smear.image, chunks=(512, 512, 3)),
                      "memory", [])
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        res = segment_large_field(field, params, tmp, "f", block=args.block)
        tiled_s = time.perf_counter() - t
        nuc = tifffile.imread(Path(tmp) / "f_nucleus.tif")
        cyto = tifffile.imread(Path(tmp) / "f_cytoplasm.tif")
    got = np.where(nuc > 0, nuc, cyto)
    ref = np.where(whole.nucleus > 0, whole.nucleus, whole.cytoplasm)
    fwd, back = np.array(best_iou(ref, got)), np.array(best_iou(got, ref))
    print(f"field {args.shape[1]}x{args.shape[0]}, cell diameter {d:.1f} px, block {args.block}, "
          f"margin {res.margin} px, {res.n_blocks} blocks, model {res.model}")
    print(f"cells: whole image {len(whole.table)}, blocks {len(res.table)} "
          f"(duplicates removed {res.timings['duplicates']}, rescued {res.timings['rescued']})")
    print(f"IoU whole->blocks: min {fwd.min():.3f}, median {np.median(fwd):.3f}, "
          f"> 0.95: {(fwd > 0.95).sum()}/{fwd.size}; without a match (IoU < 0.5): "
          f"{(fwd < 0.5).sum()} whole-image, {(back < 0.5).sum()} block cells")
    # where the cells below 0.95 lie: near a block line, or anywhere (the network's own tiles)
    ids = [i for i in range(1, int(ref.max()) + 1) if (ref == i).any()]
    line = [min(min(abs(c - k) for k in range(args.block, n, args.block)) if n > args.block
                else n for c, n in ((whole.table.loc[i, "centroid_y"], args.shape[0]),
                                    (whole.table.loc[i, "centroid_x"], args.shape[1])))
            for i in ids]
    low = [(round(v, 3), round(d_)) for v, d_ in zip(fwd, line) if v <= 0.95]
    print(f"cells <= 0.95 (IoU, px from the nearest block line): {low}")
    print(f"time: whole {whole_s:.1f} s, blocks {tiled_s:.1f} s; messages {res.messages}")


if __name__ == "__main__":
    main()
