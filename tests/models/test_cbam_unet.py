"""The CBAM U-Net of Zhu et al. (2023): VGG16 layout, CBAM on the skips, loss, freezing,
ImageNet loading (offline here: simulated with monkeypatch)."""
from __future__ import annotations


import pytest
import torch
from torch import nn

from napari_wbcseg.models import architecture_info, create_model
from napari_wbcseg.models import cbam_unet
from napari_wbcseg.models.cbam_unet import CBAM, CBAMUNet
from napari_wbcseg.models.pretrained import PretrainedUnavailableError

FULL, COMPACT = "cbam-unet-vgg16", "cbam-unet-vgg16-compact"


@pytest.fixture(scope="module")
def full():
    torch.manual_seed(0)
    return create_model(FULL).eval()


@pytest.fixture(scope="module")
def compact():
    torch.manual_seed(0)
    return create_model(COMPACT).eval()


def _layout(seq: nn.Sequential):
    out = []
    for m in seq:
        if isinstance(m, nn.Conv2d):
            out.append(("conv", m.in_channels, m.out_channels, m.kernel_size, m.padding))
        elif isinstance(m, nn.MaxPool2d):
            out.append(("pool", m.kernel_size, m.stride))
        else:
            out.append(type(m).__name__)
    return out


def test_full_encoder_is_torchvision_vgg16_features(full):
    from torchvision.models.vgg import cfgs, make_layers

    reference = make_layers(cfgs["D"])  # exactly torchvision's vgg16().features
    assert _layout(full.encoder) == _layout(reference)
    assert {k: v.shape for k, v in full.encoder.state_dict().items()} == \
           {k: v.shape for k, v in reference.state_dict().items()}
    assert sum(p.numel() for p in full.encoder_parameters()) == 14_714_688


