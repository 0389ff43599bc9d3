"""The flagship's cost with a larger EfficientNet-Lite encoder, side by side in one run.

    .venv/bin/python benchmarks/bench_encoders.py [--encoders lite0,lite1,lite2] [--rounds 4]

The same light U-Net as ``wbcseg-lite0`` (decoder 128-64-48-32-16, its loss) on each
encoder (random weights: the cost does not depend on them). Per encoder: parameters, the
median time of one training step (forward + backward + AdamW, a batch of 8 crops of
256 px, bf16 autocast + channels-last as `train` runs it on a bf16 CPU, fp32 elsewhere),
and the median time to predict one 512 px window as Segment does (BatchNorm folded,
channels-last, the precision ``auto`` picks). Each round times every encoder in turn, so
the machine's load falls on all alike; the ratios to the first encoder are the numbers to
read, not the seconds.
"""
from __future__ import annotations

import argparse
import statistics
import time


def _models(encoders):
    from napari_wbcseg.models import create_model

    return {e: create_model("wbcseg-lite0", encoder=f"tu-tf_efficientnet_{e}") for e in encoders}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--encoders", default="lite0,lite1,lite2")
    p.add_argument("--rounds", type=int, default=4)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--crop", type=int, default=256)
    p.add_argument("--window", type=int, default=512)
    args = p.parse_args(argv)
    import torch

    from napari_wbcseg.inference.precision import autocast, resolve_precision
    from napari_wbcseg.training.engine.losses import segmentation_loss

    torch.manual_seed(0)
    encoders = [e.strip() for e in args.encoders.split(",") if e.strip()]
    models = _models(encoders)
    train_prec = resolve_precision("auto", "cpu", "wbcseg-lite0", purpose="training")
    x = torch.rand(args.batch, 3, args.crop, args.crop).contiguous(memory_format=torch.channels_last)
    sem = torch.randint(0, 3, (args.batch, args.crop, args.crop))
    cls = torch.randint(0, 6, (args.batch, args.crop, args.crop))
    window = torch.rand(1, 3, args.window, args.window)
    opts, predictors = {}, {}
    for e, m in models.items():
        m.train().to(memory_format=torch.channels_last)
        opts[e] = torch.optim.AdamW(m.parameters(), 1e-4)
        predictors[e] = m.inference_copy()
        predictors[e].precision = resolve_precision("auto", "cpu", "wbcseg-lite0")

    def train_step(e):
        m, opt = models[e], opts[e]
        opt.zero_grad()
        with autocast(train_prec):
            out = m(x)
        segmentation_loss(out, sem, cls, **m.loss_config)[0].backward()
        opt.step()

    times = {e: {"train": [], "predict": []} for e in encoders}
    for e in encoders:  # warm-up, not counted
        train_step(e)
        predictors[e].predict(window)
    for _ in range(args.rounds):
        for e in encoders:
            t = time.perf_counter()
            train_step(e)
            times[e]["train"].append(time.perf_counter() - t)
            t = time.perf_counter()
            predictors[e].predict(window)
            times[e]["predict"].append(time.perf_counter() - t)
    med = {e: {k: statistics.median(v) for k, v in t.items()} for e, t in times.items()}
    base = med[encoders[0]]
    print(f"training {train_prec}, batch {args.batch} x {args.crop} px; predict "
          f"{predictors[encoders[0]].precision}, one {args.window} px window; "
          f"median of {args.rounds} rounds")
    print("| encoder | parameters (M) | train step s | x first | predict ms | x first |")
    print("|---|---:|---:|---:|---:|---:|")
    for e in encoders:
        n = sum(q.numel() for q in models[e].parameters()) / 1e6
        tr, pr = med[e]["train"], med[e]["predict"]
        print(f"| {e} | {n:.2f} | {tr:.2f} | {tr / base['train']:.2f} | {1000 * pr:.0f} | "
              f"{pr / base['predict']:.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
