"""End-to-end speed and peak memory of segmenting one 2048x1536 field on this machine.

    .venv/bin/python benchmarks/bench_segment.py [--image FIELD] [--model NAME] [--repeats 5]
        [--classifier auto|none|NAME] [--tta]

Each run: read the file, preprocess as the model was trained, tiled inference,
post-processing and the per-cell table (the CLI's path without writing files).
The whole benchmark runs in a fresh process; peak memory is that process's
maximum resident set size (ru_maxrss), model and Python included.  Achieved
GFLOP/s counts the network's convolution multiply-adds (x2) over the tiles
actually computed, against the matmul ceiling of the precision the network runs in,
measured on this machine at the start (a 2048-square matmul; ENVIRONMENT.md's AMX machine,
idle, 2 threads: 196 GFLOP/s in float32, 615 in bf16).
"""
from __future__ import annotations

import argparse
import resource
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_FIELD = REPO.parent / "shared" / "data" / "BCISC" / "original-images" / "neut" / "1-1.jpg"


def matmul_ceiling_gflops(precision: str, n: int = 2048, repeats: int = 5) -> float:
    """Best GFLOP/s of an n x n matmul in ``precision`` on this machine, now."""
    import torch

    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    a @ b  # warm-up
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t0)
    return 2 * n ** 3 / best / 1e9


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--image", default=str(DEFAULT_FIELD))
    p.add_argument("--model", default=None)
    p.add_argument("--device", default="cpu")
    p.add_argument("--cell-diameter", default="auto",
                   help="pixels, 'auto' (estimate from the image) or 'native' (no resizing)")
    p.add_argument("--tile", type=int, default=512)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--classifier", default="auto", help="as segment's --classifier")
    p.add_argument("--tta", action="store_true", help="test-time mirror augmentation")
    args = p.parse_args(argv)

    import torch

    from napari_wbcseg.inference.predictor import load_model
    from napari_wbcseg.inference.segment import segment
    from napari_wbcseg.inference.tiling import tile_grid, window_side
    from napari_wbcseg.io.imread import read_image
    from napari_wbcseg.models.flops import conv_macs

    path = Path(args.image)
    if not path.is_file():
        from napari_wbcseg.core.synthetic import synthetic_smear

        print(f"{path} not found: using a synthetic 1536x2048 smear", file=sys.stderr)
        import cv2

        path = Path("/tmp/wbcseg-bench-field.png")
        smear = synthetic_smear(shape=(1536, 2048), n_wbc=8)
        cv2.imwrite(str(path), cv2.cvtColor(smear.image, cv2.COLOR_RGB2BGR))
    diameter = {"native": None}.get(args.cell_diameter, args.cell_diameter)
    if diameter not in (None, "auto"):
        diameter = float(diameter)

    def run():
        t = time.perf_counter()
        image = read_image(path)
        result = segment(image, model=args.model, device=args.device, cell_diameter=diameter,
                         tile=args.tile, classifier=args.classifier, tta=args.tta)
        return time.perf_counter() - t, result

    warm_s, result = run()  # includes loading the model once (cached afterwards)
    times, results = [], []
    for _ in range(args.repeats):
        t, r = run()
        times.append(t)
        results.append(r)
    r = results[len(results) // 2]
    net = load_model(args.model, args.device)
    work_hw = r.timings.get("work_shape", r.nucleus.shape)
    side = window_side(work_hw, args.tile, net.size_multiple)  # what segment uses
    tiles = tile_grid(work_hw, side, 64)
    tile_h = max(s.stop - s.start for s, _ in tiles)
    tile_w = max(s.stop - s.start for _, s in tiles)
    pad = net.size_multiple
    macs = conv_macs(net.module, (1, 3, -(-tile_h // pad) * pad, -(-tile_w // pad) * pad))
    gflop = 2 * macs * len(tiles) * (4 if args.tta else 1) / 1e9
    predict_s = statistics.median(x.timings["predict_s"] for x in results)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    med = statistics.median(times)
    print(f"image {path.name} {r.nucleus.shape[1]}x{r.nucleus.shape[0]}, model {r.model}, "
          f"device {r.device}, torch {torch.__version__}, {torch.get_num_threads()} threads"
          + (", test-time mirror augmentation" if args.tta else ""))
    print(f"network input {work_hw[1]}x{work_hw[0]} (cell diameter {r.timings.get('cell_diameter_px')}), "
          f"{len(tiles)} window(s) of <= {side} px (tile {args.tile}), {len(r.table)} white cells")
    print(f"end to end: median {med:.2f} s  min {min(times):.2f}  max {max(times):.2f}  "
          f"(n={len(times)}; first run with model load {warm_s:.2f} s)")
    stages = {k: statistics.median(x.timings[k] for x in results)
              for k in ("preprocess_s", "predict_s", "postprocess_s", "classify_s")
              if all(k in x.timings for x in results)}
    print("  stages (median): " + ", ".join(f"{k[:-2]} {v:.2f} s" for k, v in stages.items()))
    precision = getattr(net.module, "precision", "fp32")
    ceiling = matmul_ceiling_gflops(precision)
    print(f"network ({precision}): {gflop:.1f} GFLOP per field -> {gflop / predict_s:.1f} GFLOP/s "
          f"achieved ({100 * gflop / predict_s / ceiling:.0f}% of the ~{ceiling:.0f} GFLOP/s "
          f"{precision} matmul ceiling measured here)")
    print(f"peak memory (max RSS of this process): {peak_mb:.0f} MB")
    ok = med <= 1.0 and peak_mb <= 1536
    print(f"VERDICT: {'PASS' if ok else 'FAIL'} - targets median <= 1 s, peak <= 1536 MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