def test_compact_keeps_the_layout_at_a_quarter_width(full, compact):
    """vgg16_bn's layout (a BatchNorm after every conv, to train from scratch) at 1/4 width."""
    from torchvision.models.vgg import cfgs, make_layers

    scale = {3: 3, **{c: c // 4 for c in (64, 128, 256, 512)}}
    expected = [("conv", scale[e[1]], scale[e[2]], *e[3:]) if e[0] == "conv" else e
                for e in _layout(make_layers(cfgs["D"], batch_norm=True))]
    assert _layout(compact.encoder) == expected
    assert 1_000_000 < compact.num_parameters() < 3_000_000
    assert not any(isinstance(m, nn.BatchNorm2d) for m in full.modules())  # VGG16 has none


def test_four_cbams_on_the_skips_at_the_right_scales(full):
    cbams = [m for m in full.modules() if isinstance(m, CBAM)]
    assert len(cbams) == 4
    seen = []
    hooks = [c.register_forward_hook(lambda m, i, o: seen.append((tuple(i[0].shape), o)))
             for c in full.skip_attention]
    concat_inputs = []
    hooks += [stage[0].register_forward_pre_hook(lambda m, i: concat_inputs.append(i[0]))
              for stage in full.decoder]
    try:
        with torch.no_grad():
            full(torch.rand(1, 3, 64, 96))
    finally:
        for h in hooks:
            h.remove()
    assert [s for s, _ in seen] == [(1, 64, 64, 96), (1, 128, 32, 48), (1, 256, 16, 24),
                                    (1, 512, 8, 12)]
    # each decoder stage (deepest first) starts with [attended skip, upsampled deeper map]
    assert [c.shape[1] for c in concat_inputs] == [512 + 512, 256 + 512, 128 + 256, 64 + 128]
    for (_, attended), concat in zip(reversed(seen), concat_inputs):
        assert torch.equal(concat[:, :attended.shape[1]], attended)


def test_cbam_is_channel_then_spatial_attention():
    torch.manual_seed(1)
    cbam = CBAM(32, reduction=16, spatial_kernel=7)
    ca, sa = cbam.channel_attention, cbam.spatial_attention
    assert ca.mlp[0].out_channels == 2 and sa.conv.kernel_size == (7, 7)
    assert sa.conv.in_channels == 2 and sa.conv.out_channels == 1
    with torch.no_grad():
        sa.conv.weight.normal_(0, 1.0)  # a strong, position-dependent spatial gate
    x = torch.randn(2, 32, 9, 11)
    with torch.no_grad():
        y = cbam(x)
        # the channel gate sees both the average- and the max-pooled descriptor
        gate = torch.sigmoid(ca.mlp(x.mean((2, 3), keepdim=True))
                             + ca.mlp(x.amax((2, 3), keepdim=True)))
        assert torch.allclose(ca(x), x * gate, atol=1e-6)
        x1 = x * gate
        pooled = torch.cat([x1.amax(1, keepdim=True), x1.mean(1, keepdim=True)], 1)
        assert torch.allclose(y, x1 * torch.sigmoid(sa.conv(pooled)), atol=1e-6)
        assert not torch.allclose(y, ca(sa(x)), atol=1e-4)


def test_imagenet_normalisation_inside_the_model(compact):
    seen = []
    h = compact.encoder[0].register_forward_pre_hook(lambda m, i: seen.append(i[0]))
    x = torch.rand(1, 3, 32, 32)
    try:
        with torch.no_grad():
            compact(x)
    finally:
        h.remove()
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    assert torch.allclose(seen[0], (x - mean) / std, atol=1e-6)
    assert "mean" not in compact.state_dict() and "std" not in compact.state_dict()


def test_loss_is_focal_gamma_2_plus_dice(compact):
    from napari_wbcseg.training.engine.loop import batch_loss
    from napari_wbcseg.training.engine.losses import focal_loss

    assert compact.loss_config == {"focal_gamma": 2.0, "region": "dice"}
    torch.manual_seed(2)
    x = torch.rand(1, 3, 32, 32)
    sem = torch.zeros(1, 32, 32, dtype=torch.long)
    sem[:, 8:20, 8:20], sem[:, 12:16, 12:16] = 1, 2
    batch = {"image": x.numpy(), "semantic": sem.numpy().astype("uint8"),
             "cell_class": (sem > 0).numpy().astype("uint8")}
    compact.train()
    try:
        _, parts = batch_loss(compact, batch)
        with torch.no_grad():
            logits = compact(x)["semantic"]
    finally:
        compact.eval()
    focal = float(focal_loss(logits, sem, gamma=2.0))
    assert parts["semantic_ce"] == pytest.approx(focal, rel=1e-4)
    assert focal < 0.9 * float(focal_loss(logits, sem, gamma=0.0))  # really focal, not CE
    assert parts["region"] > 0


def _train_step(model, x):
    model.zero_grad(set_to_none=True)
    out = model(x)
    (out["semantic"].sum() + out["cell_type"].sum()).backward()


def test_freeze_encoder_stops_gradients_and_batchnorm_updates():
    torch.manual_seed(3)
    model = CBAMUNet(widths=[4, 8, 8, 16, 16], cbam_reduction=4, norm="batch").train()
    enc_bn = [m for m in model.encoder.modules() if isinstance(m, nn.BatchNorm2d)]
    dec_bn = [m for m in model.decoder.modules() if isinstance(m, nn.BatchNorm2d)]
    assert enc_bn and dec_bn
    model.freeze_encoder(True)
    assert model.training and all(not m.training for m in enc_bn)
    assert all(m.training for m in dec_bn)
    model.eval().train()  # a later train() must not wake the frozen encoder's BN up
    assert all(not m.training for m in enc_bn) and all(m.training for m in dec_bn)
    stats = [m.running_mean.clone() for m in enc_bn]
    x = torch.rand(2, 3, 32, 32)
    _train_step(model, x)
    assert all(torch.equal(s, m.running_mean) for s, m in zip(stats, enc_bn))
    assert all(p.grad is None and not p.requires_grad for p in model.encoder_parameters())
    encoder_ids = {id(p) for p in model.encoder_parameters()}
    others = [p for p in model.parameters() if id(p) not in encoder_ids]
    assert others and all(p.requires_grad and p.grad is not None for p in others)

    model.freeze_encoder(False)
    assert all(m.training for m in enc_bn)
    _train_step(model, x)
    assert all(p.requires_grad and p.grad is not None for p in model.encoder_parameters())
    assert not all(torch.equal(s, m.running_mean) for s, m in zip(stats, enc_bn))


def test_freeze_encoder_in_eval_mode_stays_eval(compact):
    compact.freeze_encoder(True)
    try:
        assert not compact.training
        assert not any(p.requires_grad for p in compact.encoder_parameters())
        assert all(p.requires_grad for p in compact.decoder.parameters())
    finally:
        compact.freeze_encoder(False)
    assert all(p.requires_grad for p in compact.parameters())


def test_load_imagenet_offline_raises_quickly(full, monkeypatch):
    """Offline, the one probe is bounded by its socket timeout (no download is tried):
    checked through what is passed to the socket, not the clock."""
    import socket

    from napari_wbcseg.models import pretrained

    timeouts = []

    def refused(address, timeout=None, *a, **kw):
        timeouts.append(timeout)
        raise OSError("network unreachable")

    monkeypatch.setattr(socket, "create_connection", refused)
    with pytest.raises(PretrainedUnavailableError):
        full.load_imagenet_encoder()
    assert timeouts == [pretrained.PROBE_TIMEOUT_S] and 0 < pretrained.PROBE_TIMEOUT_S <= 5


def test_load_imagenet_probes_then_wraps_download_errors(full, monkeypatch):
    calls = []

    def offline(url, timeout=5.0):
        calls.append(url)
        raise PretrainedUnavailableError("offline")

    monkeypatch.setattr(cbam_unet, "check_reachable", offline)
    before = {k: v.clone() for k, v in full.encoder.state_dict().items()}
    with pytest.raises(PretrainedUnavailableError, match="offline"):
        full.load_imagenet_encoder()
    assert calls == ["https://download.pytorch.org/models/"]

    from torchvision.models import VGG16_Weights

    def broken_download(self, *args, **kwargs):
        raise OSError("connection reset")

    monkeypatch.setattr(cbam_unet, "check_reachable", lambda url, timeout=5.0: None)
    monkeypatch.setattr(type(VGG16_Weights.IMAGENET1K_V1), "get_state_dict", broken_download)
    with pytest.raises(PretrainedUnavailableError, match="connection reset"):
        full.load_imagenet_encoder()
    assert all(torch.equal(v, full.encoder.state_dict()[k]) for k, v in before.items())


def test_load_imagenet_refused_for_the_compact_width(compact, monkeypatch):
    monkeypatch.setattr(cbam_unet, "check_reachable", lambda url, timeout=5.0: None)
    with pytest.raises(PretrainedUnavailableError, match="only for the full width"):
        compact.load_imagenet_encoder()


def test_copy_from_a_torchvision_vgg16(monkeypatch):
    from torchvision.models import vgg16

    def no_network(url, timeout=5.0):
        raise AssertionError("a given state dict must not probe the network")

    monkeypatch.setattr(cbam_unet, "check_reachable", no_network)
    torch.manual_seed(4)
    source = vgg16(weights=None).state_dict()
    model = create_model(FULL)
    decoder_before = {k: v.clone() for k, v in model.decoder.state_dict().items()}
    model.load_imagenet_encoder(source_state_dict=source)
    for k, v in model.encoder.state_dict().items():
        assert torch.equal(v, source["features." + k]), k
    assert all(torch.equal(v, model.decoder.state_dict()[k]) for k, v in decoder_before.items())
    with pytest.raises(ValueError, match="vgg16 features"):
        model.load_imagenet_encoder(source_state_dict={"features.0.weight": torch.zeros(1)})


def test_registry_entries():
    for name in (FULL, COMPACT):
        info = architecture_info(name)
        assert info["family"] == "CBAM U-Net (VGG16)" and "Zhu" in info["paper"]
        assert "M parameters" in info["description"]
    assert architecture_info(FULL)["default_config"]["widths"] == [64, 128, 256, 512, 512]
