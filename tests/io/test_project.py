import json

import numpy as np
import pytest

from napari_wbcseg.core.synthetic import synthetic_smear
from napari_wbcseg.io.imread import read_image
from napari_wbcseg.io.project import (FORMAT, PROJECT_FILE, ProjectError, load_entry,
                                      read_project, remove_entry, save_image_entry,
                                      set_reviewed)
from napari_wbcseg.schema import CellClass


@pytest.fixture(scope="module")
def smear():
    return synthetic_smear((160, 200), n_wbc=3, seed=3, classes=[1, 2, 3])


def _layers(sm):
    return sm.nucleus, sm.cytoplasm, sm.cell_type


def test_round_trip_keeps_every_array_and_the_json_layout(tmp_path, smear):
    entry = save_image_entry(tmp_path, "smear 1", smear.image, *_layers(smear), reviewed=True,
                             pixel_size_um=0.2)
    doc = json.loads((tmp_path / PROJECT_FILE).read_text())
    assert doc["format"] == FORMAT and doc["version"] == 1 and doc["pixel_size_um"] == 0.2
    assert [c["code"] for c in doc["classes"]] == [1, 2, 3, 4, 5, 255]
    [img] = doc["images"]
    assert img == {"name": "smear 1", "image": "images/smear_1.tif",
                   "nucleus": "labels/smear_1_nucleus.tif",
                   "cytoplasm": "labels/smear_1_cytoplasm.tif",
                   "cell_type": "labels/smear_1_cell_type.tif",
                   "reviewed": True, "reviewed_cells": None}
    assert entry.image == img["image"]
    # no temporary files left
    assert not [p for p in tmp_path.rglob(".*") if p.is_file()]

    project = read_project(tmp_path)
    assert project.names == ["smear 1"] and project.pixel_size_um == 0.2
    data = load_entry(tmp_path, "smear 1")
    assert np.array_equal(data.image, smear.image)
    for got, want in zip((data.nucleus, data.cytoplasm, data.cell_type), _layers(smear)):
        assert np.array_equal(got, want)
    # the label files reopen in napari as labels with the layer names
    from napari_wbcseg.io.imread import saved_labels_metadata

    meta = saved_labels_metadata(tmp_path / img["cell_type"])
    assert meta["name"] == "smear 1 cell type"


def test_second_image_and_resave_keep_other_entries(tmp_path, smear):
    save_image_entry(tmp_path, "a", smear.image, *_layers(smear))
    save_image_entry(tmp_path, "b", smear.image[:80, :100], *(a[:80, :100] for a in _layers(smear)))
    nuc = np.zeros_like(smear.nucleus)  # resave "a" with its cells removed, image kept
    save_image_entry(tmp_path, "a", None, nuc, nuc, np.zeros_like(smear.cell_type),
                     reviewed=True)
    project = read_project(tmp_path)
    assert project.names == ["a", "b"]
    assert project.entry("a").reviewed and not project.entry("b").reviewed
    a = load_entry(tmp_path, "a")
    assert np.array_equal(a.image, smear.image) and a.nucleus.max() == 0
    assert load_entry(tmp_path, "b").image.shape == (80, 100, 3)


def test_names_that_clash_as_file_names_get_distinct_files(tmp_path, smear):
    save_image_entry(tmp_path, "x/y", smear.image, *_layers(smear))
    save_image_entry(tmp_path, "x y", smear.image, *_layers(smear))
    files = [e.image for e in read_project(tmp_path).entries]
    assert len(set(files)) == 2 and all("/" not in f[len("images/"):] for f in files)


def test_set_reviewed_and_remove(tmp_path, smear):
    save_image_entry(tmp_path, "a", smear.image, *_layers(smear))
    save_image_entry(tmp_path, "b", smear.image, *_layers(smear))
    set_reviewed(tmp_path, "a", False, cells=[2, 1, 2])
    assert read_project(tmp_path).entry("a").reviewed_cells == (1, 2)
    set_reviewed(tmp_path, "b")
    assert read_project(tmp_path).entry("b").reviewed
    image_file = tmp_path / read_project(tmp_path).entry("a").image
    remove_entry(tmp_path, "a")
    assert read_project(tmp_path).names == ["b"] and not image_file.exists()
    with pytest.raises(ProjectError, match="no image called 'a'"):
        set_reviewed(tmp_path, "a")


