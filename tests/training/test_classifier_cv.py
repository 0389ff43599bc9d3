"""Cross-validated classifier training: group-aware folds, out-of-fold choices, the ensemble."""
import numpy as np
import pytest
import torch

from classifier_helpers import CLASSES, CODES, tiny_config

from napari_wbcseg.core.batch import run_to_end
from napari_wbcseg.models.cell_classifier import create_classifier, first_member_state
from napari_wbcseg.training.data.cell_data import collect_cells
from napari_wbcseg.training.data.datasets import synthetic_samples
from napari_wbcseg.training.engine.classifier import predict_logits, train_classifier_steps
from napari_wbcseg.training.engine.classifier_cv import group_folds, train_cross_validated

TINY = tiny_config(epochs=2)


@pytest.fixture(scope="module")
def cells():
    return collect_cells(synthetic_samples(6), CODES, size=64)


def test_folds_keep_each_group_together_and_are_balanced(cells):
    fold = group_folds(cells, 3, seed=0)
    for g in set(cells.groups):
        assert len({int(f) for f, h in zip(fold, cells.groups) if h == g}) == 1
    sizes = np.bincount(fold, minlength=3)
    assert set(fold.tolist()) == {0, 1, 2} and sizes.max() - sizes.min() <= 8
    assert (group_folds(cells, 3, seed=0) == fold).all()


def test_fewer_groups_than_folds_or_a_bad_k_is_refused(cells):
    two = cells.subset([i for i, g in enumerate(cells.groups) if g in sorted(set(cells.groups))[:2]])
    with pytest.raises(ValueError, match="at least 3 image groups"):
        group_folds(two, 3)
    for k in (1, 9, 2.0):
        with pytest.raises(ValueError, match="folds must be"):
            group_folds(cells, k)


def test_cross_validation_returns_the_ensemble_of_its_folds(cells):
    events = []
    result = run_to_end(train_cross_validated(cells, CLASSES, TINY, folds=3), events.append)
    model = result.model
    assert model.config["members"] == 3 and len(model.nets) == 3
    assert 1 <= result.best_epoch <= 2 and len(result.history) == 2
    assert result.selection["n"] == len(cells)  # every training cell scored once, out of fold
    assert sum(result.selection["out_of_fold"]["cells_per_fold"]) == len(cells)
    assert float(model.temperature) == pytest.approx(result.temperature)
    assert sum("fold 3 of 3" in getattr(e, "message", "") for e in events) == 1
    # the ensemble's logits are the mean of its members' logits
    x = torch.rand(3, 5, 64, 64)
    model.eval()
    with torch.no_grad():
        mean = torch.stack([net((x - 0.5) / 0.5) for net in model.nets]).mean(0)
        assert torch.allclose(model(x), mean, atol=1e-5)
    # members differ: each trained on other folds
    a, b = (dict(net.named_parameters())["classifier.weight"] for net in model.nets[:2])
    assert not torch.equal(a, b)


def test_an_ensemble_saves_loads_and_fine_tunes_from_its_first_member(cells, tmp_path):
    from napari_wbcseg.models.weights import load_weights, save_weights

    result = run_to_end(train_cross_validated(cells, CLASSES, TINY, folds=2))
    path = save_weights(result.model, tmp_path / "ens.safetensors", {"name": "ens"})
    state, meta = load_weights(path)
    again = create_classifier(meta["architecture"], **meta["config"])
    again.load_state_dict(state)
    again.precision = "fp32"
    assert np.allclose(predict_logits(again, cells.crops[:4]),
                       predict_logits(result.model, cells.crops[:4]), atol=1e-4)
    single = first_member_state(state)
    assert not any(k.startswith("nets.") for k in single) and "temperature" in single
    events = []
    tuned = run_to_end(train_classifier_steps(cells, cells, CLASSES, TINY,
                                              initial_state=state), events.append)
    assert "members" not in tuned.model.config
    assert any("first model of its ensemble" in getattr(e, "message", "") for e in events)


def test_too_many_members_are_refused_before_anything_is_built():
    with pytest.raises(ValueError, match="members must be an integer 1..8"):
        create_classifier("cell-classifier-lite0", num_classes=5, crop_size=64, members=10**6)


def test_a_card_asking_for_a_huge_ensemble_is_refused():
    from napari_wbcseg.io.classifier_store import ClassifierCardError, check_card

    card = {"kind": "cell-classifier", "classes": CLASSES, "config": {"members": 10**9}}
    with pytest.raises(ClassifierCardError, match="config.members"):
        check_card(card)
    card["config"]["members"] = 4
    assert check_card(card) is card
