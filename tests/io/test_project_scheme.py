"""Projects and class schemes: the scheme is recorded, the table is the authority on codes."""
import json

import numpy as np
import pytest

from napari_wbcseg.core.synthetic import synthetic_smear
from napari_wbcseg.io.project import (PROJECT_FILE, ProjectError, create_project, load_entry,
                                      read_project, save_image_entry)
from napari_wbcseg.schemes import builtin_schemes, save_scheme, scheme_from_classes


@pytest.fixture(scope="module")
def marrow_smear():
    """A smear whose three cells carry marrow codes 7 (blast) and 9 (myelocyte)."""
    sm = synthetic_smear((160, 200), n_wbc=3, seed=3, classes=[1, 2, 3])
    ct = sm.cell_type.copy()
    ct[sm.cell_type == 1], ct[sm.cell_type == 2], ct[sm.cell_type == 3] = 7, 9, 9
    return sm.image, sm.nucleus, sm.cytoplasm, ct


def _doc(folder):
    return json.loads((folder / PROJECT_FILE).read_text())


def test_a_marrow_project_round_trips_with_its_scheme(tmp_path, marrow_smear):
    marrow = builtin_schemes()["marrow-icsh"]
    create_project(tmp_path, "marrow-icsh", pixel_size_um=0.1)
    save_image_entry(tmp_path, "field 1", *marrow_smear)
    doc = _doc(tmp_path)
    assert doc["scheme"] == "marrow-icsh" and doc["scheme_kind"] == "marrow"
    assert [c["code"] for c in doc["classes"]] == list(marrow.codes)
    assert doc["classes"][0] == {"code": 7, "name": "blast", "color": "#e6007e",
                                 "group": "myeloid", "hotkey": "7"}
    project = read_project(tmp_path)
    assert project.scheme == "marrow-icsh" and project.pixel_size_um == 0.1
    assert project.class_scheme() is marrow
    assert [c.hotkey for c in project.classes] == [c.hotkey for c in marrow.classes]
    assert set(np.unique(load_entry(tmp_path, "field 1").cell_type)) == {0, 7, 9}
    # the GUI saves the table back as {code, name, color}: the scheme and hotkeys stay
    table = [{"code": c.code, "name": c.name, "color": c.color} for c in project.classes]
    save_image_entry(tmp_path, "field 2", *marrow_smear, classes=table)
    again = read_project(tmp_path)
    assert again.scheme == "marrow-icsh" and again.class_scheme().by_hotkey["a"].code == 12


def test_a_user_scheme_file_names_the_project_scheme(tmp_path, marrow_smear):
    mine = scheme_from_classes(builtin_schemes()["marrow-icsh"].classes[:14], name="my-marrow",
                               kind="marrow")
    path = save_scheme(mine, tmp_path / "my-marrow.csv")
    save_image_entry(tmp_path / "p", "f", *marrow_smear, scheme=path)
    project = read_project(tmp_path / "p")
    assert project.scheme == "my-marrow" and project.scheme_kind == "marrow"
    scheme = project.class_scheme()
    assert scheme.name == "my-marrow" and scheme.kind == "marrow" and len(scheme) == 15
    assert scheme.default_target == 500
    # the GUI's {code, name, color} round trip keeps a user's scheme and its hotkeys too
    table = [{"code": c.code, "name": c.name, "color": c.color} for c in project.classes]
    save_image_entry(tmp_path / "p", "g", *marrow_smear, classes=table)
    again = read_project(tmp_path / "p")
    assert again.scheme == "my-marrow" and again.class_scheme().by_hotkey["b"].code == 13


def test_old_projects_read_as_the_builtin_they_carry(tmp_path):
    sm = synthetic_smear((160, 200), n_wbc=2, seed=1, classes=[1, 2])
    save_image_entry(tmp_path, "a", sm.image, sm.nucleus, sm.cytoplasm, sm.cell_type)
    doc = _doc(tmp_path)
    assert "scheme" not in doc  # a 5-part project is written as before
    doc["classes"] = [{"code": c["code"], "name": c["name"], "color": c["color"]}
                      for c in doc["classes"]]
    (tmp_path / PROJECT_FILE).write_text(json.dumps(doc))
    project = read_project(tmp_path)
    assert project.scheme is None
    assert project.class_scheme() is builtin_schemes()["blood-5part"]
    assert project.class_scheme().by_hotkey["1"].name == "neutrophil"
    doc["classes"] = doc["classes"][:3]  # a custom table: read as "custom"
    (tmp_path / PROJECT_FILE).write_text(json.dumps(doc))
    assert read_project(tmp_path).class_scheme().name == "custom"


def test_label_codes_missing_from_the_table_are_refused(tmp_path, marrow_smear):
    save_image_entry(tmp_path, "x", *marrow_smear, scheme="marrow-icsh")
    doc = _doc(tmp_path)
    del doc["scheme"], doc["scheme_kind"]
    doc["classes"] = [c for c in doc["classes"] if c["code"] not in (7, 9)]
    (tmp_path / PROJECT_FILE).write_text(json.dumps(doc))
    read_project(tmp_path)  # project.json alone is fine
    message = "labels/x_cell_type.tif uses class codes 7, 9 that the project's class table"
    with pytest.raises(ProjectError, match=message):
        load_entry(tmp_path, "x")
    entry = read_project(tmp_path).entry("x")
    with pytest.raises(ProjectError, match=message):
        load_entry(tmp_path, entry)
    assert load_entry(tmp_path, entry, check=False).cell_type.max() == 9


def test_a_new_table_may_not_orphan_saved_cells(tmp_path, marrow_smear):
    save_image_entry(tmp_path, "x", *marrow_smear, scheme="marrow-icsh")
    before = (tmp_path / PROJECT_FILE).read_text()
    img, nuc, cyt, ct = marrow_smear
    with pytest.raises(ProjectError, match="x_cell_type.tif uses class codes 7, 9"):
        save_image_entry(tmp_path, "y", img, nuc, cyt, np.where(ct > 0, 1, 0).astype(np.uint8),
                         scheme="blood-5part")
    assert (tmp_path / PROJECT_FILE).read_text() == before
    assert not (tmp_path / "labels" / "y_cell_type.tif").exists()


def test_bad_scheme_requests_and_tables(tmp_path, marrow_smear):
    with pytest.raises(ProjectError, match="neither a built-in scheme"):
        create_project(tmp_path, "marrow")
    assert not (tmp_path / PROJECT_FILE).exists()
    create_project(tmp_path)
    assert read_project(tmp_path).scheme == "blood-5part"
    with pytest.raises(ProjectError, match="already a project"):
        create_project(tmp_path, "marrow-icsh")
    with pytest.raises(ProjectError, match="not both"):
        save_image_entry(tmp_path, "x", *marrow_smear, scheme="marrow-icsh", classes=[])
    with pytest.raises(ProjectError, match="codes .7, 9. are not in the project's class table"):
        save_image_entry(tmp_path, "x", *marrow_smear)  # 5-part project
    doc = _doc(tmp_path)
    doc["classes"][1]["code"] = 1
    (tmp_path / PROJECT_FILE).write_text(json.dumps(doc))
    with pytest.raises(ProjectError, match=r"malformed project \(.*duplicate code 1"):
        read_project(tmp_path)
    doc["classes"][1]["code"], doc["scheme_kind"] = 2, "liver"
    (tmp_path / PROJECT_FILE).write_text(json.dumps(doc))
    with pytest.raises(ProjectError, match="scheme kind 'liver'"):
        read_project(tmp_path)
