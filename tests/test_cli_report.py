"""``napari-wbcseg report``: a draft or signed PDF/HTML of a case; every bad input is
exit 2, one line on stderr, and nothing half-written."""
import errno
import importlib.util
import os
from pathlib import Path

import numpy as np
import pytest

from napari_wbcseg.cli import main

HERE = Path(__file__).resolve().parent


def _helpers():
    spec = importlib.util.spec_from_file_location("report_projects",
                                                  HERE / "report" / "report_projects.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


projects = _helpers()


def run(argv, capsys):
    capsys.readouterr()
    try:
        code = main([str(a) for a in argv])
    except SystemExit as exc:
        code = exc.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err.strip().splitlines()


@pytest.fixture
def project(tmp_path):
    folder = tmp_path / "PROJECT"
    projects.make_case_project(folder)
    return folder


def test_a_draft_pdf_and_html(project, tmp_path, capsys):
    import pypdf

    code, out, err = run(["report", project, "--case", "C-001", "--out", tmp_path / "r.pdf",
                          "--intervals", projects.EXAMPLE, "--reviewer", "jdoe"], capsys)
    assert code == 0, err
    assert "draft report" in out
    text = "\n".join(p.extract_text() for p in pypdf.PdfReader(tmp_path / "r.pdf").pages)
    assert "C-001" in text and "DRAFT" in text and "jdoe" in text
    assert "below the reference interval" in text  # eosinophil/basophil 12.5% vs 1-6, 0-2
    assert not (project / "reports").exists()
    code, _, err = run(["report", project, "--case", "C-001", "--out", tmp_path / "r.html",
                        "--max-per-class", "1"], capsys)
    assert code == 0, err
    assert (tmp_path / "r.html").read_text().count('<img src="data:image/png;base64,') == 5


def test_sign_stores_a_version_and_copies_it_to_out(project, tmp_path, capsys):
    argv = ["report", project, "--case", "C-001", "--out", tmp_path / "r.pdf", "--sign",
            "--reviewer", "Dr Ada Smith"]
    code, out, err = run(argv, capsys)
    assert code == 0, err
    assert "signed v1" in out
    v1 = project / "reports" / "C-001" / "v1" / "report.pdf"
    assert (tmp_path / "r.pdf").read_bytes() == v1.read_bytes()
    code, out, err = run(argv, capsys)
    assert code == 0 and "signed v2" in out
    assert (project / "reports" / "C-001" / "v2" / "report.pdf").is_file()


def add_empty_case(project):
    from napari_wbcseg.io.project import save_image_entry
    from napari_wbcseg.review import Case, save_case

    empty = np.zeros((32, 32), np.uint16)
    save_image_entry(project, "blank", np.full((32, 32, 3), 220, np.uint8), empty, empty,
                     empty.astype(np.uint8))
    save_case(project, Case("EMPTY", "S-1", ["blank"]))


@pytest.mark.parametrize("change, words", [
    (lambda p, t: {"project": t / "nowhere"}, ["nowhere", "not a napari-wbcseg project"]),
    (lambda p, t: {"case": "C-404"}, ["no case 'C-404'"]),
    (lambda p, t: (add_empty_case(p), {"case": "EMPTY"})[1],
     ["case EMPTY has no counted cells: nothing to report"]),
    (lambda p, t: (t.joinpath("bad.csv").write_text(
        "class,low_percent,high_percent,low_abs,high_abs\nneutrophil,80,40,,\n"),
        {"intervals": t / "bad.csv"})[1], ["bad.csv: line 2", "above high_percent"]),
    (lambda p, t: {"intervals": t / "missing.csv"}, ["missing.csv"]),
    (lambda p, t: {"out": t / "r.docx"}, ["must end in .pdf or .html"]),
    (lambda p, t: (t.joinpath("dir.pdf").mkdir(), {"out": t / "dir.pdf"})[1], ["is a folder"]),
    (lambda p, t: {"out": p / "reports" / "C-001" / "v1" / "report.pdf"},
     ["where signed reports are kept"]),
    (lambda p, t: {"sign": True}, ["needs the reviewer's name"]),
    (lambda p, t: {"reviewer": "a\tb"}, ["reviewer"]),
])
def test_bad_input_is_one_line_and_writes_nothing(project, tmp_path, capsys, change, words):
    args = {"project": project, "case": "C-001", "out": tmp_path / "out.pdf"}
    args.update(change(project, tmp_path))
    argv = ["report", args["project"], "--case", args["case"], "--out", args["out"]]
    for key in ("intervals", "reviewer"):
        if key in args:
            argv += [f"--{key}", args[key]]
    if args.get("sign"):
        argv.append("--sign")
    code, out, err = run(argv, capsys)
    assert code == 2, (out, err)
    assert len(err) == 1 and err[0].startswith("error: "), err
    assert all(w in err[0] for w in words), err
    assert not (tmp_path / "out.pdf").exists()
    assert not (project / "reports").exists()


def test_a_full_disk_keeps_the_previous_out_file(project, tmp_path, capsys, monkeypatch):
    out = tmp_path / "r.pdf"
    out.write_bytes(b"%PDF- the previous report")
    real = os.replace

    def replace(src, dst, *a, **k):
        if os.path.basename(dst) == "r.pdf":
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(src, dst, *a, **k)
    monkeypatch.setattr(os, "replace", replace)
    code, _, err = run(["report", project, "--case", "C-001", "--out", out], capsys)
    assert code == 2 and len(err) == 1 and "disk is full" in err[0], err
    assert out.read_bytes() == b"%PDF- the previous report"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["PROJECT", "r.pdf"]
