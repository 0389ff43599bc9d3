"""A batch gives segment's numbers, and a rerun redoes only what changed."""
from __future__ import annotations

import numpy as np
import pandas as pd
import tifffile

from batch_helpers import write_field

from napari_wbcseg import batch, cli
from napari_wbcseg.batching.manifest import Manifest

KINDS = ("nucleus", "cytoplasm", "celltype")


def test_batch_equals_segment_with_two_workers(fields, tmp_path, dask_client):
    assert len(dask_client.scheduler_info()["workers"]) == 2
    result = batch([fields], tmp_path / "batch", scheduler=dask_client)
    assert (result.done, result.skipped, result.failed) == (3, 0, [])
    images = sorted(fields.rglob("*.png"))
    assert cli.main(["segment", *map(str, images), "--out", str(tmp_path / "seg")]) == 0
    for img in images:
        stem = f"{img.parent.name}__{img.stem}"
        for kind in KINDS:
            a = tifffile.imread(tmp_path / "batch" / f"{stem}_{kind}.tif")
            b = tifffile.imread(tmp_path / "seg" / f"{img.stem}_{kind}.tif")
            np.testing.assert_array_equal(a, b)
        ta = pd.read_csv(tmp_path / "batch" / f"{stem}_cells.csv").drop(columns="image")
        tb = pd.read_csv(tmp_path / "seg" / f"{img.stem}_cells.csv").drop(columns="image")
        assert len(ta) > 0
        pd.testing.assert_frame_equal(ta, tb)
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "batch" / "differential.csv"),
                                  pd.read_csv(tmp_path / "seg" / "differential.csv"))


def test_rerun_skips_done_fields_and_redoes_changed_ones(fields, tmp_path, dask_client):
    out = tmp_path / "out"
    assert batch([fields], out, scheduler=dask_client).done == 3
    before = Manifest.load(out).entries
    # nothing to do: no scheduler is contacted (this address answers nobody)
    again = batch([fields], out, scheduler="tcp://127.0.0.1:9", scheduler_timeout_s=1)
    assert (again.done, again.skipped) == (0, 3)
    assert Manifest.load(out).entries == before
    write_field(fields / "caseB" / "f2.png", seed=7)  # a changed input
    changed = batch([fields], out, scheduler=dask_client)
    assert (changed.done, changed.skipped) == (1, 2)
    after = Manifest.load(out).entries
    assert after["caseB__f2"]["input_sha256"] != before["caseB__f2"]["input_sha256"]
    assert after["caseA__f0"] == before["caseA__f0"]
    other = batch([fields], out, scheduler=dask_client, class_threshold=0.6)  # another option
    assert (other.done, other.skipped) == (3, 0)
    assert len({e["model"] for e in Manifest.load(out).entries.values()}) == 1
    assert Manifest.load(out).entries["caseA__f0"]["model"] != before["caseA__f0"]["model"]
