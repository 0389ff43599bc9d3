"""``napari-wbcseg batch``: a day of fields on dask.distributed (see docs/batch.md).

Each field goes through the code of ``segment``; the output folder gets what
``segment --out`` writes per field, plus manifest.json, summary.csv, summary.html,
differential.csv and cases/<case>_differential.csv.  Bad input is one ``error:`` line
and exit 2; fields that fail are listed at the end (exit 2) after the rest are done.
"""
from __future__ import annotations

import sys
import warnings

from .cli_args import (add_coarse_pass_option, add_device_option, add_tta_option, finite_float,
                       int_range)


def add_parser(sub) -> None:
    from .cli import _diameter, _fraction

    p = sub.add_parser(
        "batch", help="segment many fields on dask (local cores or a cluster), resumable",
        description="Segment every field of the INPUTs (image files, folders searched "
        "recursively, glob patterns) with the same code as `segment`, one dask task per "
        "field, on a LocalCluster of this machine or an existing dask scheduler.  --out "
        "gets segment's four files per field, manifest.json (a rerun skips fields done "
        "with the same input and model), summary.csv, summary.html, differential.csv and "
        "cases/<case>_differential.csv.")
    p.add_argument("inputs", nargs="+", metavar="INPUT",
                   help="image files (PNG, JPEG, BMP, TIFF), folders or glob patterns")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder (created)")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--workers", metavar="N", type=int_range(1, 4096), default=None,
                       help="worker processes of the local cluster (default: one per core)")
    where.add_argument("--scheduler", metavar="ADDRESS", default=None,
                       help="an existing dask scheduler (tcp://host:8786), e.g. of "
                       "dask-jobqueue on SLURM (default: a local cluster)")
    p.add_argument("--threads-per-worker", metavar="N", type=int_range(1, 256), default=None,
                   help="threads (torch threads) per local worker (default 1)")
    p.add_argument("--scheduler-timeout", metavar="S", type=finite_float(0, 600, low_open=True),
                   default=10.0, help="seconds to wait for --scheduler to answer (default 10)")
    p.add_argument("--case-from", metavar="folder|none|REGEX", default="folder",
                   help="case id of a field: its folder's name (default), none, or a regular "
                   "expression on the file name whose group 'case' (or group 1) is the id")
    p.add_argument("--model", default=None, help="model name or .safetensors file "
                   "(default: the bundled default; see `napari-wbcseg models`)")
    add_device_option(p)
    p.add_argument("--cell-diameter", metavar="PX|auto|native", type=_diameter, default="auto",
                   help="typical white-cell diameter in pixels (4..2000), 'auto' (default) "
                   "or 'native'")
    p.add_argument("--pixel-size", metavar="UM", type=finite_float(0, 1000, low_open=True),
                   default=None, help="um per pixel, for areas in um^2 (default: pixels only)")
    p.add_argument("--classifier", metavar="auto|none|NAME", default="auto",
                   help="per-cell classifier, as for `segment` (default auto)")
    p.add_argument("--threshold", metavar="P", type=_fraction, default=0.5,
                   help="confidence below which a cell is 'unidentified' (default 0.5)")
    p.add_argument("--scheme", metavar="NAME|FILE.csv", default=None,
                   help="class table of the cell types, as for `segment` (default: the model's)")
    p.add_argument("--include-border-cells", action="store_true",
                   help="count cells cut by the field border in the differentials "
                   "(default: left out)")
    add_tta_option(p)
    add_coarse_pass_option(p)
    p.set_defaults(func=cmd_batch)


def cmd_batch(args) -> int:
    from .batching.run import batch
    from .cli import CliError

    options = dict(device=args.device, cell_diameter=args.cell_diameter,
                   pixel_size_um=args.pixel_size, classifier=args.classifier,
                   class_threshold=args.threshold,
                   include_border_cells=args.include_border_cells, tta=args.tta,
                   coarse_pass=args.coarse_pass)
    bar, seen = _FieldBar(), []
    try:
        if args.scheme:
            from .schemes import load_scheme

            options["classes"] = load_scheme(args.scheme)  # SchemeError: a ValueError
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always", UserWarning)
            result = batch(args.inputs, args.out, workers=args.workers,
                           threads_per_worker=args.threads_per_worker,
                           scheduler=args.scheduler, model=args.model,
                           case_from=args.case_from, progress=bar,
                           scheduler_timeout_s=args.scheduler_timeout, **options)
    except ValueError as exc:  # BatchError and its kinds, SchemeError
        bar.close()
        for w in seen:
            print(f"warning: {w.message}", file=sys.stderr)
        raise CliError(str(exc)) from None
    finally:
        bar.close()
    for w in seen:
        print(f"warning: {w.message}", file=sys.stderr)
    print(f"{result.done} field(s) segmented, {result.skipped} already done, "
          f"{len(result.failed)} failed -> {args.out} (summary.csv, summary.html)")
    for e in result.failed:
        print(f"failed: {e.get('error')}", file=sys.stderr)
    return 2 if result.failed else 0


class _FieldBar:
    """A tqdm bar over fields on stderr (a plain line per field without tqdm)."""

    def __init__(self):
        self.bar = None

    def __call__(self, ev) -> None:
        if ev.kind == "start":
            if ev.message:
                print(f"dask dashboard: {ev.message}", file=sys.stderr)
            try:
                from tqdm import tqdm

                self.bar = tqdm(total=ev.total, initial=ev.done, desc="fields", unit="field",
                                file=sys.stderr)
            except ImportError:
                self.bar = None
        elif ev.kind == "field":
            if self.bar is not None:
                self.bar.update(ev.done - self.bar.n)
            else:
                print(f"[{ev.done}/{ev.total}] {ev.message}", file=sys.stderr)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
