"""Class tables other than the five blood classes in training targets (issue 15): gapped
codes of blood-extended (11 plasma cell, 17 immature granulocyte, ...) survive the loaders
as codes, become the right classifier indices and come back as the right codes."""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import tifffile

from napari_wbcseg.core.synthetic import synthetic_smear
from napari_wbcseg.schemes import builtin_schemes
from napari_wbcseg.training.data.cell_data import collect_cells
from napari_wbcseg.training.data.class_tables import (ClassTableError, class_index,
                                                      code_of_index, data_class_table,
                                                      keep_table_codes, table_codes)
from napari_wbcseg.training.data.sample import UNKNOWN_CLASS

EXTENDED = builtin_schemes()["blood-extended"]
EXT_CODES = table_codes(EXTENDED.classes)  # (1, 2, 3, 4, 5, 6, 17, 7, 18, 11, 19, 20)
GAPPED = [11, 17, 1, 19]


def _gapped_smear(seed):
    return synthetic_smear((256, 320), n_wbc=4, seed=seed, classes=GAPPED,
                           scheme="blood-extended", pixel_size_um=0.4, rbc_density=0.2)


def _layer_folder(folder, seeds):
    folder.mkdir(parents=True, exist_ok=True)
    for seed in seeds:
        s = _gapped_smear(seed)
        cv2.imwrite(str(folder / f"s{seed}.png"), s.image[..., ::-1])
        tifffile.imwrite(folder / f"s{seed}_nucleus.tif", s.nucleus)
        tifffile.imwrite(folder / f"s{seed}_cytoplasm.tif", s.cytoplasm)
        tifffile.imwrite(folder / f"s{seed}_celltype.tif", s.cell_type)
    return folder


def test_index_and_code_conversions_follow_the_table_order():
    assert EXT_CODES.index(17) == 6 and EXT_CODES.index(11) == 9
    idx = class_index([[0, 11, 17], [255, 1, 8]], EXT_CODES)
    assert idx.tolist() == [[-1, 9, 6], [-1, 0, -1]]
    assert code_of_index([9, 6, 0, -1, 12], EXT_CODES).tolist() == [11, 17, 1, 255, 255]
    cell = np.array([True, True, True, True, False])
    assert keep_table_codes([11, 17, 8, 255, 11], cell, EXT_CODES).tolist() == \
        [11, 17, UNKNOWN_CLASS, UNKNOWN_CLASS, 0]
    assert keep_table_codes([11, 3, 0, 0, 0], cell, None, num_classes=5).tolist() == \
        [UNKNOWN_CLASS, 3, UNKNOWN_CLASS, UNKNOWN_CLASS, 0]


def test_gapped_codes_survive_layer_files_and_come_back(tmp_path):
    from napari_wbcseg.training.data.layer_files import load_layer_folder

    folder = _layer_folder(tmp_path / "layers", [0, 1])
    samples = load_layer_folder(folder, classes=EXTENDED.classes)
    s = _gapped_smear(0)
    ids = np.where(s.nucleus > 0, s.nucleus, s.cytoplasm)
    for cid, code in s.classes.items():
        assert set(np.unique(samples[0].cell_class[ids == cid]).tolist()) == {code}
    cells = collect_cells(samples, EXT_CODES, size=64)
    assert sorted(set(cells.labels.tolist())) == sorted(EXT_CODES.index(c) for c in GAPPED)
    assert sorted(set(code_of_index(cells.labels, EXT_CODES).tolist())) == sorted(GAPPED)
    # the five-class table knows neither 11 nor 17 nor 19: those cells are unknown
    five = load_layer_folder(folder, classes=builtin_schemes()["blood-5part"].classes)
    kept = set(np.unique(five[0].cell_class).tolist())
    assert kept == {0, 1, UNKNOWN_CLASS}


def test_gapped_codes_survive_a_project_and_classes_csv(tmp_path):
    from napari_wbcseg.io.project import save_image_entry
    from napari_wbcseg.training.data.folders import load_image_mask_folder, load_project

    s = _gapped_smear(2)
    save_image_entry(tmp_path / "p", "a", s.image, s.nucleus, s.cytoplasm, s.cell_type,
                     reviewed=True, scheme="blood-extended")
    [sample] = load_project(tmp_path / "p")
    assert set(np.unique(sample.cell_class).tolist()) == {0, *GAPPED}
    assert [c["code"] for c in sample.meta["classes"]] == list(EXT_CODES)
    cells = collect_cells([sample], EXT_CODES, size=64)
    assert sorted(code_of_index(cells.labels, EXT_CODES).tolist()) == sorted(GAPPED)
    # the segmentation head's view: nothing above its 5 classes
    [head] = load_project(tmp_path / "p", num_classes=5)
    assert set(np.unique(head.cell_class).tolist()) == {0, 1, UNKNOWN_CLASS}

    plain = tmp_path / "plain"
    plain.mkdir()
    one = synthetic_smear((128, 160), n_wbc=1, seed=1, pixel_size_um=0.4, rbc_density=0.0)
    cv2.imwrite(str(plain / "x.png"), one.image[..., ::-1])
    cv2.imwrite(str(plain / "x_mask.png"), np.where(one.cell_type > 0, 255, 0).astype(np.uint8))
    (plain / "classes.csv").write_text("image,class\nx.png,Plasma-cell\n")
    [x] = load_image_mask_folder(plain, classes=EXTENDED.classes, complete=True)
    assert x.image_class == 11 and set(np.unique(x.cell_class).tolist()) == {0, 11}
    with pytest.raises(ValueError, match="unknown class 'Plasma-cell'"):
        load_image_mask_folder(plain)  # not a class of the five


