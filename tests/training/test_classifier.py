"""The per-cell classifier: cells from samples, training, calibration, and the segment stage."""
import json

import numpy as np
import pytest

from classifier_helpers import CLASSES, CODES, tiny_config

from napari_wbcseg.core.batch import run_to_end
from napari_wbcseg.training.data.cell_data import collect_cells
from napari_wbcseg.training.engine.classifier import fit_temperature, train_classifier_steps
from napari_wbcseg.training.data.datasets import synthetic_samples

TINY = tiny_config(epochs=1)


@pytest.fixture(scope="module")
def cells():
    return collect_cells(synthetic_samples(3), CODES, size=64)


def _truth_predict(sample):
    """A segmentation 'network' that returns the sample's own labels as probabilities."""
    from napari_wbcseg.training.data.augment import resample_to_native

    native = resample_to_native(sample)
    sem = np.clip(native.semantic, 0, 2)
    onehot = np.stack([sem == k for k in range(3)]).astype(np.float32)
    cls = np.stack([native.cell_class == c for c in CODES]).astype(np.float32) + 1e-3

    def predict(x):
        h, w = x.shape[2:]
        out = np.zeros((1, 8, h, w), np.float32)
        out[0, :3, : sem.shape[0], : sem.shape[1]] = onehot
        out[0, 3:, : sem.shape[0], : sem.shape[1]] = cls / cls.sum(0)
        out[0, 0, sem.shape[0]:, :] = out[0, 0, :, sem.shape[1]:] = 1
        return out

    return predict


def test_cells_carry_the_labelled_class(cells):
    sample = synthetic_samples(3)
    truth = sorted(int(c) for s in sample for c in s.meta["classes"].values())
    assert len(cells) == len(truth)
    assert sorted((cells.labels + 1).tolist()) == truth
    assert cells.crops.shape[1:] == (5, 64, 64)


def test_cells_from_a_segmenter_match_its_cells():
    s = synthetic_samples(1)[0]
    got = collect_cells([s], CODES, predict=_truth_predict(s), multiple=1, size=64)
    assert sorted((got.labels + 1).tolist()) == sorted(s.meta["classes"].values())


def test_training_runs_and_calibrates(cells):
    result = run_to_end(train_classifier_steps(cells, cells, CLASSES, TINY))
    assert result.best_epoch == 1 and 0.25 <= result.temperature <= 4.0
    assert float(result.model.temperature) == pytest.approx(result.temperature)


def test_no_labelled_cell_and_single_class_are_refused(cells):
    empty = cells.subset([])
    with pytest.raises(ValueError, match="no labelled cell"):
        run_to_end(train_classifier_steps(empty, empty, CLASSES, TINY))
    one = cells.subset(np.flatnonzero(cells.labels == cells.labels[0]))
    with pytest.raises(ValueError, match="only one class"):
        run_to_end(train_classifier_steps(one, one, CLASSES, TINY))


def test_temperature_is_recovered():
    rng = np.random.default_rng(0)
    true = rng.normal(0, 2, (4000, 5))
    p = np.exp(true) / np.exp(true).sum(1, keepdims=True)
    labels = np.array([rng.choice(5, p=row) for row in p])
    assert fit_temperature(true * 3.0, labels) == pytest.approx(3.0, rel=0.1)


@pytest.fixture
def installed(tiny_classifier):
    """The conftest's tiny classifier, installed as a user classifier beside 'tiny'."""
    return tiny_classifier


def test_segment_takes_cell_types_from_the_installed_classifier(installed, tiny_model):
    from napari_wbcseg import segment
    from napari_wbcseg.core.synthetic import synthetic_smear

    img = synthetic_smear((256, 320), seed=2).image
    res = segment(img, model=tiny_model, cell_diameter=None)
    assert res.classifier == installed
    head = segment(img, model=tiny_model, cell_diameter=None, classifier="none")
    assert head.classifier == ""
    assert len(res.table) > 0  # the seeded tiny network finds cells here
    none = segment(img, model=tiny_model, cell_diameter=None, class_threshold=1.0)
    assert len(none.table) == len(res.table)
    assert (none.table["class_code"] == 255).all()  # nothing is that sure


def test_classifier_of_another_class_table_is_not_used(installed, tiny_model):
    from napari_wbcseg.io.classifier_store import classifier_for, user_classifier_dir

    card_path = user_classifier_dir() / f"{installed}.json"
    card = json.loads(card_path.read_text())
    card["classes"] = card["classes"][:3] + [{"code": 6, "name": "blast", "color": "#000"}]
    assert classifier_for(CLASSES).name == installed  # before: the user's own is chosen
    card_path.write_text(json.dumps(card))
    found = classifier_for(CLASSES)
    # the bundled classifier (the five default classes) takes over; never the changed one
    assert found is not None and found.name != installed and found.origin == "bundled"


def test_head_probabilities_per_cell_and_their_fusion():
    from napari_wbcseg.inference.classify import cell_mean_probabilities, fuse

    cells = np.zeros((4, 4), np.int64)
    cells[:2, :2], cells[2:, 2:] = 1, 2
    probs = np.zeros((2, 4, 4))
    probs[0][cells == 1], probs[1][cells == 1] = 0.9, 0.1
    probs[0][cells == 2], probs[1][cells == 2] = 0.2, 0.8
    head = cell_mean_probabilities(cells, probs, [2, 1])
    assert np.allclose(head, [[0.2, 0.8], [0.9, 0.1]])
    clf = np.array([[0.7, 0.3], [0.4, 0.6]])
    assert np.array_equal(fuse(clf, head, 0.0), clf)
    assert np.allclose(fuse(clf, head, 1.0), head)
    both = fuse(clf, head, 0.5)
    assert np.allclose(both.sum(1), 1) and both[0].argmax() == 1 and both[1].argmax() == 0


def test_head_weight_applies_only_to_the_model_it_was_chosen_for(installed):
    from napari_wbcseg.core.synthetic import synthetic_smear
    from napari_wbcseg.inference.classify import classify_cells, load_classifier

    sm = synthetic_smear((256, 320), seed=3)
    clf = load_classifier(installed)
    clf.entry.card["head_weights"] = {"strong-model": 1.0}
    # a head that is sure every cell is a basophil
    head = np.zeros((5, *sm.nucleus.shape), np.float32)
    head[4] = 1.0
    alone = classify_cells(sm.image, sm.nucleus, sm.cytoplasm, clf, threshold=0.0,
                           head_probs=head, segmenter="other-model")
    fused = classify_cells(sm.image, sm.nucleus, sm.cytoplasm, clf, threshold=0.0,
                           head_probs=head, segmenter="strong-model")
    assert set(fused.codes.values()) == {5}
    plain = classify_cells(sm.image, sm.nucleus, sm.cytoplasm, clf, threshold=0.0)
    assert alone.codes == plain.codes
