"""``napari-wbcseg train-classifier`` / ``classifiers`` on synthetic label layers (no shared data)."""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import tifffile

from napari_wbcseg.cli import main

FAST = ["--epochs", "1", "--steps", "2", "--batch", "4", "--init", "scratch",
        "--segmenter", "truth"]


def _layer_folder(folder, seeds, only_class=None):
    from napari_wbcseg.core.synthetic import synthetic_smear

    folder.mkdir(parents=True, exist_ok=True)
    for seed in seeds:
        sm = synthetic_smear((256, 320), seed=seed)
        cell_type = sm.cell_type if only_class is None else np.where(sm.cell_type > 0,
                                                                     only_class, 0)
        cv2.imwrite(str(folder / f"s{seed}.png"), sm.image[..., ::-1])
        tifffile.imwrite(folder / f"s{seed}_nucleus.tif", sm.nucleus.astype(np.uint16))
        tifffile.imwrite(folder / f"s{seed}_cytoplasm.tif", sm.cytoplasm.astype(np.uint16))
        tifffile.imwrite(folder / f"s{seed}_celltype.tif", cell_type.astype(np.uint8))
    return folder


@pytest.fixture
def user_models(tmp_path, monkeypatch):
    monkeypatch.setenv("NAPARI_WBCSEG_MODELS", str(tmp_path / "user-models"))
    return tmp_path / "user-models"


def test_train_classifier_installs_a_user_classifier(tmp_path, user_models, capsys):
    data = _layer_folder(tmp_path / "layers", range(10))
    assert main(["train-classifier", "--data", str(data), "--name", "mine", *FAST]) == 0
    card = json.loads((user_models / "classifiers" / "mine.json").read_text())
    assert card["kind"] == "cell-classifier" and len(card["classes"]) == 5
    assert card["training"]["data"]["masks_from"] == "truth"
    assert card["training"]["data"]["split_spec"]["seed"] == 0
    assert card["validation"] == {} or card["validation"]["selection_free"] is True
    capsys.readouterr()
    assert main(["classifiers"]) == 0
    assert "mine" in capsys.readouterr().out


