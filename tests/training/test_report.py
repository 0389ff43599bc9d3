"""Paper-style evaluation: region metrics, cell-type confusion, tables and CSV."""
import csv

import numpy as np

from napari_wbcseg.training.report import format_report, score_image, write_csv


def _probs_from(semantic, cell_class, n_classes=5):
    """One-hot probabilities that reproduce ``semantic`` (0/1/2) and ``cell_class``."""
    h, w = semantic.shape
    p = np.zeros((3 + n_classes, h, w), np.float32)
    for c in range(3):
        p[c] = semantic == c
    cls = np.where(cell_class >= 1, cell_class, 1)
    for k in range(n_classes):
        p[3 + k] = cls == k + 1
    return p


def _cell():
    sem = np.zeros((40, 40), np.uint8)
    sem[5:25, 5:25] = 1
    sem[10:20, 10:20] = 2
    cls = np.where(sem > 0, 2, 0).astype(np.uint8)
    return sem, cls


def test_perfect_prediction_scores_perfectly():
    sem, cls = _cell()
    out = score_image(_probs_from(sem, cls), sem, cls)
    for region in ("cell", "nucleus", "cytoplasm"):
        r = out["regions"][region]
        assert r["dice"] == 1 and r["precision"] == 1 and r["miou"] == 1
        assert r["me"] == 0 and r["fpr"] == 0 and r["fnr"] == 0
    assert out["cells"] == [(2, 2)]


def test_errors_show_in_the_right_metrics():
    sem, cls = _cell()
    pred_sem = sem.copy()
    pred_sem[10:20, 10:20] = 1  # nucleus called cytoplasm
    pred_cls = np.where(cls > 0, 3, 0)  # lymphocyte called monocyte
    out = score_image(_probs_from(pred_sem, pred_cls), sem, cls)
    assert out["regions"]["cell"]["dice"] == 1
    assert out["regions"]["nucleus"]["dice"] == 0 and out["regions"]["nucleus"]["fnr"] == 1
    assert 0 < out["regions"]["cytoplasm"]["precision"] < 1
    assert out["cells"] == [(2, 3)]


def test_whole_cell_masks_give_no_nucleus_or_cytoplasm_scores():
    sem, cls = _cell()
    whole = np.where(sem > 0, 3, 0).astype(np.uint8)  # BCISC: cell, parts unknown
    out = score_image(_probs_from(sem, cls), whole, cls)
    assert set(out["regions"]) == {"cell"}


def test_table_and_csv(tmp_path):
    report = {"segmentation_WBC-1": {
        "images": 2, "regions": {"cell": {"precision": 0.9, "dice": 0.8, "miou": 0.85,
                                          "me": 0.05, "fpr": 0.01, "fnr": 0.2}},
        "cell_type_accuracy": 0.5, "confusion": [[1, 1, 0, 0, 0]] + [[0] * 5] * 4}}
    text = format_report(report)
    assert "segmentation_WBC-1 (2 images)" in text and "80.00" in text and "50.00%" in text
    rows = list(csv.DictReader(open(write_csv(report, tmp_path / "e.csv"))))
    assert {"dataset": "segmentation_WBC-1", "region": "cell", "metric": "dice",
            "value": "0.800000"} in rows
    assert any(r["metric"] == "neutrophil->lymphocyte" and r["value"] == "1" for r in rows)
