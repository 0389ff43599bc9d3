"""Every bundled model: a complete card, safe loading, a lean package, and real accuracy.

Accuracy is measured here, not read from the card: each bundled model segments
held-out validation images of ``../shared/data`` (the same group-aware split as
training) clearly better than the trivial baseline "every pixel is a cell".
"""
from __future__ import annotations

import numpy as np
import pytest

from napari_wbcseg.io.fetch import sha256_of
from napari_wbcseg.io.model_store import bundled_dir, model_entries
from napari_wbcseg.models import architecture_info, list_architectures

BUNDLED = {name: e for name, e in model_entries().items() if e.origin == "bundled"}
FAMILIES = {architecture_info(a)["family"] for a in list_architectures()}
WEIGHT_BUDGET_MB = 40  # the installed package stays lean
FILE_LIMIT_MB = 20


def test_every_family_ships_a_model():
    shipped = {architecture_info(e.architecture)["family"] for e in BUNDLED.values()}
    assert shipped == FAMILIES, f"families without weights: {sorted(FAMILIES - shipped)}"
    archs = {e.architecture for e in BUNDLED.values()}
    assert "wbcseg-lite0" in archs  # the flagship U-Net; the other encoders train locally


def test_weights_fit_the_package_budget():
    sizes = {p.name: p.stat().st_size for p in bundled_dir().rglob("*.safetensors")}
    total = sum(sizes.values())
    assert total <= WEIGHT_BUDGET_MB * 1024 ** 2, f"{total / 1024 ** 2:.0f} MB of weights"
    big = {n: round(b / 1024 ** 2) for n, b in sizes.items() if b > FILE_LIMIT_MB * 1024 ** 2}
    assert not big, f"weight files over {FILE_LIMIT_MB} MB: {big}"


@pytest.mark.parametrize("name", sorted(BUNDLED))
def test_card_is_complete_and_matches_the_file(name):
    entry = BUNDLED[name]
    card = entry.card
    assert card["architecture"] in list_architectures()
    assert card["weights"]["sha256"] == sha256_of(entry.weights)
    for key in ("config", "classes", "training", "validation", "native_cell_diameter_px"):
        assert key in card, key
    training = card["training"]
    assert training["licences"] and training["hardware"] and training["seconds"] > 0
    summary = card["validation"]["summary"]
    assert 0 < summary["cell_dice"] <= 1


@pytest.fixture(scope="module")
def validation_cells():
    """Held-out Dataset 1 and 2 cells (group-aware split of training, seed 0)."""
    from pathlib import Path

    from napari_wbcseg.training.data.datasets import load_segmentation_wbc, split_by_group

    root = Path(__file__).resolve().parents[2] / "shared" / "data"
    if not (root / "segmentation_WBC").is_dir():
        pytest.skip("../shared/data is not here")
    samples = load_segmentation_wbc(root, 1) + load_segmentation_wbc(root, 2)
    _, val = split_by_group(samples, 0.2, seed=0)
    rng = np.random.default_rng(0)
    picks = {src: [s for s in val if s.source == src] for src in sorted({s.source for s in val})}
    return [s for group in picks.values() for s in rng.permutation(group)[:5]]


@pytest.mark.parametrize("name", sorted(BUNDLED))
def test_segments_validation_cells_better_than_trivial(name, validation_cells):
    from napari_wbcseg.core.metrics import dice
    from napari_wbcseg.models.weights import build_from_file
    from napari_wbcseg.training.data.augment import resample_to_native
    from napari_wbcseg.training.evaluation.evaluate import evaluate, model_predict

    model = build_from_file(BUNDLED[name].weights)

    report = evaluate(model_predict(model), validation_cells, model.size_multiple)
    for source, row in report.items():
        group = [resample_to_native(s) for s in validation_cells if s.source == source]
        trivial = np.mean([dice(np.ones(s.semantic.shape, bool),
                                (s.semantic >= 1) & (s.semantic <= 3), s.semantic <= 3)
                           for s in group])
        assert row["cell_dice"] >= max(0.75, trivial + 0.2), (source, row, trivial)


@pytest.fixture(scope="module")
def smear():
    from napari_wbcseg.core.synthetic import synthetic_smear

    return synthetic_smear(seed=1001)  # training used other seeds


@pytest.mark.parametrize("name", sorted(BUNDLED))
def test_full_pipeline_finds_the_cells_of_a_synthetic_smear(name, smear):
    """The product's path (tiling, post-processing, table) works for every family,
    Mask R-CNN included, and finds the white cells."""
    from napari_wbcseg import segment
    from napari_wbcseg.core.metrics import dice

    result = segment(smear.image, model=name, device="cpu")
    cells = (result.nucleus > 0) | (result.cytoplasm > 0)
    truth = (smear.nucleus > 0) | (smear.cytoplasm > 0)
    assert dice(cells, truth) >= 0.7
    # 255: unidentified by the per-cell classifier (confidence below 0.5)
    assert len(result.table) >= 1 and set(result.table["class_code"]) <= {1, 2, 3, 4, 5, 255}
    assert result.model == name and result.classifier == "cell-classifier-lite0"
    # the head weight is the classifier card's choice for this model (0 where none was made)
    from napari_wbcseg.io.classifier_store import classifier_entries

    card = next(e for e in classifier_entries() if e.name == "cell-classifier-lite0").card
    assert result.head_weight == card.get("head_weights", {}).get(name, 0.0)
    assert ("network head" in result.cell_type_source()) == (result.head_weight > 0)
