"""Batch speed: the same fields through the plain loop and through ``batch``, fp32 and bf16.

    .venv/bin/python benchmarks/bench_batch.py [--fields 200] [--rounds 4] [--json F]
        [--precisions fp32,bf16] [--coarse-pass on|off|both]

Lines (each in fp32 and in bf16, all measured side by side in one run):

* ``loop``: one plain process (a child of the benchmark, apart from the dask clusters),
  ``torch`` on all cores (2 here), each field read and written by
  ``batching.field_outputs.segment_field_to_files`` (``napari-wbcseg segment``'s path);
* ``batch 1x2``: ``napari_wbcseg.batch`` on a LocalCluster of 1 worker x 2 threads;
* ``batch 2x1``: 2 workers x 1 thread.

The fields (``--fields N``): about 80 % BCISC full fields (2048x1536 JPEG), 10 %
segmentation_WBC Dataset images (small crops) and synthetic 2048x1536 smears for the
rest, or synthetic only without ``../shared/data``.  They are cut into ``--rounds``
rounds; each round runs every line on the round's fields in a rotated order, so load
noise on this shared machine hits all lines alike.  The clusters are started once (made
by the batch's own ``BatchClient``; their start is reported apart), the model is loaded
and one field run on every worker before timing, and the precision is switched on the
loaded model between rounds (what ``NAPARI_WBCSEG_PRECISION`` chooses at load time).

Reported per line: fields per minute (fields / summed wall time of the ``batch`` calls
or loop rounds), the per-field median and p95 of the segmentation itself (``seconds`` of
the batch's manifest entries = ``segment``'s ``total_s``), the time per field outside
it (read, write, summaries and, for ``batch``, dask: ``(wall x workers - sum of field
seconds) / fields``), peak RSS per worker (``ru_maxrss``, asked with ``client.run``) and
the ratio of fields per minute to the loop in the same precision.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
LAYOUTS = {"loop": None, "batch 1x2": (1, 2), "batch 2x1": (2, 1)}
PRECISIONS = ("fp32", "bf16")
LOOP_THREADS = 2  # the loop gets the cores the batch layouts share


def _spread(items: list, n: int) -> list:
    """``n`` items evenly spread over ``items`` (all classes of a small pick)."""
    if n >= len(items):
        return list(items)
    return [items[round(i * len(items) / n)] for i in range(n)]


def pick_fields(n: int, tmp: Path) -> list[tuple[Path, str]]:
    """``[(file, kind)]``: real fields first, synthetic smears written to ``tmp`` to fill up."""
    bcisc = sorted((DATA / "BCISC" / "original-images").glob("*/*.jpg"))
    crops = sorted((DATA / "segmentation_WBC").glob("Dataset */*.bmp"))
    n_crops = min(len(crops), n // 10)
    n_bcisc = min(len(bcisc), n - n_crops - max(1, n // 10))
    fields = [(p, "BCISC field") for p in _spread(bcisc, n_bcisc)]
    fields += [(p, "Dataset image") for p in _spread(crops, n_crops)]
    if len(fields) < n:
        import cv2

        from napari_wbcseg.core.synthetic import synthetic_smear

        (tmp / "synthetic").mkdir()
        for seed in range(n - len(fields)):
            path = tmp / "synthetic" / f"smear-{seed:03d}.png"
            smear = synthetic_smear(shape=(1536, 2048), n_wbc=8, seed=seed)
            cv2.imwrite(str(path), cv2.cvtColor(smear.image, cv2.COLOR_RGB2BGR))
            fields.append((path, "synthetic smear"))
    order = sorted(range(len(fields)), key=lambda i: (i * 7919) % len(fields))
    return [fields[i] for i in order]  # kinds mixed over the rounds


def use_precision(precision: str) -> str:
    """In a process (a worker, or the loop's): the default model loaded, in ``precision``."""
    os.environ["NAPARI_WBCSEG_PRECISION"] = precision  # for any model loaded later
    from napari_wbcseg.inference.predictor import load_model

    net = load_model(None, "cpu")
    net.module.precision = precision  # what the predictor cache resolves at load time
    return net.module.precision


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_loop(fields, out: Path, coarse_pass: bool = True) -> tuple[float, list[float]]:
    from napari_wbcseg.batching.field_outputs import segment_field_to_files
    from napari_wbcseg.inference.segment import SegmentParams
    from napari_wbcseg.io.imread import read_image

    params = SegmentParams(device="cpu", coarse_pass=coarse_pass)
    seconds = []
    t0 = time.perf_counter()
    for i, (path, _kind) in enumerate(fields):
        result = segment_field_to_files(read_image(path), f"{i:04d}_{path.stem}", params, out)
        seconds.append(float(result.timings["total_s"]))
    return time.perf_counter() - t0, seconds


def loop_task(precision: str, fields, out: str,
              coarse_pass: bool = True) -> tuple[float, list[float], float]:
    """The loop line, run in its own plain process (no dask machinery beside it)."""
    import torch

    torch.set_num_threads(LOOP_THREADS)
    use_precision(precision)
    wall, seconds = run_loop(fields, Path(out), coarse_pass)
    return wall, seconds, peak_rss_mb()


def run_batch(client, fields, out: Path, coarse_pass: bool = True) -> tuple[float, list[float]]:
    from napari_wbcseg import batch

    t0 = time.perf_counter()
    result = batch([str(p) for p, _ in fields], out, scheduler=client, device="cpu",
                   coarse_pass=coarse_pass)
    wall = time.perf_counter() - t0
    bad = [e for e in result.entries if e.get("status") != "done"]
    if bad or len(result.entries) != len(fields):
        raise SystemExit(f"batch failed on {len(bad)} field(s): {bad[0].get('error') if bad else ''}")
    return wall, [float(e["seconds"]) for e in result.entries]


def _p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20, method="inclusive")[-1] if len(values) >= 2 \
        else values[0]


