"""Per-field bookkeeping of ``batch`` in a full output folder: the folder listing of the
leftover sweep (done for every field before 2026-12-02) against the in-flight marker
(the sweep only after a killed attempt), side by side.

    .venv/bin/python benchmarks/bench_output_folder.py [--fields 6000] [--samples 20]

The folder holds the four output files of ``--fields`` fields (empty files: only their
names matter), as after a lab's day; prints milliseconds per field.
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--fields", type=int, default=6000)
    p.add_argument("--samples", type=int, default=20)
    args = p.parse_args(argv)

    from napari_wbcseg.batching.field_outputs import field_output_names
    from napari_wbcseg.batching.field_task import _mark_in_flight, remove_leftovers

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        for i in range(args.fields):
            for name in field_output_names(f"f{i:05d}"):
                (out / name).touch()
        stems = [f"f{i:05d}" for i in range(args.samples)]
        sweep, marker = [], []
        for stem in stems:  # interleaved, so the machine's load falls on both alike
            t = time.perf_counter()
            remove_leftovers(out, stem)
            sweep.append(time.perf_counter() - t)
            t = time.perf_counter()
            _mark_in_flight(out, stem).unlink()
            marker.append(time.perf_counter() - t)
    n_files = args.fields * len(field_output_names("f"))
    print(f"output folder of {args.fields} fields ({n_files} files), {args.samples} fields timed")
    for label, times in (("leftover sweep every field", sweep), ("in-flight marker", marker)):
        print(f"  {label:27s} {1000 * statistics.median(times):8.3f} ms per field (median)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
