"""The binary segmentation metrics against hand-computed values on imperfect predictions."""
import numpy as np
import pytest

from napari_wbcseg.core.metrics import (dice, false_negative_rate, false_positive_rate, iou,
                                        mean_iou_two_class, misclassification_error,
                                        precision, recall)

#            pixel:  0  1  2  3  4  5  6  7  8  9
TRUTH = np.array([1, 1, 1, 1, 0, 0, 0, 0, 0, 0], bool)
PRED = np.array([1, 1, 1, 0, 1, 1, 0, 0, 0, 0], bool)
# TP 3 (pixels 0-2), FN 1 (pixel 3), FP 2 (pixels 4-5), TN 4 (pixels 6-9); 10 pixels

# every value written out by hand from those counts
EXPECTED = {
    dice: 0.6666666666666666,  # 2*3 / (2*3 + 2 + 1) = 6/9
    iou: 0.5,  # 3 / (3 + 2 + 1)
    precision: 0.6,  # 3 / (3 + 2)
    recall: 0.75,  # 3 / (3 + 1)
    # foreground 3 / (3 + 2 + 1) = 0.5; background TN / (TN + FP + FN) = 4 / 7 = 0.571428...
    mean_iou_two_class: 0.5357142857142857,  # (0.5 + 0.5714285714285714) / 2
    misclassification_error: 0.3,  # (2 + 1) / 10
    false_positive_rate: 0.3333333333333333,  # FP / (FP + TN) = 2 / 6
    false_negative_rate: 0.25,  # FN / (TP + FN) = 1 / 4
}

# pixels 3 (the FN) and 4 (a FP) left out: TP 3, FN 0, FP 1, TN 4; 8 pixels count
VALID = np.array([1, 1, 1, 0, 0, 1, 1, 1, 1, 1], bool)
EXPECTED_VALID = {
    dice: 0.8571428571428571,  # 6 / (6 + 1 + 0) = 6/7
    iou: 0.75,  # 3 / 4
    precision: 0.75,  # 3 / 4
    recall: 1.0,  # 3 / 3
    mean_iou_two_class: 0.775,  # (3/4 + 4/5) / 2
    misclassification_error: 0.125,  # 1 / 8
    false_positive_rate: 0.2,  # 1 / (1 + 4)
    false_negative_rate: 0.0,  # 0 / 3
}


@pytest.mark.parametrize("metric", list(EXPECTED), ids=lambda f: f.__name__)
def test_by_hand(metric):
    assert metric(PRED, TRUTH) == pytest.approx(EXPECTED[metric], abs=1e-12)


@pytest.mark.parametrize("metric", list(EXPECTED_VALID), ids=lambda f: f.__name__)
def test_by_hand_with_valid_mask(metric):
    assert metric(PRED, TRUTH, VALID) == pytest.approx(EXPECTED_VALID[metric], abs=1e-12)


@pytest.mark.parametrize("metric", list(EXPECTED), ids=lambda f: f.__name__)
def test_two_dimensional_input_gives_the_same(metric):
    # the same ten pixels as a 2 x 5 image
    assert metric(PRED.reshape(2, 5), TRUTH.reshape(2, 5)) == \
        pytest.approx(EXPECTED[metric], abs=1e-12)


def test_roles_of_prediction_and_truth_are_not_swapped():
    # swapping them turns FP into FN: precision <-> recall, FPR 1/5 and FNR 2/5
    # (TP 3, FP 1, FN 2, TN 4)
    assert precision(TRUTH, PRED) == pytest.approx(0.75)
    assert recall(TRUTH, PRED) == pytest.approx(0.6)
    assert false_positive_rate(TRUTH, PRED) == pytest.approx(0.2)  # 1 / (1 + 4)
    assert false_negative_rate(TRUTH, PRED) == pytest.approx(0.4)  # 2 / (3 + 2)


def test_empty_against_empty_is_perfect():
    empty = np.zeros(6, bool)
    for metric in (dice, iou, precision, recall, mean_iou_two_class):
        assert metric(empty, empty) == 1.0, metric.__name__
    for metric in (misclassification_error, false_positive_rate, false_negative_rate):
        assert metric(empty, empty) == 0.0, metric.__name__


def test_everything_predicted_on_an_empty_truth():
    # TP 0, FP 4, FN 0, TN 0
    full, empty = np.ones(4, bool), np.zeros(4, bool)
    assert dice(full, empty) == 0.0 and iou(full, empty) == 0.0 and precision(full, empty) == 0.0
    assert recall(full, empty) == 1.0  # nothing to find
    assert false_positive_rate(full, empty) == 1.0  # 4 / (4 + 0)
    assert misclassification_error(full, empty) == 1.0
    assert mean_iou_two_class(full, empty) == 0.0  # foreground 0/4, background 0/4


def test_shape_mismatch_is_refused():
    with pytest.raises(ValueError, match="differ in shape"):
        dice(np.zeros(3, bool), np.zeros(4, bool))
