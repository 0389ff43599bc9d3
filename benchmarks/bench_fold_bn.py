"""BatchNorm folding and conv + activation fusion at prediction time: the segmentation
network and the cell classifier, norms kept vs folded vs folded + ReLU6 fused into the
convs, fp32 vs bf16, measured side by side (interleaved rounds).

    .venv/bin/python benchmarks/bench_fold_bn.py [--rounds 5] [--threads 2]

Segmentation: the default model's network on one 544x736 window (a 2048x1536 field at
the model's cell size).  Classifier: the installed lite0 classifier on 8 cell crops (a
busy field), with the mirror test-time augmentation of ``classify_cells`` off.  Prints
the median milliseconds of each line and its ratio to "norms kept, fp32".
"""
from __future__ import annotations

import argparse
import copy
import statistics
import time


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)

    import torch

    from napari_wbcseg.inference.classify import load_classifier
    from napari_wbcseg.inference.precision import autocast
    from napari_wbcseg.io.model_store import find_model
    from napari_wbcseg.models.fold_bn import fold_batchnorm
    from napari_wbcseg.models.fuse_act import fuse_conv_activations
    from napari_wbcseg.models.weights import build_from_file

    torch.set_num_threads(args.threads)
    seg = build_from_file(str(find_model(None).weights)).eval()
    clf = copy.deepcopy(load_classifier("cell-classifier-lite0").module)
    nets = {}
    for name, net, x in (("segmentation", seg, torch.rand(1, 3, 544, 736)),
                         ("classifier", clf, torch.rand(8, 5, clf.crop_size, clf.crop_size))):
        # the installed classifier comes folded: a fresh one of its config has its norms
        kept = _unfolded_classifier(net) if name == "classifier" else copy.deepcopy(net).eval()
        folded = copy.deepcopy(kept).eval()
        fold_batchnorm(folded)
        fused = copy.deepcopy(folded)
        fuse_conv_activations(fused)
        for m in (kept, folded, fused):
            m.to(memory_format=torch.channels_last).requires_grad_(False)
        nets[name] = ({"norms kept": kept, "folded": folded, "fused": fused},
                      x.contiguous(memory_format=torch.channels_last))

    lines = [(n, stage, prec) for n in nets for stage in STAGES for prec in ("fp32", "bf16")]
    times = {line: [] for line in lines}
    for _ in range(args.rounds + 1):  # the first round warms up and is dropped
        for line in lines:
            name, stage, prec = line
            net, x = nets[name][0][stage], nets[name][1]
            t = time.perf_counter()
            with torch.inference_mode(), autocast(prec):
                out = net(x)
                _ = out["semantic"] if isinstance(out, dict) else out
            times[line].append(time.perf_counter() - t)
    print(f"{args.rounds} rounds, {args.threads} threads (median ms; ratio to norms kept, fp32)")
    for name in nets:
        base = statistics.median(times[(name, "norms kept", "fp32")][1:])
        for stage in STAGES:
            for prec in ("fp32", "bf16"):
                med = statistics.median(times[(name, stage, prec)][1:])
                print(f"  {name:13s} {stage:10s} {prec}: {1000 * med:8.1f} ms  x{base / med:.2f}")
    return 0


#: norms kept; BatchNorm folded; folded, then ReLU/ReLU6 fused into the conv before it
STAGES = ("norms kept", "folded", "fused")


def _unfolded_classifier(folded_module):
    """A fresh classifier of the installed one's config (random weights: only the timing
    matters here)."""
    from napari_wbcseg.models.cell_classifier import create_classifier

    return create_classifier(folded_module.architecture, **folded_module.config).eval()


if __name__ == "__main__":
    raise SystemExit(main())
