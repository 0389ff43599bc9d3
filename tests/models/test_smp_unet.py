"""U-Nets with ImageNet encoders (Bendiabdallah & Settouti) on segmentation-models-pytorch."""
from __future__ import annotations


import pytest
import torch

from napari_wbcseg.models import UNET_ENCODERS, architecture_info, create_model
from napari_wbcseg.models.pretrained import PretrainedUnavailableError, check_reachable

PAPER_ENCODERS = {"mobilenet", "mobilenetv2", "resnet18", "resnet34", "resnet50", "resnet152",
                  "vgg16", "vgg19"}


def test_the_papers_eight_encoders_are_registered():
    lite = {"efficientnet-lite0", "efficientnet-lite1", "efficientnet-lite2"}  # ours, offline ImageNet
    assert set(UNET_ENCODERS) == PAPER_ENCODERS | lite
    for suffix, encoder in UNET_ENCODERS.items():
        info = architecture_info(f"unet-{suffix}")
        assert info["default_config"]["encoder"] == encoder
        assert info["default_config"]["loss"] == "cross-entropy"


@pytest.mark.parametrize("suffix, blocks", [("resnet18", [2, 2, 2, 2]), ("resnet50", [3, 4, 6, 3]),
                                            ("resnet152", [3, 8, 36, 3])])
def test_resnet_encoders_have_the_published_depth(suffix, blocks):
    model = create_model(f"unet-{suffix}")
    enc = model.net.encoder
    assert [len(getattr(enc, f"layer{i}")) for i in range(1, 5)] == blocks


def test_vgg_and_mobilenet_encoders_are_the_real_ones():
    convs = lambda m: sum(isinstance(x, torch.nn.Conv2d) for x in m.net.encoder.modules())
    assert convs(create_model("unet-vgg16")) == 13
    assert convs(create_model("unet-vgg19")) == 16
    mobilenet = create_model("unet-mobilenet")
    depthwise = [m for m in mobilenet.net.encoder.modules()
                 if isinstance(m, torch.nn.Conv2d) and m.groups > 1 and m.groups == m.in_channels]
    assert len(depthwise) == 13  # MobileNet v1: 13 depthwise-separable blocks


def test_decoder_widths_and_heads():
    model = create_model("unet-resnet18", decoder_channels=[64, 32, 16, 16, 8], num_classes=7)
    assert model.cell_type_head.in_channels == 8 and model.cell_type_head.out_channels == 7
    out = model.eval()(torch.rand(1, 3, 64, 64))
    assert out["cell_type"].shape == (1, 7, 64, 64)
    with pytest.raises(ValueError, match="5 widths"):
        create_model("unet-resnet18", decoder_channels=[64, 32])
    with pytest.raises(ValueError, match="loss"):
        create_model("unet-resnet18", loss="hinge")


def test_deep_supervision_trains_every_scale_and_leaves_inference_alone():
    from napari_wbcseg.training.engine.loop import batch_loss

    torch.manual_seed(0)
    plain = create_model("wbcseg-lite0")
    assert plain.config["deep_supervision"] is False
    model = create_model("wbcseg-lite0", deep_supervision=True)
    assert model.config["deep_supervision"] is True
    x = torch.rand(2, 3, 64, 96)
    model.train()
    out = model(x)
    branches = out["deep_supervision"]
    assert [b.get("weight", 1.0) for b in branches] == [1.0, 0.5, 0.5, 0.5]
    for b, f in zip(branches, (1, 8, 4, 2)):
        assert b["semantic"].shape == (2, 3, 64 // f, 96 // f)
        assert b["cell_type"].shape == (2, 5, 64 // f, 96 // f)
    sem = torch.randint(0, 3, (2, 64, 96), dtype=torch.uint8)
    cls = torch.randint(0, 6, (2, 64, 96), dtype=torch.uint8)
    loss, _ = batch_loss(model, {"image": x.numpy(), "semantic": sem.numpy(),
                                 "cell_class": cls.numpy()})
    loss.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0
               for p in [*model.aux_semantic.parameters(), *model.aux_cell_type.parameters()])
    # the same weights without the auxiliary heads predict the same: inference ignores them
    plain.load_state_dict({k: v for k, v in model.state_dict().items() if not k.startswith("aux_")})
    model.eval(), plain.eval()
    with torch.no_grad():
        a, b = model(x), plain(x)
    assert set(a) == {"semantic", "cell_type"}
    assert torch.allclose(a["semantic"], b["semantic"], atol=1e-5)


def test_loss_choice_maps_to_the_paper():
    ce = create_model("unet-resnet18").loss_config
    dice = create_model("unet-resnet18", loss="dice").loss_config
    assert ce == {"dice_weight": 0.0}
    assert dice["semantic_weight"] == 0.0 and dice["dice_weight"] == 1.0


def test_normalisation_inside_the_model():
    model = create_model("unet-resnet18").eval()
    x = torch.rand(1, 3, 64, 64)
    seen = {}
    model.net.encoder.register_forward_pre_hook(lambda m, args: seen.setdefault("x", args[0]))
    model(x)
    expected = (x - torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)) / \
        torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    torch.testing.assert_close(seen["x"], expected)


def test_offline_imagenet_init_fails_fast_and_keeps_weights(monkeypatch):
    import napari_wbcseg.models.smp_unet as smp_unet

    def offline(url, timeout=5.0):
        raise PretrainedUnavailableError("ImageNet weights are not reachable (test)")

    monkeypatch.setattr(smp_unet, "check_reachable", offline)
    model = create_model("unet-resnet18")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(PretrainedUnavailableError, match="not reachable"):
        model.load_imagenet_encoder()
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_check_reachable_gives_up_quickly_on_an_unroutable_host(monkeypatch):
    """The probe passes its short timeout to the socket and turns the failure into the
    documented error (no clock: the timeout is what bounds the wait)."""
    import socket

    seen = []

    def refuse(address, timeout=None):
        seen.append((address, timeout))
        raise OSError("unreachable")

    monkeypatch.setattr(socket, "create_connection", refuse)
    with pytest.raises(PretrainedUnavailableError, match="random initialisation"):
        check_reachable("https://no-such-host.invalid/weights", timeout=1.0)
    assert seen == [(("no-such-host.invalid", 443), 1.0)]
