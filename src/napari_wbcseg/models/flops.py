"""Count the multiply-adds of a model's convolutions with forward hooks.

>>> from napari_wbcseg.models import create_model          # doctest: +SKIP
>>> conv_macs(create_model("wcsegnet-compact"), (1, 3, 256, 256)) / 1e9  # GMACs
"""
from __future__ import annotations

import torch
from torch import nn


def conv_macs(model: nn.Module, input_shape=(1, 3, 256, 256), *, linear: bool = False) -> int:
    """Multiply-adds of all ``Conv2d``/``ConvTranspose2d`` layers for one forward pass
    (and of ``nn.Linear`` layers too with ``linear=True``, e.g. Mask R-CNN's box head).

    A conv producing ``C_out x H_out x W_out`` (per sample) with kernel ``kh x kw``
    and ``C_in / groups`` input channels costs ``C_out*H_out*W_out*kh*kw*C_in/groups``
    MACs (bias, normalisation and activations are not counted; GFLOPs ~ 2 x GMACs).
    For a transposed conv the count is taken over its input positions.
    The model runs in eval mode under ``inference_mode`` on zeros of ``input_shape``.
    """
    total = 0

    def hook(module, inputs, output):
        nonlocal total
        kh, kw = module.kernel_size
        cin_per_group = module.in_channels // module.groups
        if isinstance(module, nn.ConvTranspose2d):
            n, _, h, w = inputs[0].shape
            total += n * h * w * kh * kw * cin_per_group * module.out_channels
        else:
            n, c, h, w = output.shape
            total += n * c * h * w * kh * kw * cin_per_group

    def linear_hook(module, inputs, output):
        nonlocal total
        total += inputs[0].numel() // module.in_features * module.in_features * \
            module.out_features

    handles = [m.register_forward_hook(hook) for m in model.modules()
               if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    if linear:
        handles += [m.register_forward_hook(linear_hook) for m in model.modules()
                    if isinstance(m, nn.Linear)]
    was_training = model.training
    try:
        model.eval()
        with torch.inference_mode():
            model(torch.zeros(input_shape))
    finally:
        model.train(was_training)
        for h in handles:
            h.remove()
    return total