def test_data_class_table_project_scheme_and_disagreement(tmp_path):
    from napari_wbcseg.io.project import create_project

    create_project(tmp_path / "m", "marrow-icsh")
    create_project(tmp_path / "b", "blood-5part")
    marrow = data_class_table([tmp_path / "m"])
    assert len(marrow) == 16 and marrow[0] == {"code": 7, "name": "blast",
                                              "color": "#e6007e", "group": "myeloid"}
    assert [r["code"] for r in data_class_table([tmp_path])] == [1, 2, 3, 4, 5]
    assert table_codes(data_class_table([tmp_path], "blood-extended")) == EXT_CODES
    with pytest.raises(ClassTableError, match="different class tables"):
        data_class_table([tmp_path / "m", tmp_path / "b"])
    with pytest.raises(ClassTableError, match="another class table than the scheme"):
        data_class_table([tmp_path / "m"], "blood-extended")
    with pytest.raises(ClassTableError, match="neither a built-in scheme"):
        data_class_table([], "no-such-scheme")


def test_counts_head_classes_and_synthetic_checks():
    from napari_wbcseg.training.data.sample import Sample
    from napari_wbcseg.training.data.sampling import cell_type_counts
    from napari_wbcseg.training.engine.bundle import head_classes

    s = _gapped_smear(3)
    sample = Sample(image=s.image, semantic=(s.cell_type > 0).astype(np.uint8),
                    cell_class=s.cell_type, source="t", group="t", name="t", scale=1.0)
    assert cell_type_counts([sample], codes=[17, 11, 2]).tolist() == [1, 1, 0]
    assert cell_type_counts([sample], 5).tolist() == [1, 0, 0, 0, 0]
    marrow = builtin_schemes()["marrow-icsh"].classes
    assert [r["name"] for r in head_classes(marrow, 5)] == [
        "segmented neutrophil", "lymphocyte", "monocyte", "eosinophil", "basophil"]
    assert [r["code"] for r in head_classes(None, 5)] == [1, 2, 3, 4, 5]
    with pytest.raises(ValueError, match="not in scheme 'blood-extended'"):
        synthetic_smear((128, 128), n_wbc=1, classes=[8], scheme="blood-extended")


def test_train_classifier_scheme_for_a_layer_folder(tmp_path, monkeypatch, capsys):
    from napari_wbcseg.cli import main

    monkeypatch.setenv("NAPARI_WBCSEG_MODELS", str(tmp_path / "models"))
    folder = _layer_folder(tmp_path / "layers", range(8))
    fast = ["--epochs", "1", "--steps", "1", "--batch", "4", "--init", "scratch",
            "--segmenter", "truth"]
    assert main(["train-classifier", "--data", str(folder), "--name", "ext",
                 "--scheme", "blood-extended", *fast]) == 0
    card = json.loads((tmp_path / "models" / "classifiers" / "ext.json").read_text())
    assert tuple(c["code"] for c in card["classes"]) == EXT_CODES
    per_class = np.sum(list(card["training"]["data"]["cells"].values()), axis=0)
    assert all(per_class[EXT_CODES.index(c)] > 0 for c in GAPPED)
    capsys.readouterr()
    # without --scheme the five blood classes: the gapped cells are named, not learnt
    assert main(["train-classifier", "--data", str(folder), "--name", "five", *fast]) == 2
    out = capsys.readouterr()
    assert "codes 11, 17, 19 are not in the class table" in out.out
    assert "only one class" in out.err


def test_a_session_trains_the_classifier_on_the_projects_table(tmp_path):
    from napari_wbcseg.io.project import save_image_entry
    from napari_wbcseg.training.engine import session, session_classifier

    for seed in range(3):
        s = synthetic_smear((360, 480), n_wbc=16, seed=seed, scheme="marrow-icsh",
                            pixel_size_um=0.5, rbc_density=0.1)
        save_image_entry(tmp_path / "m", f"f{seed}", s.image, s.nucleus, s.cytoplasm,
                         s.cell_type, reviewed=True, scheme="marrow-icsh")
    gen = session.prepare(session.SessionParams("x", base_model=None), folders=[tmp_path / "m"])
    with pytest.raises(StopIteration) as stop:
        while True:
            next(gen)
    prepared = stop.value.value
    table = session_classifier._class_table(prepared)
    assert [c["code"] for c in table] == list(table_codes(builtin_schemes()["marrow-icsh"].classes))
    n_train = len(prepared.train)
    assert prepared.data["labelled_training_cells"] == 16 * n_train
    assert prepared.data["head_training_cells"] == 5 * n_train  # codes 1..5 only
    assert session_classifier._skip_reason(prepared, 16 * n_train) == ""


def test_cell_type_image_writes_codes_mapped_onto_the_project():
    from napari_wbcseg.inference.classify import CellClasses, cell_type_image
    from napari_wbcseg.schemes import map_classes

    nucleus = np.array([[1, 0, 2, 0, 3]], np.uint16)
    cytoplasm = np.array([[0, 1, 0, 4, 0]], np.uint16)
    result = CellClasses(codes={1: 11, 2: 17, 3: 1})  # cell 4 not classified
    assert cell_type_image(nucleus, cytoplasm, result).tolist() == [[11, 11, 17, 255, 1]]
    onto_marrow = map_classes(EXTENDED.classes, builtin_schemes()["marrow-icsh"])
    # plasma cell and neutrophil exist in marrow; an immature granulocyte does not
    assert cell_type_image(nucleus, cytoplasm, result, onto_marrow).tolist() == \
        [[11, 11, 255, 255, 1]]