def test_one_class_only_is_one_clear_line(tmp_path, user_models, capsys):
    data = _layer_folder(tmp_path / "layers", range(6), only_class=2)
    assert main(["train-classifier", "--data", str(data), *FAST]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "only one class" in err and "\n" not in err
    assert not (user_models / "classifiers").exists() or \
        not list((user_models / "classifiers").iterdir())


def test_bad_threshold_and_unknown_classifier_are_refused(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["segment", "x.png", "--out", str(tmp_path), "--threshold", "1.5"])
    assert exc.value.code == 2
    img = tmp_path / "a.png"
    cv2.imwrite(str(img), np.full((64, 64, 3), 200, np.uint8))
    assert main(["segment", str(img), "--out", str(tmp_path / "o"), "--classifier",
                 "nope"]) == 2
    assert "unknown classifier 'nope'" in capsys.readouterr().err


def test_auto_init_fine_tunes_the_installed_classifier(tmp_path, user_models, capsys):
    data = _layer_folder(tmp_path / "layers", range(10))
    fast = [a for a in FAST if a not in ("--init", "scratch")]
    assert main(["train-classifier", "--data", str(data), "--name", "first", *FAST]) == 0
    capsys.readouterr()
    assert main(["train-classifier", "--data", str(data), "--name", "second", *fast]) == 0
    assert "starting from classifier first" in capsys.readouterr().out
    card = json.loads((user_models / "classifiers" / "second.json").read_text())
    assert "init first" in card["notes"]


def _copy_classifier(src_entry, folder, name, card_edit=None, config_edit=None):
    """A copy of a classifier with its card and/or its weights' config altered."""
    from napari_wbcseg.models.weights import load_weights, save_weights
    from napari_wbcseg.models.cell_classifier import create_classifier

    folder.mkdir(parents=True, exist_ok=True)
    card = json.loads(src_entry.weights.with_suffix(".json").read_text())
    state, meta = load_weights(src_entry.weights)
    if config_edit:
        model = create_classifier(meta["architecture"], **meta["config"])
        model.load_state_dict(state)
        model.config = {**model.config, **config_edit}
        save_weights(model, folder / f"{name}.safetensors", {"name": name})
    else:
        (folder / f"{name}.safetensors").write_bytes(src_entry.weights.read_bytes())
    if card_edit:
        card = card_edit(card)
    (folder / f"{name}.json").write_text(json.dumps(card))
    return folder / f"{name}.safetensors"


def test_hostile_classifier_files_get_one_line_and_never_stop_auto(tmp_path, user_models, capsys):
    from napari_wbcseg.io.classifier_store import classifier_entries, find_classifier

    bundled = find_classifier("cell-classifier-lite0")
    user = user_models / "classifiers"
    _copy_classifier(bundled, user, "noname",
                     lambda c: {**c, "classes": [{"code": 1}] + c["classes"][1:]})
    few = _copy_classifier(bundled, tmp_path / "x", "three",
                           lambda c: {**c, "classes": c["classes"][:3],
                                      "config": {**c["config"], "num_classes": 3}})
    huge = _copy_classifier(bundled, tmp_path / "x", "huge", config_edit={"crop_size": 10 ** 9})
    assert [e.name for e in classifier_entries()] == ["cell-classifier-lite0"]  # skipped
    assert main(["classifiers"]) == 0
    img = tmp_path / "a.png"
    cv2.imwrite(str(img), np.full((64, 64, 3), 200, np.uint8))
    for path in (few, huge):
        capsys.readouterr()
        assert main(["segment", str(img), "--out", str(tmp_path / "o"), "--classifier",
                     str(path)]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("error:") and "\n" not in err, err
    assert not (tmp_path / "o").exists()


def test_training_refuses_bad_names_and_settings_before_writing(tmp_path, user_models, capsys):
    data = _layer_folder(tmp_path / "layers", range(10))
    for extra in (["--name", "../evil"], ["--name", "/tmp/evil"], ["--lr", "inf"],
                  ["--minutes", "-1"], ["--out", str(data / "s0.png")], ["--folds", "0"],
                  ["--folds", "9"], ["--folds", "2", "--init", "some-classifier"]):
        capsys.readouterr()
        assert main(["train-classifier", "--data", str(data), *FAST, *extra]) == 2, extra
        err = capsys.readouterr().err.strip()
        assert err.startswith("error:") and "\n" not in err, err
    assert not list(user_models.rglob("*.safetensors"))
    assert not (user_models / "evil.json").exists()


def test_an_installed_classifier_is_not_replaced_without_overwrite(tmp_path, user_models, capsys):
    data = _layer_folder(tmp_path / "layers", range(10))
    assert main(["train-classifier", "--data", str(data), "--name", "mine", *FAST]) == 0
    before = (user_models / "classifiers" / "mine.safetensors").read_bytes()
    capsys.readouterr()
    assert main(["train-classifier", "--data", str(data), "--name", "mine", *FAST]) == 2
    assert "exists" in capsys.readouterr().err
    assert (user_models / "classifiers" / "mine.safetensors").read_bytes() == before
    assert main(["train-classifier", "--data", str(data), "--name", "mine", "--overwrite",
                 *FAST, "--seed", "1"]) == 0


def test_folds_train_an_ensemble_that_loads_and_classifies(tmp_path, user_models, capsys):
    from napari_wbcseg.inference.classify import load_classifier

    data = _layer_folder(tmp_path / "layers", range(10))
    assert main(["train-classifier", "--data", str(data), "--name", "cv", "--folds", "2",
                 *FAST]) == 0
    assert "fold 2 of 2" in capsys.readouterr().out
    card = json.loads((user_models / "classifiers" / "cv.json").read_text())
    assert card["config"]["members"] == 2 and card["training"]["settings"]["folds"] == 2
    assert card["selection"]["out_of_fold"]["folds"] == 2
    clf = load_classifier("cv")
    assert len(clf.module.nets) == 2
    crops = np.random.default_rng(0).integers(0, 255, (3, 5, 128, 128), dtype=np.uint8)
    p = clf(crops)
    assert p.shape == (3, 5) and np.allclose(p.sum(1), 1, atol=1e-4)
