"""Conv + ReLU6 fused into one oneDNN call for prediction: every activation after a conv
of the EfficientNet-Lite networks goes, and the outputs stay those of the plain network,
in fp32 and under bf16 autocast."""
import copy

import pytest
import torch
from torch import nn

from napari_wbcseg.inference.precision import autocast
from napari_wbcseg.models import create_model
from napari_wbcseg.models import fuse_act
from napari_wbcseg.models.cell_classifier import create_classifier
from napari_wbcseg.models.fold_bn import fold_batchnorm
from napari_wbcseg.models.fuse_act import ConvAct2d, fuse_conv_activations

from test_fold_bn import _as_trained

pytestmark = pytest.mark.skipif(not fuse_act._HAS_OP, reason="no oneDNN fused conv in this torch")


def _acts(model):
    return sum(type(m) in (nn.ReLU, nn.ReLU6) for m in model.modules())


def _outputs(model, x, precision):
    with torch.inference_mode(), autocast(precision):
        out = model(x.contiguous(memory_format=torch.channels_last))
    return [o.float() for o in out.values()] if isinstance(out, dict) else [out.float()]


@pytest.mark.parametrize("build, shape", [
    (lambda: create_model("wbcseg-lite0"), (1, 3, 96, 64)),
    (lambda: create_classifier("cell-classifier-lite0", crop_size=64), (3, 5, 64, 64)),
])
@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_every_activation_fused_and_outputs_kept(build, shape, precision):
    folded = _as_trained(build())
    fold_batchnorm(folded)
    fused = copy.deepcopy(folded)
    n = fuse_conv_activations(fused)
    assert n == _acts(folded) > 25 and _acts(fused) == 0
    assert sum(isinstance(m, ConvAct2d) and m.attr != "none" for m in fused.modules()) == n
    assert not any(type(m) is nn.Conv2d for m in fused.modules())  # the rest: bf16 once
    x = torch.rand(*shape, generator=torch.Generator().manual_seed(1))
    tol = 1e-3 if precision == "fp32" else 2e-2  # logits; the convs' own rounding
    for u, v in zip(_outputs(folded, x, precision), _outputs(fused, x, precision)):
        torch.testing.assert_close(u, v, atol=tol, rtol=tol)


@pytest.mark.parametrize("size", [(17, 23), (16, 16), (9, 30)])
def test_same_padding_of_strided_convs(size):
    """timm's Conv2dSame pads per input size (TensorFlow's SAME): odd sizes included."""
    from timm.layers import Conv2dSame

    torch.manual_seed(0)
    conv = Conv2dSame(6, 12, 5, stride=2, groups=6).eval()
    x = torch.randn(2, 6, *size) * 3
    with torch.inference_mode():
        ref = torch.clamp(conv(x), 0, 6)
        got = ConvAct2d(conv, nn.ReLU6(), same=True)(x)
    assert got.shape == ref.shape
    torch.testing.assert_close(got, ref, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("act", [nn.ReLU(), None])
@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_relu_plain_and_off_cpu_reference_path(act, precision):
    conv = nn.Conv2d(3, 5, 3, padding=1).eval()
    x = torch.randn(1, 3, 11, 13)
    fused = ConvAct2d(conv, act)
    tol = 1e-5 if precision == "fp32" else 3e-2
    with torch.inference_mode(), autocast(precision):
        ref = conv(x) if act is None else torch.relu(conv(x))
        got = fused(x)
        if precision == "bf16":
            assert got.dtype == torch.bfloat16  # bf16 weights, as autocast would use
        torch.testing.assert_close(got.float(), ref.float(), atol=tol, rtol=tol)
        torch.testing.assert_close(fused._reference(x).float(), ref.float(), atol=tol, rtol=tol)


def test_nothing_fused_when_the_op_fails_its_check(monkeypatch):
    monkeypatch.setattr(fuse_act, "_OP_CHECKED", [False])
    model = create_model("wbcseg-lite0").eval()
    fold_batchnorm(model)
    before = _acts(model)
    assert fuse_conv_activations(model) == 0 and _acts(model) == before


def test_needs_eval_mode():
    with pytest.raises(ValueError, match="eval mode"):
        fuse_conv_activations(create_classifier("cell-classifier-lite0", crop_size=64).train())



def test_forced_bf16_without_the_bf16_op_runs_the_reference_path(monkeypatch):
    """CPUs without AVX-512 / AVX-NE-CONVERT: oneDNN raises for a bf16 conv, so a forced
    bf16 prediction takes autocast's own conv instead of failing."""
    monkeypatch.setattr(fuse_act, "_BF16_CHECKED", [False])

    def refuses(*a, **kw):
        raise RuntimeError("mkldnn_convolution: bf16 path needs the cpu support avx512bw")

    conv = nn.Conv2d(3, 5, 3, padding=1).eval()
    fused = ConvAct2d(conv, nn.ReLU6())
    x = torch.randn(1, 3, 11, 13)
    with torch.inference_mode(), autocast("fp32"):
        expected = torch.clamp(conv(x), 0, 6)
        assert torch.allclose(fused(x), expected, atol=1e-5)  # fp32 keeps the fused op
    monkeypatch.setattr(torch.ops.mkldnn, "_convolution_pointwise", refuses)
    with torch.inference_mode(), autocast("bf16"):
        got = fused(x)
    torch.testing.assert_close(got.float(), expected, atol=5e-2, rtol=5e-2)


def test_the_bf16_check_says_no_when_the_op_raises(monkeypatch):
    monkeypatch.setattr(fuse_act, "_BF16_CHECKED", [])
    monkeypatch.setattr(fuse_act, "_OP_CHECKED", [True])

    def refuses(*a, **kw):
        raise RuntimeError("bf16 path needs the cpu support")

    monkeypatch.setattr(torch.ops.mkldnn, "_convolution_pointwise", refuses)
    assert fuse_act._bf16_op_works() is False
