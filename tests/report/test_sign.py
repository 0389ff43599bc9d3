"""Signed versions: read-only, never rewritten, a new version each time; a full disk
leaves the old version and the previous file intact."""
import errno
import hashlib
import os
import stat

import pytest

from napari_wbcseg.report import (ReportError, build_report_data, read_signed_json,
                                  sign_case, signed_versions, write_report)
from napari_wbcseg.report import sign as sign_module

from handmade import pdf_lines, value_after


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def test_signing_twice_makes_v1_and_v2_and_keeps_v1(project):
    first = sign_case(project, "C-001", "Dr Ada Smith")
    assert first.version == 1
    assert first.pdf_path == project / "reports" / "C-001" / "v1" / "report.pdf"
    before = {p: p.read_bytes() for p in (first.html_path, first.pdf_path, first.json_path)}
    for p in before:
        assert mode(p) == 0o444, p
    second = sign_case(project, "C-001", "Dr Bo Lee")
    assert second.version == 2 and second.pdf_path.parent.name == "v2"
    assert {p: p.read_bytes() for p in before} == before
    assert [s.version for s in signed_versions(project, "C-001")] == [1, 2]
    _, lines = pdf_lines(second.pdf_path.read_bytes())
    assert value_after(lines, "Reviewer") == "Dr Bo Lee"
    assert value_after(lines, "Report version") == "v2"
    assert "DRAFT" not in " ".join(lines)


def test_the_json_is_the_data_without_pixels_and_checksums_the_files(project):
    signed = sign_case(project, "C-001", "Dr Ada Smith")
    record = read_signed_json(signed)
    assert record["case_id"] == "C-001" and record["reviewer"] == "Dr Ada Smith"
    assert record["report_version"] == 1 and record["signed_at"].endswith("+00:00")
    assert record["files"]["report.pdf"] == hashlib.sha256(
        signed.pdf_path.read_bytes()).hexdigest()
    assert record["files"]["report.html"] == hashlib.sha256(
        signed.html_path.read_bytes()).hexdigest()
    assert sum(record["thumbnails"].values()) == 8
    assert "base64" not in signed.json_path.read_text()


def test_signing_needs_a_reviewer(project):
    with pytest.raises(ReportError, match="needs the reviewer's name"):
        sign_case(project, "C-001", "  ")
    assert not (project / "reports").exists()


def full_disk_on(monkeypatch, name):
    """``os.replace`` onto a file called ``name`` fails as on a full disk."""
    real = os.replace

    def replace(src, dst, *a, **k):
        if os.path.basename(dst) == name:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(src, dst, *a, **k)
    monkeypatch.setattr(os, "replace", replace)


def test_a_full_disk_while_signing_keeps_v1_and_leaves_no_half_version(project, monkeypatch):
    first = sign_case(project, "C-001", "Dr Ada Smith")
    v1 = first.pdf_path.read_bytes()
    full_disk_on(monkeypatch, "report.pdf")
    with pytest.raises(ReportError) as exc:
        sign_case(project, "C-001", "Dr Bo Lee")
    assert "disk is full" in str(exc.value) and "\n" not in str(exc.value)
    assert first.pdf_path.read_bytes() == v1
    assert sorted(p.name for p in (project / "reports" / "C-001").iterdir()) == ["v1"]
    monkeypatch.undo()
    assert sign_case(project, "C-001", "Dr Bo Lee").version == 2


def test_a_full_disk_while_writing_a_report_keeps_the_old_file(project, tmp_path, monkeypatch):
    out = tmp_path / "case.pdf"
    data = build_report_data(project, "C-001")
    write_report(data, out)
    old = out.read_bytes()
    data.notes = "changed"
    full_disk_on(monkeypatch, "case.pdf")
    with pytest.raises(ReportError, match="disk is full; nothing was written"):
        write_report(data, out)
    assert out.read_bytes() == old
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".case")) == []


def test_versions_are_claimed_exclusively(project, monkeypatch):
    """A version folder someone else just created (a second signer) is skipped."""
    folder = project / "reports" / "C-001"
    (folder / "v1").mkdir(parents=True)  # claimed, not yet complete
    assert sign_case(project, "C-001", "Dr Ada Smith").version == 2
    assert [s.version for s in signed_versions(project, "C-001")] == [2]


def test_a_reports_folder_leading_out_of_the_project_is_refused(project, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (project / "reports").symlink_to(elsewhere, target_is_directory=True)
    with pytest.raises(ReportError, match="leads out of the project"):
        sign_case(project, "C-001", "Dr Ada Smith")
    assert list(elsewhere.iterdir()) == []


def test_bad_case_ids_never_become_paths(project):
    with pytest.raises(ReportError, match="case id"):
        sign_module.reports_folder(project, "../x")
