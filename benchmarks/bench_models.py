"""Size, cost and CPU speed of every registered architecture (the table of docs/models.md).

    .venv/bin/python benchmarks/bench_models.py [--models a,b] [--no-field] [--markdown FILE]

Per architecture: parameters; GFLOPs of one 1x3x256x256 forward pass (2 x the
multiply-adds of convolutions and linear layers, counted with hooks); CPU forward
time at 1x3x256x256 (eval, inference mode, BatchNorm folded as in the product,
median of 5 after a warm-up); and the time of tiled inference (512 px tiles, 64 px
overlap, Gaussian blending, the product's path) over one 2048x1536 field at its
full resolution, with the GFLOP/s achieved against the float32 matmul ceiling of
this machine, measured in the same run (the machine differs between sessions).  Models with bundled weights are timed
with them (detections, hence Mask R-CNN's cost, depend on the weights); the others
with random weights.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
FIELD = REPO.parent / "shared" / "data" / "BCISC" / "original-images" / "neut" / "1-1.jpg"


def macs(model, shape) -> int:
    """Multiply-adds of convolutions and linear layers for one forward pass."""
    from napari_wbcseg.models.flops import conv_macs

    return conv_macs(model, shape, linear=True)


def field_image():
    if FIELD.is_file():
        from napari_wbcseg.io.imread import read_image

        return read_image(FIELD), FIELD.name
    from napari_wbcseg.core.synthetic import synthetic_smear

    return synthetic_smear(shape=(1536, 2048), n_wbc=8).image, "synthetic 2048x1536 smear"


def bench(name: str, field, weights: dict) -> dict:
    import torch

    from napari_wbcseg.core.batch import run_to_end
    from napari_wbcseg.inference.tiling import predict_tiled, tile_grid
    from napari_wbcseg.models import create_model
    from napari_wbcseg.models.weights import build_from_file

    source = weights.get(name)
    model = build_from_file(source) if source else create_model(name)
    model.eval()
    row = {"name": name, "params_m": model.num_parameters() / 1e6,
           "weights": Path(source).stem if source else "random"}
    row["gflop_256"] = 2 * macs(model, (1, 3, 256, 256)) / 1e9
    fast = model.inference_copy()
    x = torch.rand(1, 3, 256, 256)
    fast.predict(x)
    times = []
    for _ in range(5):
        t = time.perf_counter()
        fast.predict(x)
        times.append(time.perf_counter() - t)
    row["ms_256"] = 1000 * statistics.median(times)
    if field is not None:
        def predictor(batch):
            out = fast.predict(torch.from_numpy(batch / np.float32(255)))
            return torch.cat([out["semantic"], out["cell_type"]], 1).numpy()

        m = model.size_multiple
        t = time.perf_counter()
        run_to_end(predict_tiled(field, predictor, tile=512, overlap=64, pad_multiple=m))
        row["field_s"] = time.perf_counter() - t
        tiles = tile_grid(field.shape[:2], 512, 64)
        th = max(s.stop - s.start for s, _ in tiles)
        tw = max(s.stop - s.start for _, s in tiles)
        gflop = 2 * macs(model, (1, 3, -(-th // m) * m, -(-tw // m) * m)) * len(tiles) / 1e9
        row["field_gflops"] = gflop / row["field_s"]
    return row


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default=None, help="comma-separated architectures (default: all)")
    p.add_argument("--no-field", action="store_true", help="skip the 2048x1536 field")
    p.add_argument("--markdown", default=None, help="also write the table to this file")
    args = p.parse_args(argv)

    import torch

    from napari_wbcseg.io.model_store import model_entries
    from napari_wbcseg.models import list_architectures

    names = args.models.split(",") if args.models else list_architectures()
    weights = {}
    for entry in model_entries().values():
        if entry.origin == "bundled":
            weights.setdefault(entry.architecture, str(entry.weights))
    field, field_name = (None, "-") if args.no_field else field_image()
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench_segment import matmul_ceiling_gflops

    ceiling = matmul_ceiling_gflops("fp32")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; field: {field_name}; "
          f"fp32 matmul ceiling {ceiling:.0f} GFLOP/s", flush=True)
    head = ("| architecture | weights | parameters (M) | GFLOPs at 256x256 | CPU ms at 256x256 "
            f"| 2048x1536 field, tiled (s) | GFLOP/s (% of {ceiling:.0f}) |")
    lines = [head, "|" + "---|" * 7]
    print(head, flush=True)
    for name in names:
        r = bench(name, field, weights)
        fs = f"{r['field_s']:.1f}" if "field_s" in r else "-"
        gf = (f"{r['field_gflops']:.0f} ({100 * r['field_gflops'] / ceiling:.0f}%)"
              if "field_gflops" in r else "-")
        line = (f"| `{name}` | {r['weights']} | {r['params_m']:.2f} | {r['gflop_256']:.2f} | "
                f"{r['ms_256']:.0f} | {fs} | {gf} |")
        lines.append(line)
        print(line, flush=True)
    if args.markdown:
        Path(args.markdown).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
