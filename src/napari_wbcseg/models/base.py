"""The contract every segmentation network of the package fulfils.

Imported only by the model files (so importing it imports torch); the registry
in :mod:`napari_wbcseg.models` stays torch-free until a model is built.

Contract (checked for every registered architecture by
``tests/models/test_contract.py``):

* ``forward(x)``: ``x`` float32 ``(N, 3, H, W)`` with values in [0, 1], ``H`` and
  ``W`` multiples of :attr:`SegmentationModel.size_multiple`; returns a dict of
  logits ``{"semantic": (N, 3, H, W), "cell_type": (N, K, H, W)}``.  Semantic
  channels are {0 background, 1 cytoplasm, 2 nucleus} (``schema.SEMANTIC_CLASSES``);
  cell-type channel ``k`` is the k-th entry of the model's class table (by default
  the codes 1..5), with no background channel: the semantic head decides where
  cells are.
* ``predict(x)``: eval mode, ``torch.inference_mode()``, softmax probabilities in
  the same dict (contiguous tensors); the module's previous train/eval mode is
  restored afterwards.  On the CPU the input is made channels-last first (faster).
* ``size_multiple``, ``num_classes`` and ``config``: ``config`` is a JSON-serialisable
  dict from which ``create_model(architecture, **config)`` rebuilds the model.
* Training: ``loss_config`` holds the keywords of
  ``training.losses.segmentation_loss`` that give the paper's loss (e.g. Tversky for
  WBC-Net, focal + Dice for the CBAM U-Net).  A model with deep supervision adds, in
  training mode only, ``"deep_supervision"``: a list of ``{"semantic", "cell_type"[, "weight"]}``
  dicts, every one of which the loss supervises, each at the input's size or that size
  divided by a whole factor (the loss then subsamples the targets).  A model whose loss is not a dense
  per-pixel loss (Mask R-CNN) defines
  ``training_loss(x, semantic, cell_class, *, class_weight, class_weights)`` returning
  ``(loss, parts)``; the training loop uses it instead.
"""
from __future__ import annotations

import copy

import torch
from torch import nn

SEMANTIC_CHANNELS = 3  # background, cytoplasm, nucleus
OUTPUT_KEYS = ("semantic", "cell_type")


class SegmentationModel(nn.Module):
    """Base class: subclasses set the attributes below and implement ``forward``."""

    #: registry name of the architecture, set by subclasses / the registry
    architecture: str = ""
    #: H and W of the input must be multiples of this (2 ** number of poolings)
    size_multiple: int = 1
    #: keywords of training.losses.segmentation_loss giving the paper's loss
    loss_config: dict = {}
    #: "fp32" or "bf16" (CPU autocast in predict); set by the predictor cache from
    #: inference.precision.resolve_precision
    precision: str = "fp32"

    def __init__(self, num_classes: int, config: dict):
        super().__init__()
        if int(num_classes) < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        self.num_classes = int(num_classes)
        self.config = dict(config)

    def check_input(self, x: torch.Tensor) -> None:
        """Raise ``ValueError`` with a one-line reason when ``x`` breaks the contract."""
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"expected input of shape (N, 3, H, W), got {tuple(x.shape)}")
        m = self.size_multiple
        if x.shape[2] % m or x.shape[3] % m:
            raise ValueError(f"H and W must be multiples of {m}, got {tuple(x.shape[2:])}; "
                             "pad the image (e.g. with pad_to_multiple) first")

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:  # pragma: no cover
        raise NotImplementedError

    def predict(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Softmax probabilities for ``x``, in eval mode and without autograd."""
        from ..inference.precision import autocast

        was_training = self.training
        self.eval()
        bf16 = self.precision == "bf16" and x.device.type == "cpu"
        try:
            with torch.inference_mode():
                if x.device.type == "cpu" and x.ndim == 4:
                    # oneDNN runs narrow convolutions ~1.5-2x faster channels-last
                    x = x.contiguous(memory_format=torch.channels_last)
                with autocast("bf16" if bf16 else "fp32"):
                    out = self(x)
                return {key: torch.softmax(out[key].float(), dim=1).contiguous()
                        for key in OUTPUT_KEYS}
        finally:
            self.train(was_training)

    def inference_copy(self) -> "SegmentationModel":
        """A frozen eval-mode copy for prediction, with BatchNorm folded into the convs
        (:func:`~napari_wbcseg.models.fold_bn.fold_batchnorm`: conv + BN in an
        ``nn.Sequential`` and timm's EfficientNet blocks) and ReLU/ReLU6 fused into the
        conv before it (:func:`~napari_wbcseg.models.fuse_act.fuse_conv_activations`):
        same outputs up to float rounding, faster on CPU.  The copy cannot be trained;
        the original is untouched.
        """
        from .fuse_act import prepare_for_prediction

        model = prepare_for_prediction(copy.deepcopy(self).eval())
        model.requires_grad_(False)
        return model

    def num_parameters(self, trainable_only: bool = False) -> int:
        return sum(p.numel() for p in self.parameters()
                   if p.requires_grad or not trainable_only)


def init_weights(model: nn.Module, heads, *, conv_types=(nn.Conv2d,), **kaiming) -> None:
    """He-normal convolutions (``kaiming`` goes to ``kaiming_normal_``), zero biases, unit
    BatchNorm, and small N(0, 0.01) output heads, so training starts from near-uniform
    predictions."""
    for m in model.modules():
        if isinstance(m, conv_types):
            nn.init.kaiming_normal_(m.weight, **kaiming)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
    for head in heads:
        nn.init.normal_(head.weight, std=0.01)


def pad_to_multiple(x: torch.Tensor, multiple: int, mode: str = "reflect"):
    """Pad the last two dims of ``x`` up to multiples of ``multiple``.

    Returns ``(padded, (H, W))``; crop the outputs back with ``out[..., :H, :W]``.
    ``reflect`` falls back to ``replicate`` where the image is too small to reflect.
    """
    H, W = x.shape[-2:]
    ph, pw = (-H) % multiple, (-W) % multiple
    if ph or pw:
        if mode == "reflect" and (ph >= H or pw >= W):
            mode = "replicate"
        x = nn.functional.pad(x, (0, pw, 0, ph), mode=mode)
    return x, (H, W)
