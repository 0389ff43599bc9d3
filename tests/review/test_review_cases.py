import json
import os

import pytest

from napari_wbcseg.review import Case, CaseError, read_cases, remove_case, save_case
from napari_wbcseg.review import store


def _case(**kw):
    d = dict(case_id="C-001", slide_id="S 17/2024", images=["field A", "field B"])
    d.update(kw)
    return Case(**d)


MODEL = {"name": "wbcseg-lite0", "kind": "segmentation", "version": "2026-12-01",
         "sha256": "ab" * 32}


def test_round_trip_and_reopen(project):
    save_case(project, _case(wbc_count=7.5, notes="left arm", models=[MODEL]))
    save_case(project, _case(case_id="M.2", images=["field B"], kind="marrow", target=500))
    doc = json.loads((project / "cases.json").read_text())
    assert doc["format"] == "napari-wbcseg-cases" and len(doc["cases"]) == 2
    cases = read_cases(project)  # a fresh read from disk, as on reopening
    assert list(cases) == ["C-001", "M.2"]
    c = cases["C-001"]
    assert (c.slide_id, c.images, c.kind, c.target, c.wbc_count, c.notes, c.models) == (
        "S 17/2024", ["field A", "field B"], "blood", 100, 7.5, "left arm", [MODEL])
    assert cases["M.2"].target == 500 and cases["M.2"].kind == "marrow"


def test_no_file_means_no_cases(project):
    assert read_cases(project) == {}


def test_duplicate_id_refused_unless_replacing(project):
    save_case(project, _case())
    with pytest.raises(CaseError, match="exists already"):
        save_case(project, _case(target=200))
    assert read_cases(project)["C-001"].target == 100
    save_case(project, _case(target=200), replace=True)
    assert read_cases(project)["C-001"].target == 200


def test_remove_case(project):
    save_case(project, _case())
    save_case(project, _case(case_id="C-002"))
    remove_case(project, "C-001")
    assert list(read_cases(project)) == ["C-002"]
    with pytest.raises(CaseError, match="no case"):
        remove_case(project, "C-001")


@pytest.mark.parametrize("kw, message", [
    ({"case_id": "../evil"}, "case id"),
    ({"case_id": ""}, "case id"),
    ({"case_id": "x" * 65}, "case id"),
    ({"slide_id": " "}, "slide id is empty"),
    ({"slide_id": "a\nb"}, "one line"),
    ({"images": ["field A", "field A"]}, "twice"),
    ({"kind": "urine"}, "kind"),
    ({"target": 0}, "target"),
    ({"target": 10001}, "target"),
    ({"target": True}, "target"),
    ({"target": 100.0}, "target"),
    ({"wbc_count": -1.0}, "WBC count"),
    ({"wbc_count": float("nan")}, "WBC count"),
    ({"models": [{"name": "m"}]}, "model record"),
    ({"models": [dict(MODEL, sha256="xyz")]}, "sha256"),
    ({"models": [dict(MODEL, kind="other")]}, "model kind"),
])
def test_bad_fields_refused_in_one_line_and_nothing_written(project, kw, message):
    with pytest.raises(CaseError, match=message) as err:
        save_case(project, _case(**kw))
    assert "\n" not in str(err.value)
    assert not (project / "cases.json").exists()


def test_image_not_in_project_refused(project):
    with pytest.raises(CaseError, match="'field Z' is not in the project"):
        save_case(project, _case(images=["field A", "field Z"]))
    assert not (project / "cases.json").exists()


def test_case_naming_a_removed_image_is_reported_and_can_be_repaired(project):
    from napari_wbcseg.io.project import remove_entry

    save_case(project, _case())
    remove_entry(project, "field B")
    with pytest.raises(CaseError, match="'field B', which is not in the project"):
        read_cases(project)
    save_case(project, _case(images=["field A"]), replace=True)
    assert read_cases(project)["C-001"].images == ["field A"]


@pytest.mark.parametrize("text, message", [
    ("{not json", "not readable"),
    ('{"format": "other", "version": 1, "cases": []}', "unknown format"),
    ('{"format": "napari-wbcseg-cases", "version": 99, "cases": []}', "newer"),
    ('{"format": "napari-wbcseg-cases", "version": 1, "cases": {}}', "not a list"),
    ('{"format": "napari-wbcseg-cases", "version": 1, "cases": [{"case_id": "a/b", '
     '"slide_id": "s", "images": []}]}', "case id"),
    ('{"format": "napari-wbcseg-cases", "version": 1, "cases": [{"case_id": "a", '
     '"slide_id": "s", "images": [], "extra": 1}]}', "unknown fields"),
    ('{"format": "napari-wbcseg-cases", "version": 1, "cases": [{"case_id": "a", '
     '"slide_id": "s", "images": "field A"}]}', "images must be a list"),
    ('{"format": "napari-wbcseg-cases", "version": 1, "cases": [{"case_id": "a", '
     '"slide_id": "s", "images": []}, {"case_id": "a", "slide_id": "t", "images": []}]}',
     "twice"),
])
def test_corrupt_cases_file_refused_and_left_untouched(project, text, message):
    path = project / "cases.json"
    path.write_text(text)
    with pytest.raises(CaseError, match=message) as err:
        read_cases(project)
    assert "\n" not in str(err.value)
    with pytest.raises(CaseError):
        save_case(project, _case())
    assert path.read_text() == text


def test_oversized_cases_file_refused_before_reading(project):
    path = project / "cases.json"
    with open(path, "wb") as f:  # sparse: no 32 MiB written
        f.truncate(store.MAX_FILE_BYTES + 1)
    with pytest.raises(CaseError, match="more than"):
        read_cases(project)
    assert path.stat().st_size == store.MAX_FILE_BYTES + 1


def test_failed_write_leaves_the_old_file_whole(project, monkeypatch):
    save_case(project, _case())
    before = (project / "cases.json").read_bytes()

    def no_space(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", no_space)
    with pytest.raises(CaseError, match="No space left.*unchanged"):
        save_case(project, _case(case_id="C-002"))
    monkeypatch.undo()
    assert (project / "cases.json").read_bytes() == before
    assert list(read_cases(project)) == ["C-001"]
    assert [p.name for p in project.iterdir() if p.name.startswith(".cases")] == []


def test_not_a_project(tmp_path):
    with pytest.raises(CaseError, match="not a napari-wbcseg project"):
        save_case(tmp_path, _case())
