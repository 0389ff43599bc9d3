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


@pytest.fixture(autouse=True)
def no_modal_dialogs(request, monkeypatch):
    """A modal question in a test would wait for a click forever: fail at once instead.
    Tests answer questions through the docks' own hooks (e.g. ``worse_answer``) or
    monkeypatch the asking function; a test of a dialog itself, which closes it with a
    timer, is marked ``real_dialogs``."""
    if "make_napari_viewer" not in request.fixturenames and "qtbot" not in request.fixturenames:
        return
    if request.node.get_closest_marker("real_dialogs"):
        return

    def refuse(*args, **kwargs):
        raise AssertionError("a modal dialog opened in a test; answer it through the dock's "
                             "test hook or monkeypatch the question")

    from qtpy.QtWidgets import QMessageBox

    monkeypatch.setattr(QMessageBox, "exec", refuse)
    monkeypatch.setattr(QMessageBox, "question", refuse)


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is not beside the repository")
    return SHARED_DATA


def write_synthetic_folder(folder: Path, n: int, shape=(96, 128), n_wbc: int = 1,
                           codes=(1, 2)) -> Path:
    """``n`` synthetic smears as a plain training folder the CLI reads with ``--data``:
    ``sK.png`` + ``sK_mask.png`` (0 background, 1 cytoplasm, 2 nucleus) and a
    ``classes.csv`` giving each image the type of its cell (``codes`` in turn; two types
    by default, so that every split of 8 images has training, inner and validation
    images of each: the split is stratified by image class)."""
    import cv2

    from napari_wbcseg.core.synthetic import synthetic_smear

    folder.mkdir(parents=True)
    rows = ["image,class"]
    for seed in range(n):
        code = codes[seed % len(codes)]
        sm = synthetic_smear(shape, n_wbc=n_wbc, seed=seed, classes=[code])
        mask = np.where(sm.nucleus > 0, 2, np.where(sm.cytoplasm > 0, 1, 0)).astype(np.uint8)
        cv2.imwrite(str(folder / f"s{seed}.png"), np.ascontiguousarray(sm.image[..., ::-1]))
        cv2.imwrite(str(folder / f"s{seed}_mask.png"), mask)
        rows.append(f"s{seed}.png,{code}")
    (folder / "classes.csv").write_text("\n".join(rows) + "\n")
    return folder


@pytest.fixture(scope="session")
def synthetic_data(tmp_path_factory) -> Path:
    """Eight small synthetic smears (one white cell each) in a folder named ``data``,
    shared by the whole session: tests must not change it (copy it first)."""
    return write_synthetic_folder(tmp_path_factory.mktemp("synthetic") / "data", 8)


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
    from napari_wbcseg.training.data.cell_data import collect_cells
    from napari_wbcseg.training.engine.classifier import ClassifierConfig, train_classifier_steps
    from napari_wbcseg.training.engine.classifier_run import write_classifier
    from napari_wbcseg.training.data.datasets import synthetic_samples

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
