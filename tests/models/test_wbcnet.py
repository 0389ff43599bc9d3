"""WBC-Net (Lu et al. 2021): the paper's structure, beyond the generic contract.

Residual ResNet34-style encoder, UNet++ dense ("mixed") skip pathways, transposed-conv
upsampling, five deep-supervised outputs averaged at inference, BCE + Tversky loss.
"""
from __future__ import annotations

import pytest
import torch
from torch import nn

from napari_wbcseg.models import architecture_info, create_model
from napari_wbcseg.models.flops import conv_macs
from napari_wbcseg.models.wbcnet import EncoderNode, ResidualBlock, WBCNet
from napari_wbcseg.training.engine.losses import segmentation_loss


@pytest.fixture(scope="module")
def compact():
    torch.manual_seed(0)
    return create_model("wbc-net-compact").eval()


def _image(n=1, h=32, w=48, seed=0):
    return torch.rand(n, 3, h, w, generator=torch.Generator().manual_seed(seed))


def test_registry_entries():
    for name in ("wbc-net", "wbc-net-compact"):
        info = architecture_info(name)
        assert info["family"] == "UNet++ (WBC-Net)"
        assert "WBC-Net" in info["paper"] and "2021" in info["paper"]
        assert info["default_config"]["residual_blocks"] == [0, 3, 4, 6, 3]
        assert info["default_config"]["supervised_nodes"] == [0, 1, 2, 3, 4]
    assert architecture_info("wbc-net")["default_config"]["filters"] == [32, 64, 128, 256, 512]


def test_full_model_has_resnet34_encoder():
    model = create_model("wbc-net")
    assert model.size_multiple == 16
    widths = [node.conv[0].out_channels for node in model.encoder]
    assert widths == [32, 64, 128, 256, 512]  # UNet++ widths == ResNet34 stage widths
    blocks = [sum(isinstance(m, ResidualBlock) for m in node.modules()) for node in model.encoder]
    assert blocks == [0, 3, 4, 6, 3]  # ResNet34's 3-4-6-3 basic blocks on levels 1..4
    for i, node in enumerate(model.encoder):
        assert isinstance(node, EncoderNode)
        assert isinstance(node.pool, nn.MaxPool2d) == (i > 0)
    assert 25e6 < model.num_parameters() < 40e6


def test_residual_block_is_identity_shortcut():
    block = ResidualBlock(4).eval()
    convs = [m for m in block.modules() if isinstance(m, nn.Conv2d)]
    assert [c.kernel_size for c in convs] == [(3, 3), (3, 3)]
    with torch.no_grad():  # zero residual branch -> output is ReLU(x)
        block.conv2[1].weight.zero_()
        x = torch.randn(1, 4, 8, 8)
        torch.testing.assert_close(block(x), torch.relu(x))


def test_decoder_uses_transposed_convs_and_dense_skip_widths(compact):
    f = compact.config["filters"]
    ups = [m for m in compact.modules() if isinstance(m, nn.ConvTranspose2d)]
    assert len(ups) == 4 + 3 + 2 + 1  # one deconvolution per decoder node X^{i,j}, j >= 1
    for key, up in compact.up.items():
        i, j = map(int, key.split("_"))
        assert (up.kernel_size, up.stride) == ((2, 2), (2, 2))
        assert (up.in_channels, up.out_channels) == (f[i + 1], f[i])
        # X^{i,j} concatenates X^{i,0..j-1} and the upsampled X^{i+1,j-1}
        assert compact.nodes[key][0].in_channels == (j + 1) * f[i]


def test_mixed_skips_feed_earlier_nodes(compact):
    """X^{0,2} sees X^{0,0} directly, X^{0,3} sees X^{0,1} directly (Sec. 3.2)."""
    inputs = {}
    hooks = [compact.nodes[k].register_forward_hook(
        lambda mod, args, out, k=k: inputs.__setitem__(k, args[0])) for k in ("0_2", "0_3")]
    try:
        with torch.no_grad():
            X = compact.nested_features(_image())
    finally:
        for h in hooks:
            h.remove()
    f0 = compact.config["filters"][0]
    torch.testing.assert_close(inputs["0_2"][:, :f0], X[0, 0])
    torch.testing.assert_close(inputs["0_3"][:, :f0], X[0, 0])
    torch.testing.assert_close(inputs["0_3"][:, f0:2 * f0], X[0, 1])
    assert set(X) == {(i, j) for i in range(5) for j in range(5 - i)}
    assert all(X[0, j].shape[-2:] == (32, 48) for j in range(5))