def summarize(lines: dict, n_fields: int, rss: dict) -> list[dict]:
    rows = []
    for (layout, precision, coarse), r in lines.items():
        slots = LAYOUTS[layout][0] if LAYOUTS[layout] else 1
        row = {"line": layout, "precision": precision, "coarse_pass": coarse,
               "fields": len(r["seconds"]),
               "wall_s": r["wall"], "fields_per_min": 60 * len(r["seconds"]) / r["wall"],
               "median_s": statistics.median(r["seconds"]), "p95_s": _p95(r["seconds"]),
               "outside_s": (r["wall"] * slots - sum(r["seconds"])) / len(r["seconds"]),
               "peak_rss_mb": rss.get(layout, [])}
        rows.append(row)
    for row in rows:
        ref = next(r for r in rows if r["line"] == "loop" and r["precision"] == row["precision"]
                   and r["coarse_pass"] == row["coarse_pass"])
        row["x_loop"] = row["fields_per_min"] / ref["fields_per_min"]
        row["dask_s_per_field"] = row["outside_s"] - ref["outside_s"] if row["line"] != "loop" \
            else 0.0
    return rows


def print_table(rows, meta) -> None:
    print(f"{meta['fields']} fields ({', '.join(f'{v} {k}' for k, v in meta['kinds'].items())}), "
          f"{meta['rounds']} rounds; load average {meta['load_before']} before, "
          f"{meta['load_after']} after; cluster start {meta['cluster_start_s']}")
    print(f"{'line':11}{'prec':6}{'coarse':7}{'fields/min':>11}{'x loop':>8}{'median s':>10}{'p95 s':>8}"
          f"{'outside s':>11}{'dask s':>8}  peak RSS MB per worker")
    for r in rows:
        print(f"{r['line']:11}{r['precision']:6}{'on' if r['coarse_pass'] else 'off':7}"
              f"{r['fields_per_min']:>11.1f}{r['x_loop']:>8.2f}"
              f"{r['median_s']:>10.2f}{r['p95_s']:>8.2f}{r['outside_s']:>11.3f}"
              f"{r['dask_s_per_field']:>8.3f}  {', '.join(f'{m:.0f}' for m in r['peak_rss_mb'])}")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--fields", type=int, default=200)
    p.add_argument("--rounds", type=int, default=4)
    p.add_argument("--json", default=None, metavar="FILE", help="also write the numbers here")
    p.add_argument("--precisions", default=None, metavar="LIST",
                   help="comma-separated, from fp32,bf16 (default: both on a CPU with native "
                   "bf16, fp32 alone elsewhere: emulated bf16 is ~15x slower)")
    p.add_argument("--coarse-pass", default="on", choices=["on", "off", "both"],
                   help="segment with the coarse pass (the default), without, or both side by "
                   "side (twice the lines; the ratio column compares to the loop with the same "
                   "setting)")
    args = p.parse_args(argv)
    from napari_wbcseg.inference.precision import cpu_has_bf16

    coarse_settings = {"on": (True,), "off": (False,), "both": (True, False)}[args.coarse_pass]
    precisions = PRECISIONS
    if args.precisions:
        precisions = tuple(x.strip() for x in args.precisions.split(","))
        if not precisions or not set(precisions) <= {"fp32", "bf16"}:
            p.error("--precisions takes fp32, bf16 or fp32,bf16")
    elif not cpu_has_bf16():
        precisions = ("fp32",)
        print("this CPU has no native bf16: fp32 lines only (--precisions fp32,bf16 to "
              "time emulated bf16 too)", file=sys.stderr)
    if args.fields < 2 or not 1 <= args.rounds <= args.fields:
        p.error("need --fields >= 2 and 1 <= --rounds <= --fields")

    import logging

    import torch

    from napari_wbcseg.batching.cluster import BatchClient

    logging.getLogger("distributed").setLevel(logging.ERROR)  # its closing chatter

    tmp = Path(tempfile.mkdtemp(prefix="wbcseg-bench-batch-"))
    clients, cluster_start, loop = {}, {}, None
    load_before = [round(x, 2) for x in os.getloadavg()]
    try:
        fields = pick_fields(args.fields, tmp)
        loop = _loop_process()
        for layout, shape in LAYOUTS.items():
            if shape:
                t = time.perf_counter()
                clients[layout] = BatchClient(None, *shape).__enter__()
                clients[layout].client.run(use_precision, "fp32")
                cluster_start[layout] = round(time.perf_counter() - t, 1)
        lines = {(lay, prec, coarse): {"wall": 0.0, "seconds": []}
                 for lay in LAYOUTS for prec in precisions for coarse in coarse_settings}
        combos = list(lines)
        for prec in precisions:  # warm-up (not timed): oneDNN's kernels for each precision
            loop.submit(loop_task, prec, fields[:1], str(_fresh(tmp, "warm"))).result()
            for layout, bc in clients.items():
                bc.client.run(use_precision, prec)
                run_batch(bc.client, fields[:LAYOUTS[layout][0]], _fresh(tmp, "warm"))
        rounds = [fields[i::args.rounds] for i in range(args.rounds)]
        for k, chunk in enumerate(rounds):
            for layout, prec, coarse in combos[k % len(combos):] + combos[:k % len(combos)]:
                out = _fresh(tmp, "out")
                if layout == "loop":
                    wall, seconds, loop_rss = loop.submit(loop_task, prec, chunk, str(out),
                                                          coarse).result()
                else:
                    clients[layout].client.run(use_precision, prec)
                    wall, seconds = run_batch(clients[layout].client, chunk, out, coarse)
                lines[(layout, prec, coarse)]["wall"] += wall
                lines[(layout, prec, coarse)]["seconds"] += seconds
                print(f"round {k + 1}/{len(rounds)} {layout} {prec} coarse pass "
                      f"{'on' if coarse else 'off'}: {len(chunk)} fields "
                      f"in {wall:.1f} s", file=sys.stderr, flush=True)
        rss = {"loop": [loop_rss]}
        for layout, bc in clients.items():
            rss[layout] = sorted(bc.client.run(peak_rss_mb).values())
    finally:
        if loop is not None:
            loop.shutdown()
        for bc in clients.values():
            bc.__exit__(None, None, None)
        shutil.rmtree(tmp, ignore_errors=True)
    kinds: dict[str, int] = {}
    for _, kind in fields:
        kinds[kind] = kinds.get(kind, 0) + 1
    meta = {"fields": len(fields), "kinds": kinds, "rounds": args.rounds,
            "load_before": load_before, "load_after": [round(x, 2) for x in os.getloadavg()],
            "cluster_start_s": cluster_start, "cpu_cores": os.cpu_count(),
            "precisions": list(precisions), "native_bf16": cpu_has_bf16(),
            "coarse_pass": args.coarse_pass,
            "torch": torch.__version__}
    rows = summarize(lines, len(fields), rss)
    print_table(rows, meta)
    if args.json:
        from napari_wbcseg.io.atomic import write_text_atomic

        write_text_atomic(args.json, json.dumps({"meta": meta, "lines": rows}, indent=1))
        print(f"wrote {args.json}")
    return 0


def _loop_process():
    """One spawned process for the loop line, kept (and its model warm) over the rounds."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    return ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))


def _fresh(tmp: Path, name: str) -> Path:
    """An empty output folder (each run writes from scratch: no manifest to skip by)."""
    out = tmp / name
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir()
    return out


if __name__ == "__main__":
    sys.exit(main())
