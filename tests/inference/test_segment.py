"""The end-to-end pipeline mechanics with a small random network (accuracy: test_bundled)."""
import numpy as np
import pytest

from napari_wbcseg.core.batch import run_to_end
from napari_wbcseg.core.image import ImageFormatError
from napari_wbcseg.inference.predictor import LoadedModel, ModelLoadError
from napari_wbcseg.inference.segment import SegmentParams, segment, segment_steps
from napari_wbcseg.io.model_store import ModelNotFoundError
from napari_wbcseg.schema import check_labels


@pytest.fixture
def smear():
    from napari_wbcseg.core.synthetic import synthetic_smear

    return synthetic_smear(shape=(192, 256), n_wbc=2, seed=3)


def test_outputs_follow_the_schema(tiny_model, smear):
    r = segment(smear.image, model=tiny_model, device="cpu", tile=128, overlap=32)
    check_labels(r.nucleus, r.cytoplasm, r.cell_type)
    assert r.nucleus.shape == smear.image.shape[:2] and r.device == "cpu" and r.model == "tiny"
    assert {"class", "confidence", "cell_area_px", "nc_ratio", "nucleus_lobes"} <= set(r.table.columns)
    assert list(r.differential["class"])[:5] == ["neutrophil", "lymphocyte", "monocyte",
                                                 "eosinophil", "basophil"]
    assert set(r.timings) >= {"predict_s", "postprocess_s", "total_s"}


def test_progress_events_and_cancel(tiny_model, smear):
    params = SegmentParams(model=tiny_model, device="cpu", tile=128, overlap=32)
    events = []
    gen = segment_steps(smear.image, params)
    for ev in gen:
        events.append(ev)
        if ev.stage == "predict" and ev.done == 1:
            gen.close()  # what the widget's Cancel does between tiles
            break
    assert events[0].stage == "load" and events[-1].done == 1 and events[-1].total > 1


@pytest.fixture
def network_inputs(monkeypatch):
    """The (h, w) of every image handed to the tiled network."""
    from napari_wbcseg.inference import tiling

    seen = []
    real = tiling.predict_tiled
    monkeypatch.setattr(tiling, "predict_tiled", lambda work, *a, **kw: (
        seen.append(work.shape[:2]) or (yield from real(work, *a, **kw))))
    return seen


@pytest.mark.parametrize("diameter, work", [
    (160, (96, 128)),  # cells twice the model's 80 px: halved
    (40, (384, 512)),  # cells half of it: doubled
    (80, (192, 256)),  # already at the model's scale
    (None, (192, 256)),  # None: no resizing
])
def test_rescaling_to_the_model_scale(tiny_model, smear, network_inputs, diameter, work):
    r = segment(smear.image, model=tiny_model, device="cpu", cell_diameter=diameter)
    assert network_inputs == [work]
    assert r.nucleus.shape == r.cytoplasm.shape == smear.image.shape[:2]  # back to full size


def test_estimated_cell_size_sets_the_network_scale(tiny_model, network_inputs):
    """"auto": a smear drawn at twice the scale reaches the network at the same scale."""
    from napari_wbcseg.core.scale import estimate_cell_diameter
    from napari_wbcseg.core.synthetic import synthetic_smear

    sm = synthetic_smear(shape=(256, 320), n_wbc=2, seed=1)
    import cv2

    big = cv2.resize(sm.image, (640, 512), interpolation=cv2.INTER_LINEAR)
    d_small, d_big = estimate_cell_diameter(sm.image), estimate_cell_diameter(big)
    assert d_small and d_big and d_big == pytest.approx(2 * d_small, rel=0.2)
    # every window: the coarse pass would show the network a 0.7x copy first
    segment(sm.image, model=tiny_model, device="cpu", tile=256, coarse_pass=False)
    segment(big, model=tiny_model, device="cpu", tile=256, coarse_pass=False)
    (h1, w1), (h2, w2) = network_inputs
    assert (h1, w1) == (round(256 * 80 / d_small), round(320 * 80 / d_small))
    assert (h2, w2) == (round(512 * 80 / d_big), round(640 * 80 / d_big))
    assert abs(h2 - h1) <= 0.2 * h1  # both at about the model's scale, not 2x apart


def test_out_of_memory_falls_back_to_smaller_tiles(tiny_model, smear, monkeypatch):
    original = LoadedModel.__call__

    def picky(self, batch):
        if batch.shape[-1] > 128:
            raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return original(self, batch)

    monkeypatch.setattr(LoadedModel, "__call__", picky)
    r = segment(smear.image, model=tiny_model, device="cpu", tile=512)
    assert any("256 px tiles" in m for m in r.messages) and any("128 px" in m for m in r.messages)


def test_clear_errors(tiny_model, smear, tmp_path):
    with pytest.raises(ModelNotFoundError, match="tiny"):
        segment(smear.image, model="nope", device="cpu")
    bad = tmp_path / "broken.safetensors"
    bad.write_bytes(b"\x00" * 100)
    with pytest.raises(ModelLoadError, match="broken.safetensors"):
        segment(smear.image, model=str(bad), device="cpu")
    with pytest.raises(ImageFormatError, match="channels"):
        segment(np.zeros((64, 64, 2), np.uint8), model=tiny_model, device="cpu")
    with pytest.raises(ValueError, match="preprocess"):
        segment(smear.image, model=tiny_model, device="cpu", preprocess="magic")
    with pytest.raises(ValueError, match="cuda"):
        segment(smear.image, model=tiny_model, device="cuda:7")


def test_model_of_unknown_architecture_is_refused(tiny_model, tmp_path, smear):
    """A well-formed weight file whose architecture the registry does not know."""
    import torch

    from napari_wbcseg.models.weights import save_weights

    alien = torch.nn.Conv2d(3, 4, 1)
    alien.architecture = "no-such-net"
    save_weights(alien, tmp_path / "alien.safetensors", {"config": {}})
    with pytest.raises(ModelLoadError, match="unknown architecture 'no-such-net'"):
        segment(smear.image, model=str(tmp_path / "alien.safetensors"), device="cpu")


def test_an_image_that_fits_one_window_of_1_5_tiles_is_predicted_whole(tiny_model):
    """Tiles would compute the overlaps twice; the evaluators predict whole images too."""
    from napari_wbcseg.core.synthetic import synthetic_smear

    sm = synthetic_smear(shape=(160, 176), n_wbc=2, seed=2)
    totals = {ev.total for ev in segment_steps(sm.image, SegmentParams(
        model=tiny_model, device="cpu", cell_diameter=None, tile=128, overlap=32))
        if ev.stage == "predict"}
    assert totals == {1}  # 160x176 <= 192^2 px: one window instead of 2x2 tiles of 128
