"""Bad-input corpus of the segmentation API (issue 13): settings out of range, images too
large, images without contrast, broken or hostile model files."""
import json
import math

import numpy as np
import pytest

from napari_wbcseg.inference.segment import ImageTooLargeError, SegmentParams, segment


@pytest.mark.parametrize("kwargs", [
    {"cell_diameter": math.inf}, {"cell_diameter": 1e308}, {"cell_diameter": 0.001},
    {"cell_diameter": math.nan}, {"cell_diameter": "big"}, {"cell_diameter": True},
    {"pixel_size_um": math.nan}, {"pixel_size_um": -1.0}, {"pixel_size_um": math.inf},
    {"tile": 100000}, {"tile": 0}, {"tile": 256.5}, {"overlap": -1}, {"overlap": 512},
    {"batch_size": 0}, {"class_threshold": math.nan}, {"class_threshold": 2},
    {"preprocess": "magic"},
])
def test_segment_params_out_of_range_raise(kwargs):
    with pytest.raises(ValueError):
        SegmentParams(**kwargs)


@pytest.mark.parametrize("kwargs", [{}, {"cell_diameter": 4}, {"cell_diameter": None},
                                    {"cell_diameter": 2000.0, "pixel_size_um": 0.1}])
def test_segment_params_in_range_are_accepted(kwargs):
    SegmentParams(**kwargs)


def test_huge_image_is_refused_before_any_copy(monkeypatch):
    from napari_wbcseg.inference import segment as seg

    from napari_wbcseg.core import image

    monkeypatch.setattr(seg, "MAX_MEGAPIXELS", 1.0)
    monkeypatch.setattr(image, "as_rgb_uint8", lambda *a, **k: pytest.fail("copied"))
    huge = np.broadcast_to(np.zeros(3, np.uint8), (2000, 3000, 3))  # no memory behind it
    with pytest.raises(ImageTooLargeError, match="crop or tile"):
        segment(huge, device="cpu")


def test_rescaled_working_copy_is_bounded_too(tiny_model, monkeypatch):
    from napari_wbcseg.inference import segment as seg

    monkeypatch.setattr(seg, "MAX_MEGAPIXELS", 1.0)
    image = np.random.default_rng(0).integers(0, 255, (200, 200, 3), np.uint8)
    # 4 px cells at the model's 80 px scale: a 4000x4000 working copy
    with pytest.raises(ImageTooLargeError, match="rescaled"):
        segment(image, model=tiny_model, device="cpu", cell_diameter=4)


@pytest.mark.parametrize("value", [0, 255, 37])
def test_constant_image_gives_no_cells_and_a_message(tiny_model, value):
    r = segment(np.full((96, 128, 3), value, np.uint8), model=tiny_model, device="cpu")
    assert len(r.table) == 0 and not r.nucleus.any() and not r.cytoplasm.any()
    assert any("no contrast" in m for m in r.messages)
    assert r.differential["count"].sum() == 0


def _save_model(folder, name, *, nan=False, config=None):
    import torch

    from napari_wbcseg.models import create_model
    from napari_wbcseg.models.weights import save_weights

    model = create_model("wcsegnet-compact")
    if nan:
        with torch.no_grad():
            next(model.parameters()).fill_(float("nan"))
    meta = {"name": name}
    if config is not None:
        meta["config"] = config
    save_weights(model, folder / f"{name}.safetensors", meta)
    (folder / f"{name}.json").write_text(json.dumps({"architecture": "wcsegnet-compact"}))


def test_nan_weights_are_refused_at_load(tiny_model, tmp_path):
    from napari_wbcseg.inference.predictor import ModelLoadError

    _save_model(tmp_path / "models", "broken", nan=True)
    with pytest.raises(ModelLoadError, match="NaN/inf"):
        segment(np.random.default_rng(0).integers(0, 255, (64, 64, 3), np.uint8),
                model="broken", device="cpu")


def test_non_finite_network_output_raises_instead_of_zero_cells(tiny_model, monkeypatch):
    import torch

    from napari_wbcseg.inference.predictor import ModelOutputError, load_model

    module = load_model(tiny_model, "cpu").module
    real = module.predict
    monkeypatch.setattr(module, "predict", lambda x: {
        k: torch.full_like(v, float("nan")) for k, v in real(x).items()})
    image = np.random.default_rng(0).integers(0, 255, (96, 128, 3), np.uint8)
    with pytest.raises(ModelOutputError, match="NaN/inf"):
        segment(image, model=tiny_model, device="cpu", cell_diameter=None)


@pytest.mark.parametrize("config, match", [
    ({"filters": [8, 16, 32, 64, 65536]}, "parameters"),
    ({"blocks_per_stage": 100000}, "bound"),
    ({"filters": list(range(8, 1000))}, "entries"),
    ({"negative_slope": math.inf}, "finite"),
])
def test_hostile_model_config_is_refused_before_building(tiny_model, tmp_path, config, match):
    from napari_wbcseg.inference.predictor import ModelLoadError, load_model
    from napari_wbcseg.models import create_model

    full = {**json.loads(json.dumps(_compact_config())), **config}
    with pytest.raises(ValueError, match=match):
        create_model("wcsegnet-compact", **config)
    _save_model(tmp_path / "models", "hostile", config=full)
    with pytest.raises(ModelLoadError, match=match):
        load_model("hostile", "cpu")


def _compact_config():
    from napari_wbcseg.models import architecture_info

    return architecture_info("wcsegnet-compact")["default_config"]
