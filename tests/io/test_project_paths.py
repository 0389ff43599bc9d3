"""Paths read from project.json must stay inside the project folder (no deletion elsewhere)."""
import json
import os

import pytest

from napari_wbcseg.core.synthetic import synthetic_smear
from napari_wbcseg.io.project import (PROJECT_FILE, ProjectError, load_entry, read_project,
                                      remove_entry, save_image_entry)


@pytest.fixture(scope="module")
def smear():
    return synthetic_smear((128, 160), n_wbc=1, seed=5, classes=[1])


@pytest.fixture
def project(tmp_path, smear):
    folder = tmp_path / "project"
    save_image_entry(folder, "a", smear.image, smear.nucleus, smear.cytoplasm, smear.cell_type)
    victim = tmp_path / "elsewhere" / "precious.tif"
    victim.parent.mkdir()
    victim.write_bytes(b"keep me")
    return folder, victim


def _point_entry_at(folder, key, value):
    doc = json.loads((folder / PROJECT_FILE).read_text())
    doc["images"][0][key] = value
    (folder / PROJECT_FILE).write_text(json.dumps(doc))


@pytest.mark.parametrize("key", ["image", "nucleus", "cytoplasm", "cell_type"])
@pytest.mark.parametrize("how", ["dotdot", "absolute", "inner-dotdot"])
def test_paths_leading_out_are_refused_at_load_and_nothing_is_deleted(project, key, how):
    folder, victim = project
    value = {"dotdot": "../elsewhere/precious.tif", "absolute": str(victim),
             "inner-dotdot": "labels/../../elsewhere/precious.tif"}[how]
    _point_entry_at(folder, key, value)
    with pytest.raises(ProjectError, match="project folder"):
        read_project(folder)
    with pytest.raises(ProjectError, match="project folder"):
        remove_entry(folder, "a")
    with pytest.raises(ProjectError, match="project folder"):
        load_entry(folder, "a")
    assert victim.read_bytes() == b"keep me"


def test_symlink_out_of_the_folder_is_refused(project):
    folder, victim = project
    os.symlink(victim.parent, folder / "escape")
    _point_entry_at(folder, "nucleus", "escape/precious.tif")
    with pytest.raises(ProjectError, match="leads out of the project folder"):
        remove_entry(folder, "a")
    assert victim.read_bytes() == b"keep me"


def test_symlink_that_stays_inside_is_accepted(project):
    folder, _ = project
    os.symlink(folder / "labels", folder / "also-labels")
    doc = json.loads((folder / PROJECT_FILE).read_text())
    nucleus = doc["images"][0]["nucleus"]
    _point_entry_at(folder, "nucleus", nucleus.replace("labels/", "also-labels/"))
    assert load_entry(folder, "a").nucleus.shape == (128, 160)


@pytest.mark.parametrize("images", ["images/a.tif", [1], {"name": "a"}, [{"name": 3}]])
def test_malformed_image_list_is_one_project_error(project, images):
    folder, _ = project
    doc = json.loads((folder / PROJECT_FILE).read_text())
    doc["images"] = images
    (folder / PROJECT_FILE).write_text(json.dumps(doc))
    with pytest.raises(ProjectError, match="malformed project"):
        read_project(folder)


def test_deeply_nested_project_json_is_a_project_error(tmp_path):
    (tmp_path / PROJECT_FILE).write_text('{"format": ' + "[" * 100000 + "]" * 100000 + "}")
    with pytest.raises(ProjectError, match="nested more than"):
        read_project(tmp_path)
