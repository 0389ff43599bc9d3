"""fp32 vs channels-last vs bf16 autocast, per architecture, side by side in one run.

    .venv/bin/python benchmarks/bench_precision.py [--models a,b] [--size 256] [--batch 4]

Per architecture (random weights, BatchNorm folded for inference as the product does):
inference of 1x3xSxS in fp32 NCHW, fp32 channels-last and bf16 autocast + channels-last
(median of 5 after a warm-up), one training step (forward + backward + AdamW) of a
batch in fp32 channels-last and in bf16, and how far bf16 moves the output: the largest
change of any softmax probability and the share of pixels whose semantic argmax
changes.  Speeds are ratios measured in the same run (this machine is noisy).  The
choice the product makes (``inference.precision.resolve_precision("auto", ...)``) is
printed beside each row.
"""
from __future__ import annotations

import argparse
import statistics
import time

DEFAULT = ("wbcseg-lite0", "unet-efficientnet-lite0", "unet-mobilenetv2", "unet-resnet18",
           "wcsegnet-compact", "wbc-net-compact", "cbam-unet-vgg16-compact")


def _median(fn, repeats=5) -> float:
    fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def bench(name: str, size: int, batch: int) -> dict:
    import torch

    from napari_wbcseg.inference.precision import autocast, cpu_has_bf16, resolve_precision
    from napari_wbcseg.models import create_model
    from napari_wbcseg.training.engine.losses import segmentation_loss

    torch.manual_seed(0)
    model = create_model(name)
    infer = model.inference_copy()
    x = torch.rand(1, 3, size, size)
    xcl = x.contiguous(memory_format=torch.channels_last)
    row = {"name": name, "auto": resolve_precision("auto", "cpu", name),
           "native_bf16": cpu_has_bf16()}

    def forward(m, inp, prec):
        with torch.inference_mode(), autocast(prec):
            return m(inp)

    row["fp32_ms"] = 1e3 * _median(lambda: forward(infer, x, "fp32"))
    infer_cl = infer.to(memory_format=torch.channels_last)
    row["fp32_cl_ms"] = 1e3 * _median(lambda: forward(infer_cl, xcl, "fp32"))
    row["bf16_cl_ms"] = 1e3 * _median(lambda: forward(infer_cl, xcl, "bf16"))
    ref = torch.softmax(forward(infer_cl, xcl, "fp32")["semantic"].float(), 1)
    low = torch.softmax(forward(infer_cl, xcl, "bf16")["semantic"].float(), 1)
    row["max_prob_change"] = float((ref - low).abs().max())
    row["argmax_changed_pct"] = 100 * float((ref.argmax(1) != low.argmax(1)).float().mean())

    xb = torch.rand(batch, 3, size, size).contiguous(memory_format=torch.channels_last)
    sem = torch.randint(0, 3, (batch, size, size))
    cls = torch.randint(1, 6, (batch, size, size))
    model = model.to(memory_format=torch.channels_last).train()
    opt = torch.optim.AdamW(model.parameters(), 1e-4)

    def step(prec):
        with autocast(prec):
            out = model(xb)
        out = {k: v.float() for k, v in out.items() if k in ("semantic", "cell_type")}
        loss, _ = segmentation_loss(out, sem, cls)
        opt.zero_grad()
        loss.backward()
        opt.step()

    row["train_fp32_s"] = _median(lambda: step("fp32"), 3)
    row["train_bf16_s"] = _median(lambda: step("bf16"), 3)
    return row


def main(argv=None) -> int:
    import torch

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default=",".join(DEFAULT))
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--batch", type=int, default=4)
    args = p.parse_args(argv)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"input {args.size}x{args.size}, training batch {args.batch}")
    head = (f"{'architecture':26}{'fp32':>8}{'fp32 CL':>9}{'bf16 CL':>9}{'x inf':>7}"
            f"{'train fp32':>11}{'bf16':>7}{'x tr':>6}{'max dP':>8}{'argmax%':>9}  auto")
    print(head)
    for name in args.models.split(","):
        r = bench(name.strip(), args.size, args.batch)
        print(f"{r['name']:26}{r['fp32_ms']:>7.0f}ms{r['fp32_cl_ms']:>7.0f}ms"
              f"{r['bf16_cl_ms']:>7.0f}ms{r['fp32_ms'] / r['bf16_cl_ms']:>7.2f}"
              f"{r['train_fp32_s']:>10.2f}s{r['train_bf16_s']:>6.2f}s"
              f"{r['train_fp32_s'] / r['train_bf16_s']:>6.2f}{r['max_prob_change']:>8.3f}"
              f"{r['argmax_changed_pct']:>9.3f}  {r['auto']}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
