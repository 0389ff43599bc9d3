import json
import sys

# torch's optimizers import triton lazily; triton's bundled LLVM segfaults when Mesa's
# llvmpipe (the software OpenGL of the Xvfb GUI tests) is already loaded in the same
# process.  The tests run on the CPU and never need triton, so make it unavailable.
sys.modules.setdefault("triton", None)
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is not beside the repository")
    return SHARED_DATA


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path, monkeypatch):
    """Never touch the user's real cache or the network from tests."""
    monkeypatch.setenv("NAPARI_WBCSEG_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("NAPARI_WBCSEG_DATA_MIRROR", raising=False)



@pytest.fixture
def tiny_model(tmp_path, monkeypatch):
    """A randomly initialised compact WCSegNet saved as a user model called 'tiny'."""
    import torch

    from napari_wbcseg.inference.predictor import clear_cache
    from napari_wbcseg.models import create_model
    from napari_wbcseg.models.weights import save_weights

    folder = tmp_path / "models"
    folder.mkdir()
    monkeypatch.setenv("NAPARI_WBCSEG_MODELS", str(folder))
    torch.manual_seed(0)
    save_weights(create_model("wcsegnet-compact"), folder / "tiny.safetensors", {"name": "tiny"})
    (folder / "tiny.json").write_text(json.dumps({
        "architecture": "wcsegnet-compact", "native_cell_diameter_px": 80,
        "validation": {"summary": {"cell_dice": 0.5}}}))
    clear_cache()
    yield "tiny"
    clear_cache()


@pytest.fixture
def tiny_classifier(tiny_model):
    """A tiny classifier (64 px crops, 2 batches) for the five blood classes, installed as
    the user classifier 'tiny-classifier' beside the 'tiny' model."""
    from napari_wbcseg.core.batch import run_to_end
    from napari_wbcseg.inference.classify import clear_cache
    from napari_wbcseg.io.classifier_store import user_classifier_dir
    from napari_wbcseg.schema import DEFAULT_CLASSES, UNIDENTIFIED
    from napari_wbcseg.training.cell_data import collect_cells
    from napari_wbcseg.training.classifier import ClassifierConfig, train_classifier_steps
    from napari_wbcseg.training.classifier_run import write_classifier
    from napari_wbcseg.training.datasets import synthetic_samples

    classes = [{"code": c.code, "name": c.name, "color": c.color} for c in DEFAULT_CLASSES
               if c.code != UNIDENTIFIED]
    cells = collect_cells(synthetic_samples(3), [c["code"] for c in classes], size=64)
    config = ClassifierConfig(crop_size=64, epochs=1, steps_per_epoch=2, batch_size=4,
                              imagenet=False, precision="fp32")
    result = run_to_end(train_classifier_steps(cells, cells, classes, config))
    write_classifier(user_classifier_dir(), "tiny-classifier", result, classes=classes,
                     data={}, validation={})
    clear_cache()
    yield "tiny-classifier"
    clear_cache()
