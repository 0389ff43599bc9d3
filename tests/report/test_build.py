"""A case of a project -> ReportData: the review core's counts, the thumbnails, the
audit trail with class names, the bad cases."""
import numpy as np
import pytest

from napari_wbcseg.io.project import save_image_entry
from napari_wbcseg.report import ReportError, build_report_data, read_intervals, render_pdf
from napari_wbcseg.review import Case, save_case
from napari_wbcseg.schema import DEFAULT_CLASSES

from report_projects import CLASSES14, EXAMPLE, SHA, make_case_project
from handmade import pdf_lines, value_after


def test_counts_galleries_models_and_audit_come_from_the_case(tmp_path):
    given = make_case_project(tmp_path / "P", n_fields=2, n_wbc=4, codes=[1, 1, 2, 255])
    data = build_report_data(tmp_path / "P", "C-001", reviewer="jdoe", max_per_class=3)
    counts = {r.name: r.count for r in data.rows}
    assert counts == {"neutrophil": 4, "lymphocyte": 2, "monocyte": 0, "eosinophil": 0,
                      "basophil": 0}
    assert (data.unidentified, data.counted, data.fields) == (2, 6, 2)
    assert data.rows[0].percent == pytest.approx(100 * 4 / 6)
    assert data.rows[0].absolute == pytest.approx(6.5 * 4 / 6)
    assert {k: len(v) for k, v in data.galleries.items()} == {1: 3, 2: 2, 255: 2}
    assert data.gallery_totals == {1: 4, 2: 2, 255: 2}
    thumb = data.galleries[1][0]
    assert thumb.image.shape == (96, 96, 3) and thumb.image.dtype == np.uint8
    assert thumb.caption == f"field 1, cell {sorted(given[0])[0]}"
    assert [m.sha256 for m in data.models] == [SHA]
    assert [(a.action, a.from_class, a.to_class) for a in data.audit] == [
        ("reclassify", "basophil", "neutrophil"), ("accept", "neutrophil", "neutrophil")]
    assert data.reviewer == "jdoe" and data.is_draft
    assert data.flags == ["2 unidentified cells left", "target not reached: 6 of 100"]


def test_reference_flags_come_from_the_lab_file(tmp_path):
    make_case_project(tmp_path / "P", codes=[1])  # every cell a neutrophil: 100%
    ref = read_intervals(EXAMPLE, DEFAULT_CLASSES)
    data = build_report_data(tmp_path / "P", "C-001", intervals=ref)
    assert "neutrophil 100.0% above the reference interval 40-75%" in data.flags
    assert "lymphocyte 0.0% below the reference interval 20-45%" in data.flags
    assert "neutrophil 6.50 x10^9/L" not in " ".join(data.flags)  # 6.5 is within 2-7


def test_cells_cut_by_the_border_are_left_out_of_counts_and_galleries(tmp_path):
    from napari_wbcseg.core.synthetic import synthetic_smear

    folder = tmp_path / "P"
    make_case_project(folder, audit=False)
    sm = synthetic_smear((240, 320), n_wbc=3, seed=5, pixel_size_um=0.25, rbc_density=0.3)
    xs = np.flatnonzero((sm.nucleus == 1).any(axis=0) | (sm.cytoplasm == 1).any(axis=0))
    cut = np.s_[:, (xs[0] + xs[-1]) // 2:]  # through the middle of cell 1
    arrays = [np.ascontiguousarray(a[cut]) for a in (sm.image, sm.nucleus, sm.cytoplasm,
                                                     sm.cell_type)]
    assert sm.classes[1] == 1  # cell 1 is a neutrophil, cut in half by the left border
    save_image_entry(folder, "cut", *arrays)
    save_case(folder, Case("CUT", "S-2", ["cut"]))
    data = build_report_data(folder, "CUT")
    inside = [c for c in sm.classes if c != 1 and (arrays[1] == c).any()]
    assert data.border_left_out == 1
    assert data.counted == len(inside)
    assert data.gallery_totals.get(1, 0) == sum(sm.classes[c] == 1 for c in inside)
    assert all("cell 1" != t.caption.split(", ")[1] for v in data.galleries.values()
               for t in v)


def test_a_14_class_project_reports_every_class(tmp_path):
    make_case_project(tmp_path / "P", CLASSES14, n_fields=4, n_wbc=4)
    data = build_report_data(tmp_path / "P", "C-001")
    assert [r.code for r in data.rows] == list(range(1, 15))
    assert sum(r.count for r in data.rows) == 16
    _, lines = pdf_lines(render_pdf(data))
    for row in data.rows:
        assert value_after(lines, row.name) == str(row.count)


def test_an_empty_case_is_refused(tmp_path):
    folder = tmp_path / "P"
    make_case_project(folder, audit=False)
    empty = np.zeros((32, 32), np.uint16)
    save_image_entry(folder, "blank", np.full((32, 32, 3), 220, np.uint8), empty, empty,
                     empty.astype(np.uint8))
    save_case(folder, Case("EMPTY", "S-1", ["blank"]))
    with pytest.raises(ReportError, match="^case EMPTY has no counted cells: nothing to report$"):
        build_report_data(folder, "EMPTY")


def test_an_unknown_case_or_project_is_one_line(tmp_path, project):
    with pytest.raises(ReportError, match="no case 'C-999'.*cases: C-001"):
        build_report_data(project, "C-999")
    with pytest.raises(ReportError, match="not a napari-wbcseg project"):
        build_report_data(tmp_path / "nowhere", "C-001")
    with pytest.raises(ReportError, match="reviewer"):
        build_report_data(project, "C-001", reviewer="two\nlines")


def test_a_project_keeps_the_lab_intervals_for_every_report(tmp_path):
    """PROJECT/reference_intervals.csv flags a report built without explicit intervals
    (the GUI's); a bad one is one ReportError line naming the file."""
    import shutil

    make_case_project(tmp_path / "P", codes=[1])
    assert not any("reference interval" in f for f in build_report_data(tmp_path / "P",
                                                                        "C-001").flags)
    shutil.copy(EXAMPLE, tmp_path / "P" / "reference_intervals.csv")
    data = build_report_data(tmp_path / "P", "C-001")
    assert "neutrophil 100.0% above the reference interval 40-75%" in data.flags
    (tmp_path / "P" / "reference_intervals.csv").write_text("nonsense\n")
    with pytest.raises(ReportError, match="reference_intervals.csv"):
        build_report_data(tmp_path / "P", "C-001")