def test_deep_supervision_outputs(compact):
    x = _image(2, 32, 32, seed=1)
    compact.train()
    try:
        out = compact(x)
    finally:
        compact.eval()
    assert set(out) == {"semantic", "cell_type", "deep_supervision"}
    branches = out["deep_supervision"]
    assert len(branches) == 5  # X^{0,0} .. X^{0,4}
    for b in branches:
        assert set(b) == {"semantic", "cell_type"}
        assert b["semantic"].shape == (2, 3, 32, 32) and b["cell_type"].shape == (2, 5, 32, 32)
    with torch.no_grad():
        assert set(compact(x)) == {"semantic", "cell_type"}


def test_inference_averages_branch_probabilities(compact):
    x = _image(seed=2)
    with torch.no_grad():
        out = compact(x)
        X = compact.nested_features(x)
        for key, heads in (("semantic", compact.semantic_heads),
                           ("cell_type", compact.cell_type_heads)):
            mean_p = torch.stack([torch.softmax(h(X[0, j]), 1)
                                  for j, h in zip(range(5), heads)]).mean(0)
            torch.testing.assert_close(torch.softmax(out[key], 1), mean_p)
            torch.testing.assert_close(out[key].exp().sum(1), torch.ones(1, 32, 48))


def test_supervised_nodes_option():
    torch.manual_seed(0)
    m = WBCNet(filters=[4, 8, 8], residual_blocks=[0, 1, 1], supervised_nodes=[2]).eval()
    assert m.size_multiple == 4 and len(m.semantic_heads) == 1
    x = _image(1, 16, 16)
    with torch.no_grad():
        out = m(x)
        X = m.nested_features(x)
        torch.testing.assert_close(out["semantic"], m.semantic_heads[0](X[0, 2]))
    m.train()
    assert len(m(x)["deep_supervision"]) == 1
    with pytest.raises(ValueError, match="supervised_nodes"):
        WBCNet(filters=[4, 8, 8], residual_blocks=[0, 1, 1], supervised_nodes=[3])
    with pytest.raises(ValueError, match="residual_blocks"):
        WBCNet(filters=[4, 8, 8], residual_blocks=[0, 1])


def test_loss_is_bce_plus_tversky_over_every_branch(compact):
    from napari_wbcseg.training.engine.loop import batch_loss

    assert WBCNet.loss_config == {"region": "tversky", "tversky_alpha": 0.3,
                                  "tversky_beta": 0.7}
    x = _image(2, 32, 32, seed=3)
    sem = torch.zeros(2, 32, 32, dtype=torch.long)
    sem[:, 8:24, 8:24] = 1
    sem[:, 12:20, 12:20] = 2
    cls = (sem > 0).long() * 3
    batch = {"image": x.numpy(), "semantic": sem.numpy().astype("uint8"),
             "cell_class": cls.numpy().astype("uint8")}
    compact.train()
    try:
        with torch.no_grad():
            branches = compact(x)["deep_supervision"]
            loss, parts = batch_loss(compact, batch)
    finally:
        compact.eval()
    expected, _ = segmentation_loss(branches, sem, cls, **WBCNet.loss_config)
    torch.testing.assert_close(loss, expected)
    assert parts["cell_bce"] > 0 and parts["region"] > 0  # the paper's L_BCE and L_Tversky
    dice, _ = segmentation_loss(branches, sem, cls, region="dice")
    last_only, _ = segmentation_loss(branches[-1:], sem, cls, **WBCNet.loss_config)
    assert not torch.isclose(loss, dice) and not torch.isclose(loss, last_only)


def test_compact_budget(compact):
    assert 1e6 <= compact.num_parameters() <= 3e6
    assert conv_macs(compact, (1, 3, 256, 256)) <= 5e9
    blocks = [sum(isinstance(m, ResidualBlock) for m in node.modules())
              for node in compact.encoder]
    assert blocks == [0, 3, 4, 6, 3]  # the paper's structure, only narrower
