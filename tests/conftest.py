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
