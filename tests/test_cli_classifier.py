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
