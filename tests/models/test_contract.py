"""The contract every registered architecture fulfils (see ``models/base.py``).

Parametrised over ``list_architectures()``: a newly registered model inherits all of
it.  Inputs stay small (64x64, 64x96) so the 64 M-parameter paper model runs in
seconds on two CPU cores.
"""
from __future__ import annotations

import json

import pytest
import torch

from napari_wbcseg.models import architecture_info, create_model, list_architectures
from napari_wbcseg.models.base import SegmentationModel, pad_to_multiple
from napari_wbcseg.models.weights import build_from_file, load_weights, save_weights

ARCHS = list_architectures()


@pytest.fixture(scope="module", params=ARCHS)
def model(request):
    torch.manual_seed(0)
    m = create_model(request.param)
    # non-trivial BN statistics, so eval-mode outputs depend on them
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, torch.nn.modules.batchnorm._BatchNorm):
                mod.running_mean.uniform_(-0.1, 0.1)
                mod.running_var.uniform_(0.8, 1.2)
    return m.eval()


def _image(n, h, w, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, h, w, generator=g)


def _state_equal(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_attributes_and_config(model, record_property):
    assert isinstance(model, SegmentationModel)
    assert model.architecture in ARCHS
    assert model.size_multiple >= 1 and model.num_classes >= 1
    config = json.loads(json.dumps(model.config))  # JSON-serialisable, survives a round trip
    assert config == model.config
    assert config == architecture_info(model.architecture)["default_config"]
    rebuilt = create_model(model.architecture, **config)
    assert {k: v.shape for k, v in rebuilt.state_dict().items()} == \
           {k: v.shape for k, v in model.state_dict().items()}
    n = model.num_parameters()
    assert n == sum(p.numel() for p in model.parameters()) > 0
    record_property("parameters", n)
    print(f"{model.architecture}: {n:,} parameters")


@pytest.mark.parametrize("hw", [(64, 96), (96, 64), (64, 64)])
def test_forward_shapes(model, hw):
    x = _image(1, *hw)
    with torch.no_grad():
        out = model(x)
    assert set(out) == {"semantic", "cell_type"}
    assert out["semantic"].shape == (1, 3, *hw)
    assert out["cell_type"].shape == (1, model.num_classes, *hw)
    for v in out.values():
        assert v.dtype == torch.float32 and torch.isfinite(v).all()


def test_input_not_multiple_raises(model):
    m = model.size_multiple
    if m == 1:
        pytest.skip("any size is allowed")
    with pytest.raises(ValueError, match="multiples"):
        model(_image(1, 2 * m + 1, 2 * m))
    with pytest.raises(ValueError, match="shape"):
        model(torch.rand(1, 4, 2 * m, 2 * m))


def _blob_targets(n, h, w):
    """Two cells per image (nucleus inside cytoplasm, a class each), as training sees them."""
    yy, xx = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    sem = torch.zeros(n, h, w, dtype=torch.long)
    cls = torch.zeros(n, h, w, dtype=torch.long)
    for i in range(n):
        for k, (cy, cx, r) in enumerate(((h * 0.3, w * 0.3, 9), (h * 0.65, w * 0.7, 11))):
            d2 = (yy - cy) ** 2 + (xx - cx) ** 2
            sem[i][d2 <= r * r] = 1
            sem[i][d2 <= (r / 2) ** 2] = 2
            cls[i][d2 <= r * r] = 1 + (i + k) % 5
    return sem, cls


def test_forward_backward_odd_size(model):
    """A training step on an odd-sized, padded batch: finite loss, every parameter gets a
    finite gradient (through the model's own loss, deep supervision included)."""
    from napari_wbcseg.training.engine.loop import batch_loss

    x, (h, w) = pad_to_multiple(_image(2, 70, 53, seed=1), model.size_multiple)
    assert x.shape[-2] % model.size_multiple == 0 and x.shape[-1] % model.size_multiple == 0
    H, W = x.shape[-2:]
    sem_t, cls_t = _blob_targets(2, H, W)
    sem_t[:, h:, :] = 255  # the padding is unknown
    sem_t[:, :, w:] = 255
    model.train()
    try:
        model.zero_grad(set_to_none=True)
        out = model(x) if not hasattr(model, "training_loss") else None
        if out is not None:
            assert out["semantic"].shape == (2, 3, H, W)
            assert out["cell_type"].shape == (2, model.num_classes, H, W)
            for extra in out.get("deep_supervision", []):
                assert extra["semantic"].shape == (2, 3, H, W)
        batch = {"image": x.numpy(), "semantic": sem_t.numpy().astype("uint8"),
                 "cell_class": cls_t.numpy().astype("uint8")}
        loss, parts = batch_loss(model, batch)
        loss.backward()
    finally:
        model.eval()
    assert torch.isfinite(loss) and loss.item() > 0
    assert isinstance(parts, dict) and "total" in parts
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        assert p.grad is not None, f"{name} gets no gradient"
        assert torch.isfinite(p.grad).all(), f"{name} has non-finite gradients"
    model.zero_grad(set_to_none=True)


def test_predict_contract(model):
    model.train()
    x = _image(2, 64, 64, seed=3)
    p1 = model.predict(x)
    assert model.training, "predict must restore the train/eval mode"
    model.eval()
    p2 = model.predict(x)
    assert set(p1) == {"semantic", "cell_type"}
    for key in p1:
        assert torch.is_inference(p1[key]) and not p1[key].requires_grad
        assert torch.equal(p1[key], p2[key]), "eval predictions must be deterministic"
        assert p1[key].is_contiguous()
        assert torch.allclose(p1[key].sum(1), torch.ones(()), atol=1e-5)
        assert (p1[key] >= 0).all()
    with torch.no_grad():
        logits = model(x)
    # predict may run channels-last on the CPU: equal up to float rounding
    assert torch.allclose(p1["semantic"], torch.softmax(logits["semantic"], 1), atol=1e-3)


def test_inference_copy(model):
    import copy

    from torch import nn

    trained = copy.deepcopy(model)  # norms as after training, so a wrong fold shows
    gen = torch.Generator().manual_seed(7)
    for bn in trained.modules():
        if isinstance(bn, nn.BatchNorm2d) and bn.running_mean is not None:
            n = bn.num_features
            bn.running_mean.copy_(torch.rand(n, generator=gen) - 0.5)
            bn.running_var.copy_(torch.rand(n, generator=gen) + 0.5)
            bn.weight.data.copy_(torch.rand(n, generator=gen) + 0.5)
            bn.bias.data.copy_(torch.rand(n, generator=gen) * 0.4 - 0.2)
    fused = trained.inference_copy()
    x = _image(1, 64, 64, seed=4)
    a, b = trained.predict(x), fused.predict(x)
    for key in a:
        torch.testing.assert_close(a[key], b[key], atol=1e-3, rtol=1e-3)  # probabilities
    assert not any(p.requires_grad for p in fused.parameters())
    assert any(p.requires_grad for p in trained.parameters()), "original must stay trainable"


def test_save_load_roundtrip(model, tmp_path):
    path = save_weights(model, tmp_path / "m.safetensors", {"classes": [1, 2, 3, 4, 5]})
    state, meta = load_weights(path)
    assert _state_equal(state, model.state_dict())
    assert meta["architecture"] == model.architecture and meta["config"] == model.config
    assert meta["classes"] == [1, 2, 3, 4, 5] and meta["storage_dtype"] == "float32"

    rebuilt = build_from_file(path)
    assert type(rebuilt) is type(model) and rebuilt.architecture == model.architecture
    assert rebuilt.config == model.config and not rebuilt.training
    assert _state_equal(rebuilt.state_dict(), model.state_dict())
    assert rebuilt.weights_metadata["classes"] == [1, 2, 3, 4, 5]
    x = _image(1, 64, 96, seed=5)
    a, b = model.predict(x), rebuilt.predict(x)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_save_load_float16(model, tmp_path):
    p32 = save_weights(model, tmp_path / "m32.safetensors")
    p16 = save_weights(model, tmp_path / "m16.safetensors", dtype="float16")
    assert p16.stat().st_size < 0.6 * p32.stat().st_size
    state, meta = load_weights(p16)
    assert meta["storage_dtype"] == "float16"
    ref = model.state_dict()
    for k, v in state.items():
        assert v.dtype == ref[k].dtype
        torch.testing.assert_close(v, ref[k], atol=1e-3, rtol=1e-3)
    rebuilt = build_from_file(p16)
    x = _image(1, 64, 64, seed=6)
    a, b = model.predict(x), rebuilt.predict(x)
    for k in a:
        torch.testing.assert_close(a[k], b[k], atol=2e-2, rtol=0)


def test_corrupt_and_foreign_files(model, tmp_path):
    bad = tmp_path / "notes.safetensors"
    bad.write_text("this is not a weight file\n")
    with pytest.raises(ValueError, match="not a readable weight file"):
        load_weights(bad)
    with pytest.raises(ValueError, match="not a readable weight file"):
        build_from_file(bad)

    good = save_weights(model, tmp_path / "m.safetensors", dtype="float16")
    data = good.read_bytes()
    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(data[: len(data) - 100])
    with pytest.raises(ValueError, match="not a readable weight file"):
        build_from_file(truncated)
    flipped = bytearray(data)
    flipped[-10] ^= 0xFF  # inside the tensor data: the header stays valid
    (tmp_path / "flipped.safetensors").write_bytes(bytes(flipped))
    with pytest.raises(ValueError, match="checksum"):
        build_from_file(tmp_path / "flipped.safetensors")
    with pytest.raises(FileNotFoundError):
        load_weights(tmp_path / "missing.safetensors")


def test_wrong_architecture_in_file(model, tmp_path):
    from safetensors.torch import save_file

    meta = {"architecture": model.architecture, "config": model.config}
    for arch, config, match in (("no-such-net", meta["config"], "valid architectures"),
                                (meta["architecture"], {"bogus": 1}, "unknown config key")):
        header = {"format": "napari-wbcseg", "format_version": "1",
                  "metadata": json.dumps({**meta, "architecture": arch, "config": config,
                                          "sha256": None})}
        save_file({"w": torch.zeros(2)}, str(tmp_path / "x.safetensors"), metadata=header)
        with pytest.raises(ValueError, match=match) as info:
            build_from_file(tmp_path / "x.safetensors")
        assert "\n" not in str(info.value)
    # right architecture, weights of another shape
    header["metadata"] = json.dumps({**meta, "sha256": None})
    save_file({"w": torch.zeros(2)}, str(tmp_path / "y.safetensors"), metadata=header)
    with pytest.raises(ValueError, match="do not fit"):
        build_from_file(tmp_path / "y.safetensors")
    # a plain safetensors file without our metadata
    save_file({"w": torch.zeros(2)}, str(tmp_path / "plain.safetensors"))
    assert load_weights(tmp_path / "plain.safetensors")[1] == {}
    with pytest.raises(ValueError, match="architecture"):
        build_from_file(tmp_path / "plain.safetensors")
