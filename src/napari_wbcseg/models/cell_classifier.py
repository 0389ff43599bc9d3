"""The per-cell classifier: EfficientNet-Lite on a 5-channel crop -> class probabilities.

Input: :mod:`napari_wbcseg.core.cell_crops` crops, ``(N, 5, S, S)`` float in [0, 1]
(R, G, B, the cell's nucleus mask, its cytoplasm mask).  The RGB channels are
normalised as the ImageNet weights expect ((x - 0.5) / 0.5); the stem's filters for
the two mask channels start at zero, so an ImageNet start sees the photograph first and
learns what the masks add.  ``temperature`` (a buffer, set by calibration) divides the
logits in :meth:`CellClassifier.predict_proba`.  With ``members`` > 1 the module is an
ensemble (the fold models of a cross-validated training): its logits are the mean of its
members' logits.

Its own small registry (it is not a segmentation network, so it stays out of
:mod:`napari_wbcseg.models`' contract).
"""
from __future__ import annotations

import torch
from torch import nn

__all__ = ["CLASSIFIER_ARCHITECTURES", "MAX_MEMBERS", "CellClassifier", "create_classifier",
           "first_member_state"]

#: registry name -> timm backbone
CLASSIFIER_ARCHITECTURES = {
    "cell-classifier-lite0": "tf_efficientnet_lite0",
    "cell-classifier-lite1": "tf_efficientnet_lite1",
    "cell-classifier-lite2": "tf_efficientnet_lite2",
}
IN_CHANNELS = 5
#: an ensemble of more members costs more than it could add (and bounds a card's config)
MAX_MEMBERS = 8


class CellClassifier(nn.Module):
    def __init__(self, backbone: str = "tf_efficientnet_lite0", num_classes: int = 5,
                 crop_size: int = 128, drop_rate: float = 0.2, members: int = 1):
        import timm

        super().__init__()
        if backbone not in CLASSIFIER_ARCHITECTURES.values():
            raise ValueError(f"unknown backbone {backbone!r}; valid: "
                             f"{sorted(CLASSIFIER_ARCHITECTURES.values())}")
        if int(num_classes) < 2:
            raise ValueError(f"a classifier needs at least two classes, got {num_classes}")
        if type(members) is not int or not 1 <= members <= MAX_MEMBERS:
            raise ValueError(f"members must be an integer 1..{MAX_MEMBERS}, got {members!r}")
        self.num_classes = int(num_classes)
        self.crop_size = int(crop_size)
        self.config = {"backbone": backbone, "num_classes": self.num_classes,
                       "crop_size": self.crop_size, "drop_rate": float(drop_rate)}
        if members > 1:  # a single model keeps the key names of older files ("net.")
            self.config["members"] = members
        self.architecture = next(k for k, v in CLASSIFIER_ARCHITECTURES.items() if v == backbone)
        self.precision = "fp32"
        nets = [timm.create_model(backbone, pretrained=False, in_chans=IN_CHANNELS,
                                  num_classes=self.num_classes, drop_rate=float(drop_rate))
                for _ in range(members)]
        if members == 1:
            self.net = nets[0]
        else:
            self.nets = nn.ModuleList(nets)
        with torch.no_grad():
            for net in self._members():
                net.conv_stem.weight[:, 3:] = 0
        self.register_buffer("temperature", torch.ones(()))

    def _members(self):
        return list(self.nets) if hasattr(self, "nets") else [self.net]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != IN_CHANNELS:
            raise ValueError(f"expected crops of shape (N, {IN_CHANNELS}, S, S), "
                             f"got {tuple(x.shape)}")
        x = (x - 0.5) / 0.5
        nets = self._members()
        if len(nets) == 1:
            return nets[0](x)
        return torch.stack([net(x) for net in nets]).mean(0)

    def load_imagenet(self) -> int:
        """ImageNet weights from the ``[pretrained]`` extra (PretrainedUnavailableError)."""
        from .imagenet_lite import load_lite_into

        n = 0
        for net in self._members():
            n = load_lite_into(net, self.config["backbone"])
            with torch.no_grad():
                net.conv_stem.weight[:, 3:] = 0
        return n

    def predict_proba(self, x: torch.Tensor) -> torch.Tensor:
        """Calibrated probabilities (eval mode, no autograd, bf16 where ``precision``
        says so); the previous train/eval mode is restored."""
        from ..inference.precision import autocast

        was = self.training
        self.eval()
        try:
            with torch.inference_mode(), autocast(
                    self.precision if x.device.type == "cpu" else "fp32"):
                logits = self(x.contiguous(memory_format=torch.channels_last)).float()
            return torch.softmax(logits / self.temperature.clamp_min(1e-3), 1)
        finally:
            self.train(was)


def first_member_state(state: dict) -> dict:
    """A single model's state dict from an ensemble's (its first member; the temperature
    stays), so that a fine-tune can start from an ensemble; a single model's is returned
    as it is."""
    if not any(k.startswith("nets.") for k in state):
        return state
    return {("net." + k[len("nets.0."):] if k.startswith("nets.0.") else k): v
            for k, v in state.items() if not k.startswith("nets.") or k.startswith("nets.0.")}


def create_classifier(name: str = "cell-classifier-lite0", **config) -> CellClassifier:
    if name not in CLASSIFIER_ARCHITECTURES:
        raise ValueError(f"unknown classifier {name!r}; valid: "
                         f"{', '.join(CLASSIFIER_ARCHITECTURES)}")
    config.setdefault("backbone", CLASSIFIER_ARCHITECTURES[name])
    return CellClassifier(**config)