def test_schema_violations_are_refused_and_nothing_is_written(tmp_path, smear):
    nuc, cyt, ct = _layers(smear)
    with pytest.raises(ProjectError, match="shape"):
        save_image_entry(tmp_path, "a", smear.image, nuc[:-1], cyt[:-1], ct[:-1])
    with pytest.raises(ProjectError, match="both nucleus and cytoplasm"):
        save_image_entry(tmp_path, "a", smear.image, nuc, np.maximum(cyt, nuc), ct)
    bad = ct.copy()
    bad[ct > 0] = 9
    with pytest.raises(ProjectError, match=r"codes \[9\]"):
        save_image_entry(tmp_path, "a", smear.image, nuc, cyt, bad)
    assert not list(tmp_path.iterdir())
    with pytest.raises(ProjectError, match="no image given"):
        save_image_entry(tmp_path, "a", None, nuc, cyt, ct)


def test_custom_class_table_is_kept(tmp_path, smear):
    nuc, cyt, ct = _layers(smear)
    classes = [CellClass(1, "blast", "#ff0000"), {"code": 2, "name": "myelocyte"},
               {"code": 3, "name": "promyelocyte", "color": "#00ff00"},
               CellClass(255, "unidentified", "#a0a0a0")]
    save_image_entry(tmp_path, "a", smear.image, nuc, cyt, ct, classes=classes)
    save_image_entry(tmp_path, "b", smear.image, nuc, cyt, ct)  # keeps the table
    names = [c.name for c in read_project(tmp_path).classes]
    assert names == ["blast", "myelocyte", "promyelocyte", "unidentified"]


def test_grey_16_bit_image_round_trips(tmp_path):
    img = (np.arange(64 * 48, dtype=np.uint16).reshape(48, 64) * 7)
    z = np.zeros((48, 64), np.uint16)
    save_image_entry(tmp_path, "g", img, z, z, z.astype(np.uint8))
    back = load_entry(tmp_path, "g").image
    assert back.dtype == np.uint16 and np.array_equal(back, img)


def test_bad_project_files(tmp_path, smear):
    with pytest.raises(ProjectError, match="no project.json"):
        read_project(tmp_path)
    (tmp_path / PROJECT_FILE).write_text("{not json")
    with pytest.raises(ProjectError, match="not readable JSON"):
        read_project(tmp_path)
    # a corrupt project.json is never overwritten by a save
    with pytest.raises(ProjectError):
        save_image_entry(tmp_path, "a", smear.image, *_layers(smear))
    assert (tmp_path / PROJECT_FILE).read_text() == "{not json"
    (tmp_path / PROJECT_FILE).write_text(json.dumps({"format": "other", "version": 1}))
    with pytest.raises(ProjectError, match="unknown format 'other'"):
        read_project(tmp_path)
    (tmp_path / PROJECT_FILE).write_text(json.dumps({"format": FORMAT, "version": 2}))
    with pytest.raises(ProjectError, match="version 2 was written by a newer"):
        read_project(tmp_path)
    (tmp_path / PROJECT_FILE).write_text(json.dumps({"format": FORMAT, "version": 1,
                                                     "images": [{"name": "a"}]}))
    with pytest.raises(ProjectError, match="lacks image, nucleus"):
        read_project(tmp_path)


def test_missing_or_mismatched_files_are_named(tmp_path, smear):
    save_image_entry(tmp_path, "a", smear.image, *_layers(smear))
    entry = read_project(tmp_path).entry("a")
    (tmp_path / entry.cytoplasm).unlink()
    with pytest.raises(ProjectError, match="'a': cytoplasm file .*a_cytoplasm.tif is missing"):
        load_entry(tmp_path, entry)
    from napari_wbcseg.io.writer import save_labels

    save_labels(tmp_path / entry.cytoplasm, np.zeros((10, 10), np.uint8))
    with pytest.raises(ProjectError, match="'a': cytoplasm labels have shape"):
        load_entry(tmp_path, entry)
    assert read_image(tmp_path / entry.image).shape == smear.image.shape
