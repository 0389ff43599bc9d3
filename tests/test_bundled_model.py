"""The bundled default network: card, safe loading, and accuracy on a fresh synthetic smear."""
import pickle

import pytest

from napari_wbcseg.core.metrics import dice
from napari_wbcseg.io.fetch import sha256_of
from napari_wbcseg.io.model_store import DEFAULT_MODEL, bundled_dir, find_model, list_models


@pytest.fixture(scope="module")
def smear():
    from napari_wbcseg.core.synthetic import synthetic_smear

    return synthetic_smear(seed=1000)  # training used other seeds


@pytest.fixture(scope="module")
def result(smear):
    from napari_wbcseg import segment

    return segment(smear.image, device="cpu")


def test_default_model_is_bundled_with_a_complete_card():
    assert DEFAULT_MODEL in list_models()
    entry = find_model(None)
    assert entry.origin == "bundled" and entry.weights.parent == bundled_dir()
    card = entry.card
    for key in ("architecture", "config", "classes", "preprocessing", "training", "validation",
                "weights", "native_cell_diameter_px"):
        assert key in card, key
    assert card["weights"]["sha256"] == sha256_of(entry.weights)
    assert [c["name"] for c in card["classes"]] == ["neutrophil", "lymphocyte", "monocyte",
                                                    "eosinophil", "basophil"]
    assert any("licen" in k for k in card["training"])


def test_loading_never_unpickles(monkeypatch):
    from napari_wbcseg.inference.predictor import clear_cache, load_model
    from napari_wbcseg.models import create_model

    # import the network's libraries first (timm subclasses pickle.Unpickler at import);
    # what must not unpickle is the model file
    create_model(find_model(None).architecture)

    def refuse(*args, **kwargs):
        raise AssertionError("a model file was unpickled")

    monkeypatch.setattr(pickle, "loads", refuse)
    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "Unpickler", refuse)
    clear_cache()
    assert load_model(None, "cpu").num_classes == 5
    clear_cache()


def test_finds_the_white_cells_of_a_synthetic_smear(smear, result):
    cells = (result.nucleus > 0) | (result.cytoplasm > 0)
    truth = (smear.nucleus > 0) | (smear.cytoplasm > 0)
    assert dice(cells, truth) >= 0.9
    assert len(result.table) == len(smear.classes)


def test_tiled_and_untiled_agree(smear, result):
    from napari_wbcseg import segment

    crop = smear.image[:384, :512]
    whole = segment(crop, device="cpu", tile=1024)
    tiled = segment(crop, device="cpu", tile=192, overlap=64)
    a = (whole.nucleus > 0) | (whole.cytoplasm > 0)
    b = (tiled.nucleus > 0) | (tiled.cytoplasm > 0)
    assert dice(a, b) >= 0.98
