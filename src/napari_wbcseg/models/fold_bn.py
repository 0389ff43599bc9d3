"""Fold eval-mode BatchNorm into the convolution before it, for prediction only.

Two layouts are folded:

* ``nn.Sequential(..., Conv2d, BatchNorm2d, ...)`` (our decoders, smp's ``Conv2dReLU``);
* timm's EfficientNet / MobileNet blocks, where the conv and its norm are sibling
  attributes called in a fixed order (``conv_pw`` then ``bn1``, ...), and the norm is a
  ``BatchNormAct2d`` (BatchNorm, then dropout and activation).  The norm becomes its
  own activation, so the block's forward is unchanged.

Measured on the CPU: timm's norms were about a fifth of the EfficientNet-Lite encoders'
and the cell classifier's inference time (``benchmarks/bench_fold_bn.py``).  Outputs are
equal up to float rounding; the folded module cannot be trained.
"""
from __future__ import annotations

from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

__all__ = ["fold_batchnorm"]

#: (conv attribute, norm attribute) pairs that timm blocks call back to back, per class name
TIMM_PAIRS = {
    "ConvBnAct": (("conv", "bn1"),),
    "DepthwiseSeparableConv": (("conv_s2d", "bn_s2d"), ("conv_dw", "bn1"), ("conv_pw", "bn2")),
    "InvertedResidual": (("conv_s2d", "bn_s2d"), ("conv_pw", "bn1"), ("conv_dw", "bn2"),
                         ("conv_pwl", "bn3")),
    "EdgeResidual": (("conv_exp", "bn1"), ("conv_pwl", "bn2")),
    "EfficientNet": (("conv_stem", "bn1"), ("conv_head", "bn2")),
    "EfficientNetFeatures": (("conv_stem", "bn1"),),
    # features_only models: timm re-hosts the stem's modules in a FeatureListNet
    "FeatureListNet": (("conv_stem", "bn1"),),
}


def _foldable(conv, bn) -> bool:
    return (isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d)
            and bn.track_running_stats and bn.running_mean is not None
            and conv.out_channels == bn.num_features)


def _after_norm(bn) -> nn.Module:
    """What remains of a folded norm: timm's BatchNormAct2d keeps its dropout + activation."""
    drop, act = getattr(bn, "drop", None), getattr(bn, "act", None)
    rest = [m for m in (drop, act) if m is not None and not isinstance(m, nn.Identity)]
    return nn.Identity() if not rest else rest[0] if len(rest) == 1 else nn.Sequential(*rest)


def fold_batchnorm(model: nn.Module) -> int:
    """Fold in place every conv + BatchNorm pair of the layouts above; ``model`` must be
    in eval mode.  Returns the number of norms folded."""
    if model.training:
        raise ValueError("fold_batchnorm needs a model in eval mode")
    folded = 0
    for parent in list(model.modules()):
        if isinstance(parent, nn.Sequential):
            for i in range(len(parent) - 1):
                if type(parent[i + 1]) is nn.BatchNorm2d and _foldable(parent[i], parent[i + 1]):
                    parent[i] = fuse_conv_bn_eval(parent[i], parent[i + 1])
                    parent[i + 1] = nn.Identity()
                    folded += 1
        for conv_name, bn_name in TIMM_PAIRS.get(type(parent).__name__, ()):
            conv, bn = getattr(parent, conv_name, None), getattr(parent, bn_name, None)
            if conv is not None and bn is not None and _foldable(conv, bn):
                setattr(parent, conv_name, fuse_conv_bn_eval(conv, bn))
                setattr(parent, bn_name, _after_norm(bn))
                folded += 1
    return folded
