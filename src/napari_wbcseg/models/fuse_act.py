"""Fuse a convolution with the activation after it into one oneDNN call, for CPU prediction.

After :func:`~napari_wbcseg.models.fold_bn.fold_batchnorm`, every EfficientNet-Lite block
is a conv followed by a ReLU6 that oneDNN does not fuse in eager mode: the activation
makes one more pass over each feature map, about a quarter of the bf16 network time
(``benchmarks/bench_fold_bn.py``).  ``torch.ops.mkldnn._convolution_pointwise`` (the op
torch's own compiler emits for conv + activation on CPUs) applies it inside the conv.

Two layouts, as in the fold: ``nn.Sequential(..., Conv2d, [Identity...], ReLU)``, and
timm's blocks, whose folded norm attribute now holds the activation.  A conv on another
device, or a torch without the op, runs the plain conv and activation, so outputs are
unchanged everywhere, up to the float rounding of oneDNN's choice of conv algorithm.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .fold_bn import TIMM_PAIRS

__all__ = ["ConvAct2d", "fuse_conv_activations", "prepare_for_prediction"]


class ConvAct2d(nn.Conv2d):
    """``act(conv(x))`` as one oneDNN primitive on the CPU (prediction only); ``act``
    None is the conv alone, which in bf16 still gains from weights cast once, not on
    every call as autocast does.

    ``same`` pads as timm's ``Conv2dSame`` does (TensorFlow's "SAME", decided per input
    size) before a conv of padding 0."""

    def __init__(self, conv: nn.Conv2d, act: nn.Module | None, same: bool = False):
        super().__init__(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride,
                         (0, 0) if same else conv.padding, conv.dilation, conv.groups,
                         conv.bias is not None, device=conv.weight.device,
                         dtype=conv.weight.dtype)
        self.load_state_dict(conv.state_dict())
        self.same = same
        if act is None:
            self.attr, self.scalars, self.bounds = "none", [], None
        elif isinstance(act, nn.ReLU6):
            self.attr, self.scalars, self.bounds = "hardtanh", [0.0, 6.0], (0.0, 6.0)
        else:
            self.attr, self.scalars, self.bounds = "relu", [], (0.0, None)
        self._bf16 = None  # (weight, bias) for bf16 autocast, made on first use

    def _reference(self, x):
        y = self._conv_forward(x, self.weight, self.bias)
        return y if self.bounds is None else torch.clamp(y, *self.bounds)

    def forward(self, x):
        if self.same:
            from timm.layers.padding import pad_same

            x = pad_same(x, self.kernel_size, self.stride, self.dilation)
        if x.device.type != "cpu" or x.dim() != 4 or not _HAS_OP:
            return self._reference(x)
        w, b = self.weight, self.bias
        if _autocast_bf16():
            if not _bf16_op_works():  # e.g. AVX2-only CPUs: oneDNN has no bf16 conv there
                return self._reference(x)
            if self._bf16 is None or self._bf16[0].device != w.device:
                self._bf16 = (w.detach().to(torch.bfloat16),
                              None if b is None else b.detach().to(torch.bfloat16))
            x, (w, b) = x.to(torch.bfloat16), self._bf16
        elif x.dtype != w.dtype:
            return self._reference(x)
        return torch.ops.mkldnn._convolution_pointwise(
            x, w, b, list(self.padding), list(self.stride), list(self.dilation), self.groups,
            self.attr, self.scalars, "")


_HAS_OP = (hasattr(torch.ops, "mkldnn") and hasattr(torch.ops.mkldnn, "_convolution_pointwise")
           and torch.backends.mkldnn.is_available())


def _autocast_bf16() -> bool:
    try:
        return (torch.is_autocast_enabled("cpu")
                and torch.get_autocast_dtype("cpu") == torch.bfloat16)
    except TypeError:  # torch < 2.4
        return torch.is_autocast_cpu_enabled() and torch.get_autocast_cpu_dtype() == torch.bfloat16


def _fusable(conv, act=None) -> str | None:
    """``"plain"`` / ``"same"`` when ``conv`` then ``act`` (None: no activation) can become
    one ConvAct2d."""
    if act is not None and type(act) not in (nn.ReLU, nn.ReLU6):
        return None
    if not isinstance(conv, nn.Conv2d):
        return None
    if conv.padding_mode != "zeros" or isinstance(conv.padding, str):
        return None
    if type(conv) is nn.Conv2d:
        return "plain"
    return "same" if type(conv).__name__ == "Conv2dSame" else None


def fuse_conv_activations(model: nn.Module) -> int:
    """Fuse in place each conv + ReLU/ReLU6 pair of the layouts above (run after
    ``fold_batchnorm``; ``model`` must be in eval mode), and make every other plain conv a
    ConvAct2d without activation.  Returns the number of pairs fused."""
    if model.training:
        raise ValueError("fuse_conv_activations needs a model in eval mode")
    if not _op_works():
        return 0
    fused = 0
    for parent in list(model.modules()):
        if isinstance(parent, nn.Sequential):
            for i in range(len(parent) - 1):
                j = i + 1
                while j < len(parent) - 1 and type(parent[j]) is nn.Identity:
                    j += 1
                kind = _fusable(parent[i], parent[j])
                if kind:
                    parent[i] = ConvAct2d(parent[i], parent[j], kind == "same")
                    parent[j] = nn.Identity()
                    fused += 1
        for conv_name, act_name in TIMM_PAIRS.get(type(parent).__name__, ()):
            conv, act = getattr(parent, conv_name, None), getattr(parent, act_name, None)
            kind = _fusable(conv, act)
            if kind:
                setattr(parent, conv_name, ConvAct2d(conv, act, kind == "same"))
                setattr(parent, act_name, nn.Identity())
                fused += 1
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            kind = None if isinstance(child, ConvAct2d) else _fusable(child)
            if kind:
                setattr(parent, name, ConvAct2d(child, None, kind == "same"))
    return fused


_OP_CHECKED: list[bool] = []


def _op_works() -> bool:
    """Whether this torch's fused op exists and gives the reference result (checked once:
    the op is internal to torch, so a version that changed it is not trusted)."""
    if not _OP_CHECKED:
        ok = _HAS_OP
        if ok:
            try:
                gen = torch.Generator().manual_seed(0)
                conv = nn.Conv2d(4, 8, 3, padding=1).eval()
                x = torch.randn(1, 4, 9, 7, generator=gen) * 4
                fused = ConvAct2d(conv, nn.ReLU6())
                # fp32 whatever the caller's autocast: a bf16 check would fail on rounding
                with torch.inference_mode(), torch.autocast("cpu", enabled=False):
                    ref = torch.clamp(F.conv2d(x, conv.weight, conv.bias, padding=1), 0, 6)
                    ok = torch.allclose(fused(x), ref, atol=1e-5)
            except RuntimeError:
                ok = False
        _OP_CHECKED.append(ok)
    return _OP_CHECKED[0]


_BF16_CHECKED: list[bool] = []


def _bf16_op_works() -> bool:
    """Whether the fused op also runs in bf16 here, near the fp32 result (checked once).
    oneDNN refuses bf16 convs on CPUs without AVX-512 or AVX-NE-CONVERT; there a forced
    bf16 prediction runs the reference path under autocast instead of raising."""
    if not _BF16_CHECKED:
        ok = _op_works()
        if ok:
            try:
                gen = torch.Generator().manual_seed(0)
                x = torch.randn(1, 4, 9, 7, generator=gen)
                w = torch.randn(8, 4, 3, 3, generator=gen) * 0.3
                with torch.inference_mode(), torch.autocast("cpu", enabled=False):
                    ref = torch.clamp(F.conv2d(x, w, padding=1), 0, 6)
                    y = torch.ops.mkldnn._convolution_pointwise(
                        x.bfloat16(), w.bfloat16(), None, [1, 1], [1, 1], [1, 1], 1,
                        "hardtanh", [0.0, 6.0], "")
                    ok = torch.allclose(y.float(), ref, atol=0.1, rtol=0.05)
            except RuntimeError:
                ok = False
        _BF16_CHECKED.append(ok)
    return _BF16_CHECKED[0]


def prepare_for_prediction(model: nn.Module) -> nn.Module:
    """``model`` (eval mode) in place: BatchNorm folded, then conv + activation fused; the
    one recipe of the segmentation networks' ``inference_copy`` and the cell classifier."""
    from .fold_bn import fold_batchnorm

    fold_batchnorm(model)
    fuse_conv_activations(model)
    return model
