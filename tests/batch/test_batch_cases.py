"""Case assignment, summary.csv, per-case differentials (border cells left out), the API."""
from __future__ import annotations

import subprocess
import sys
import warnings

import pandas as pd
import pytest

from napari_wbcseg.batching import BatchError
from napari_wbcseg.batching.fields import plan_fields


def test_case_from_folder_none_and_regex(tmp_path):
    for name in ("day1/slideA/P12_f1.png", "day1/slideB/P12_f2.png", "day2/slideA/x.png"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "day1" / "notes.txt").write_text("not a field")
    by_folder = {f.stem: f.case for f in plan_fields([tmp_path])}
    assert by_folder == {"slideA__P12_f1": "slideA", "slideB__P12_f2": "slideB",
                         "slideA__x": "slideA"}
    assert {f.case for f in plan_fields([tmp_path], "none")} == {"unassigned"}
    with pytest.warns(UserWarning, match=r"1 file name\(s\) do not match .*x\.png"):
        by_regex = {f.stem: f.case for f in plan_fields([tmp_path], r"^(?P<case>P\d+)_")}
    assert by_regex == {"slideA__P12_f1": "P12", "slideB__P12_f2": "P12",
                        "slideA__x": "unassigned"}
    with pytest.raises(BatchError, match="has no group"):
        plan_fields([tmp_path], r"P\d+")


def test_stems_are_unique_and_stay_when_inputs_are_added(tmp_path):
    for name in ("a/s/f.png", "b/s/f.png"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    first = plan_fields([tmp_path / "a"])
    assert [f.stem for f in first] == ["s__f"]
    both = plan_fields([tmp_path], known_stems={str(first[0].path): "s__f"})
    assert sorted(f.stem for f in both) == ["b__s__f", "s__f"]


def test_summary_and_per_case_differentials(fields, tmp_path, dask_client):
    from napari_wbcseg import batch
    from napari_wbcseg.inference.segment import SegmentParams

    out = tmp_path / "out"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        batch([fields], out, scheduler=dask_client)
    summary = pd.read_csv(out / "summary.csv").set_index("stem")
    assert list(summary.index) == ["caseA__f0", "caseA__f1", "caseB__f2"]
    assert list(summary["case"]) == ["caseA", "caseA", "caseB"]
    params = SegmentParams()
    for case, stems in (("caseA", ["caseA__f0", "caseA__f1"]), ("caseB", ["caseB__f2"])):
        tables = [pd.read_csv(out / f"{s}_cells.csv") for s in stems]
        got = pd.read_csv(out / "cases" / f"{case}_differential.csv")
        want = params.differential(tables).reset_index()
        pd.testing.assert_frame_equal(got, want, check_dtype=False)
        border = sum(int(t["touches_border"].sum()) for t in tables)
        assert got["border_left_out"].sum() == border
        assert got["count"].sum() == sum(len(t) for t in tables) - border
    cut = pd.read_csv(out / "caseA__f1_cells.csv")
    assert cut["touches_border"].any()  # the cropped field has a border cell ...
    row = summary.loc["caseA__f1"]
    assert row["border_left_out"] == cut["touches_border"].sum() > 0  # ... left out
    name = cut.loc[cut["touches_border"], "class"].iloc[0]
    assert row[f"{name}_with_border"] > row[name]
    page = (out / "summary.html").read_text()
    assert "caseA" in page and "caseB" in page and "wbcseg-lite0" in page


def test_batch_is_the_function_and_the_import_stays_light():
    import napari_wbcseg
    from napari_wbcseg.batching.run import batch

    assert napari_wbcseg.batch is batch and "batch" in napari_wbcseg.__all__
    code = ("import sys, napari_wbcseg, napari_wbcseg.batching; "
            "heavy = [m for m in ('dask', 'distributed', 'torch') if m in sys.modules]; "
            "assert not heavy, heavy")
    subprocess.run([sys.executable, "-c", code], check=True)
