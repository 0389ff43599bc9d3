"""A field's in-flight marker: the output folder is listed for leftovers only after an
attempt that died mid-write (a lab's day puts 24000 files in it), and never kept."""
from __future__ import annotations

from batch_helpers import write_field

from napari_wbcseg.batching import field_task
from napari_wbcseg.batching.field_outputs import field_output_names
from napari_wbcseg.batching.field_task import in_flight_marker, run_field
from napari_wbcseg.inference.segment import SegmentParams


def _listings(monkeypatch):
    calls = []
    real = field_task.remove_leftovers
    monkeypatch.setattr(field_task, "remove_leftovers",
                        lambda out, stem: (calls.append(stem), real(out, stem)))
    return calls


def test_a_normal_field_lists_nothing_and_leaves_no_marker(tmp_path, monkeypatch):
    field = write_field(tmp_path / "in" / "f1.png", 1)
    out = tmp_path / "out"
    calls = _listings(monkeypatch)
    summary = run_field(str(field), "f1", "", SegmentParams(device="cpu"), str(out))
    assert summary["status"] == "done", summary
    assert calls == []
    assert sorted(p.name for p in out.iterdir()) == sorted(field_output_names("f1"))


def test_after_a_killed_attempt_its_temporary_files_go(tmp_path, monkeypatch):
    field = write_field(tmp_path / "in" / "f2.png", 2)
    out = tmp_path / "out"
    out.mkdir()
    in_flight_marker(out, "f2").touch()  # the attempt before was killed mid-write ...
    (out / ".f2_nucleus.tif.k3j9x.tif").write_bytes(b"half a TIFF")  # ... and left this
    (out / ".other_nucleus.tif.a1b2c.tif").write_bytes(b"")  # another field's: not ours
    calls = _listings(monkeypatch)
    summary = run_field(str(field), "f2", "", SegmentParams(device="cpu"), str(out))
    assert summary["status"] == "done", summary
    assert calls == ["f2"]
    names = {p.name for p in out.iterdir()}
    assert names == set(field_output_names("f2")) | {".other_nucleus.tif.a1b2c.tif"}


def test_a_failed_field_leaves_no_marker(tmp_path):
    bad = tmp_path / "in" / "bad.png"
    bad.parent.mkdir()
    bad.write_bytes(b"not an image")
    out = tmp_path / "out"
    summary = run_field(str(bad), "bad", "", SegmentParams(device="cpu"), str(out))
    assert summary["status"] == "failed" and "bad.png" in summary["error"]
    assert list(out.iterdir()) == []


def test_a_long_stem_gets_a_short_marker(tmp_path):
    stem = "x" * 250
    assert len(in_flight_marker(tmp_path, stem).name) < 60
    assert in_flight_marker(tmp_path, stem) != in_flight_marker(tmp_path, "y" * 250)


def test_the_end_of_a_batch_sweeps_what_cancelled_attempts_left(tmp_path):
    from napari_wbcseg.batching.field_task import sweep_in_flight

    out = tmp_path / "out"
    out.mkdir()
    for stem in ("a", "b"):
        in_flight_marker(out, stem).touch()
        (out / f".{stem}_celltype.tif.x1y2z3q4.tif").write_bytes(b"half")
        (out / f".{stem}_cells.csv.q9w8e7r6.csv").write_text("half")
    keep = [out / "a_nucleus.tif", out / ".c_nucleus.tif.abcdefgh.tif",
            in_flight_marker(out, "c"), out / ".wbcseg-batch-lock"]
    for p in keep:
        p.write_bytes(b"x")
    assert sweep_in_flight(out, ["a", "b"]) == 6
    assert sorted(out.iterdir()) == sorted(keep)
