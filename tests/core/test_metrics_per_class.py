"""Per-class (five-class) pixel metrics of Zhu et al. on hand-made label maps."""
import numpy as np
import pytest

from napari_wbcseg.core.metrics import (confusion_matrix, mean_iou, per_class_scores,
                                        pixel_accuracy)


def test_confusion_counts_rows_true_columns_predicted():
    truth = np.array([[0, 0, 1, 1], [2, 2, 2, 0]])
    pred = np.array([[0, 1, 1, 1], [2, 2, 0, 0]])
    c = confusion_matrix(pred, truth, 3)
    assert c.tolist() == [[2, 1, 0],
                          [0, 2, 0],
                          [1, 0, 2]]
    assert c.sum() == truth.size


def test_valid_mask_and_unknown_truth_are_left_out():
    truth = np.array([0, 1, 255, 1])
    pred = np.array([1, 1, 1, 0])
    assert confusion_matrix(pred, truth, 2).tolist() == [[0, 1], [1, 1]]  # 255 dropped
    valid = np.array([False, True, True, True])
    assert confusion_matrix(pred, truth, 2, valid).tolist() == [[0, 0], [1, 1]]


def test_bad_input_is_refused():
    with pytest.raises(ValueError):
        confusion_matrix(np.zeros(3, int), np.zeros(4, int), 2)
    with pytest.raises(ValueError):
        confusion_matrix(np.array([0, 5]), np.array([0, 1]), 2)
    with pytest.raises(ValueError):
        per_class_scores(np.zeros((2, 3)))


def test_per_class_scores_by_hand():
    # 10 pixels, classes 0/1/2.  Class 1: TP 2, FP 1, FN 1, TN 6.
    c = np.array([[4, 1, 0],
                  [1, 2, 0],
                  [0, 0, 2]])
    s = per_class_scores(c)
    assert s["precision"][1] == pytest.approx(2 / 3)
    assert s["recall"][1] == pytest.approx(2 / 3)
    assert s["f1"][1] == pytest.approx(2 / 3)  # 2PR / (P + R)
    assert s["iou"][1] == pytest.approx(2 / 4)
    assert s["accuracy"][1] == pytest.approx(8 / 10)  # (TP + TN) / all
    # class 0: TP 4, FP 1, FN 1
    assert s["iou"][0] == pytest.approx(4 / 6) and s["precision"][0] == pytest.approx(0.8)
    # class 2 perfect
    assert s["iou"][2] == s["f1"][2] == s["accuracy"][2] == 1
    assert mean_iou(c) == pytest.approx((4 / 6 + 0.5 + 1) / 3)
    assert mean_iou(c, [1, 2]) == pytest.approx(0.75)
    assert pixel_accuracy(c) == pytest.approx(0.8)


def test_f1_matches_harmonic_mean_of_p_and_r():
    rng = np.random.default_rng(1)
    c = rng.integers(1, 50, (6, 6))
    s = per_class_scores(c)
    p, r = s["precision"], s["recall"]
    np.testing.assert_allclose(s["f1"], 2 * p * r / (p + r))


def test_absent_class_is_not_scored_missed_class_scores_zero():
    # class 2 never in truth nor prediction; class 3 in truth, never predicted;
    # class 1 predicted, never true.
    c = np.array([[5, 1, 0, 0],
                  [0, 0, 0, 0],
                  [0, 0, 0, 0],
                  [2, 0, 0, 0]])
    s = per_class_scores(c)
    assert all(np.isnan(s[k][2]) for k in s)
    assert s["recall"][3] == 0 and s["precision"][3] == 0 and s["iou"][3] == 0
    assert s["precision"][1] == 0 and s["recall"][1] == 0
    assert mean_iou(c) == pytest.approx((5 / 8 + 0 + 0) / 3)  # class 2 left out
    assert np.isnan(mean_iou(np.zeros((3, 3), int)))
    assert np.isnan(pixel_accuracy(np.zeros((3, 3), int)))
