"""CBAM U-Net: the improved U-Net of Zhu, Chen, Sun & Li (2023).

"Improved U-net-based leukocyte segmentation method", J. Biomed. Opt. 28(4), 045002,
doi:10.1117/1.JBO.28.4.045002 (``papers/ahe-retinex_cbam-unet_zhu2023.txt``).

What the paper fixes, and this module follows:

* a U-Net whose contracting path is VGG16 ("a contracting path with VGG16 as the
  backbone"), initialised with ImageNet VGG16 weights;
* a CBAM (Woo et al. 2018) on each of the four skip connections: channel attention
  (global max and average pooling, a shared two-layer MLP C -> C/r -> C with ReLU,
  sum, sigmoid, multiply) followed in series by spatial attention (max and mean over
  the channels, concatenated, sigmoid, multiply);
* loss L = L_dice + L_focal with focal gamma = 2;
* training: encoder frozen for the first 50 of 100 epochs, then everything trained
  (batch 2, learning rate 1e-4): :meth:`CBAMUNet.freeze_encoder`.
  The AHE-Retinex image enhancement is pre-processing, not part of the network.

Where the paper is silent or ambiguous, and what we chose:

1. *Which VGG16 layers.*  Only "VGG16 as the backbone".  We use torchvision's
   ``vgg16().features`` layout exactly (13 3x3 convs with ReLU, no batch norm, five
   max pools; same module indices, so the ImageNet weights copy one to one).  The
   five conv blocks give features at 1, 1/2, 1/4, 1/8 and 1/16 resolution; the first
   four are the four skip connections, the fifth (after the fourth pool) is the
   bottom of the U.  VGG's fifth pool (index 30) is kept for the layout but not
   run: ``size_multiple = 16``.
2. *Expanding path.*  Not described beyond "U-Net".  We use the common VGG16-U-Net
   decoder: per level, x2 bilinear upsampling of the deeper map (no transposed conv),
   concatenation [attended skip, upsampled], two 3x3 conv + ReLU whose width is the
   skip's (512, 256, 128, 64), no batch norm (VGG16 has none).  Keras'
   ``UpSampling2D`` would be nearest-neighbour; bilinear is smoother at no cost.
3. *Where CBAM sits.*  "Added to the four skip connections": the attention
   re-weights only the copy of each encoder map sent across; the contracting path
   itself pools the un-attended map.
4. *CBAM details.*  The paper gives no reduction ratio and its SAM text omits the
   convolution; we follow Woo et al.: r = 16 (hidden width max(1, C // r)), MLP
   with biases, a 7x7 conv (2 -> 1 channels, padding 3, with bias, no batch norm as
   in Woo's equation) before the sigmoid, channel input order [max, mean].
5. *Heads.*  The paper has one softmax over background + five leukocyte classes.
   The product needs semantic {background, cytoplasm, nucleus} and cell type (5
   classes, no background): two 1x1 convs on the last 64-channel decoder map.
6. *Loss mapping* (``loss_config = {"focal_gamma": 2.0, "region": "dice"}``, see
   ``training.losses.segmentation_loss``): the focal loss (gamma 2, no alpha) is the
   semantic term over background/cytoplasm/nucleus, the soft Dice (weight 1) acts on
   P(cell), P(nucleus) and P(cytoplasm): together the paper's L_focal + L_dice.  The
   loss adds, unchanged, the whole-cell binary cross-entropy (so that whole-cell
   masks without nucleus/cytoplasm parts can teach) and a plain cross-entropy on the
   cell-type head (segmentation_loss has no focal option for it).
7. *Input scaling.*  Images in [0, 1] are normalised with the ImageNet mean and std
   inside the model (non-persistent buffers), as the VGG16 weights expect.
8. *Initialisation* without ImageNet: torchvision's VGG init (Kaiming normal,
   fan-out, ReLU; zero bias) for every conv; heads normal(0, 0.01).

Configurations (registered in :mod:`napari_wbcseg.models`): ``cbam-unet-vgg16`` (widths
64-128-256-512-512, 24.9 M parameters of which 14.7 M in VGG16, 56.3 GMACs at
256x256) and ``cbam-unet-vgg16-compact`` (the same layout at a quarter of the widths,
16-32-64-128-128, 1.6 M parameters, 3.6 GMACs; the CBAM ratio r = 4 keeps the full
model's MLP hidden widths 4-8-16-32).  ``norm="batch"`` (not registered) gives the ``vgg16_bn``
layout (conv, BN, ReLU everywhere) for training from scratch; ImageNet weights fit only
the registered full configuration.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from .base import SEMANTIC_CHANNELS, SegmentationModel, init_weights
from .pretrained import PretrainedUnavailableError, check_reachable

PAPER = ("Zhu, Chen, Sun & Li (2023), Improved U-net-based leukocyte segmentation method, "
         "J. Biomed. Opt. 28(4), 045002, doi:10.1117/1.JBO.28.4.045002")
VGG16_WIDTHS = (64, 128, 256, 512, 512)
VGG16_CONVS_PER_BLOCK = (2, 2, 3, 3, 3)  # torchvision cfg "D"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
TORCHVISION_URL = "https://download.pytorch.org/models/"


def vgg16_features(widths: Sequence[int], batch_norm: bool = False) -> nn.Sequential:
    """torchvision's ``vgg16().features`` (``make_layers(cfgs["D"])``) with other widths."""
    layers: list[nn.Module] = []
    cin = 3
    for width, n_convs in zip(widths, VGG16_CONVS_PER_BLOCK):
        for _ in range(n_convs):
            layers.append(nn.Conv2d(cin, width, 3, padding=1))
            if batch_norm:
                layers.append(nn.BatchNorm2d(width))
            layers.append(nn.ReLU(inplace=True))
            cin = width
        layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
    return nn.Sequential(*layers)


class ChannelAttention(nn.Module):
    """CAM: sigmoid(MLP(avgpool x) + MLP(maxpool x)), a (N, C, 1, 1) gate."""

    def __init__(self, channels: int, reduction: int):
        super().__init__()
        hidden = max(1, channels // reduction)
        # 1x1 convs on (N, C, 1, 1) = the shared two-layer MLP, without reshaping
        self.mlp = nn.Sequential(nn.Conv2d(channels, hidden, 1), nn.ReLU(inplace=True),
                                 nn.Conv2d(hidden, channels, 1))

    def gate(self, x: torch.Tensor) -> torch.Tensor:
        avg = F.adaptive_avg_pool2d(x, 1)
        mx = F.adaptive_max_pool2d(x, 1)
        return torch.sigmoid(self.mlp(avg) + self.mlp(mx))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gate(x)


class SpatialAttention(nn.Module):
    """SAM: sigmoid(conv_kxk([max_c x, mean_c x])), a (N, 1, H, W) gate."""

    def __init__(self, kernel_size: int = 7):
        super().__init__()
        self.conv = nn.Conv2d(2, 1, kernel_size, padding=kernel_size // 2)

    def gate(self, x: torch.Tensor) -> torch.Tensor:
        pooled = torch.cat([x.amax(dim=1, keepdim=True), x.mean(dim=1, keepdim=True)], dim=1)
        return torch.sigmoid(self.conv(pooled))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gate(x)


class CBAM(nn.Module):
    """Channel attention, then spatial attention, in series (Woo et al.'s best order)."""

    def __init__(self, channels: int, reduction: int = 16, spatial_kernel: int = 7):
        super().__init__()
        self.channel_attention = ChannelAttention(channels, reduction)
        self.spatial_attention = SpatialAttention(spatial_kernel)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.spatial_attention(self.channel_attention(x))


def _double_conv(cin: int, cout: int, batch_norm: bool) -> nn.Sequential:
    layers: list[nn.Module] = []
    for c in (cin, cout):
        layers.append(nn.Conv2d(c, cout, 3, padding=1, bias=not batch_norm))
        if batch_norm:
            layers.append(nn.BatchNorm2d(cout))
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class CBAMUNet(SegmentationModel):
    """VGG16 U-Net with CBAM on the four skip connections; see the module docstring."""

    architecture = "cbam-unet-vgg16"
    size_multiple = 16
    loss_config = {"focal_gamma": 2.0, "region": "dice"}

    def __init__(self, widths: Sequence[int] = VGG16_WIDTHS, num_classes: int = 5,
                 cbam_reduction: int = 16, spatial_kernel: int = 7, norm: str = "none"):
        widths = [int(w) for w in widths]
        if len(widths) != 5 or any(w < 1 for w in widths):
            raise ValueError(f"widths must list the 5 positive VGG16 block widths, got {widths}")
        if int(cbam_reduction) < 1:
            raise ValueError(f"cbam_reduction must be >= 1, got {cbam_reduction}")
        if int(spatial_kernel) < 1 or int(spatial_kernel) % 2 == 0:
            raise ValueError(f"spatial_kernel must be odd and positive, got {spatial_kernel}")
        if norm not in ("none", "batch"):
            raise ValueError(f"norm must be 'none' or 'batch', got {norm!r}")
        super().__init__(num_classes, {"widths": widths, "num_classes": int(num_classes),
                                       "cbam_reduction": int(cbam_reduction),
                                       "spatial_kernel": int(spatial_kernel), "norm": norm})
        batch_norm = norm == "batch"
        self.encoder = vgg16_features(widths, batch_norm)
        # blocks k = 0..4 run encoder[starts[k]:starts[k + 1]]; block k > 0 begins with
        # the pool that ends block k - 1, and VGG's final pool is never run
        pools = [i for i, m in enumerate(self.encoder) if isinstance(m, nn.MaxPool2d)]
        self._block_bounds = list(zip([0] + pools[:4], pools))
        self.skip_attention = nn.ModuleList(
            CBAM(w, int(cbam_reduction), int(spatial_kernel)) for w in widths[:4])
        # decoder[j] works at level 3 - j: [attended skip, upsampled deeper map] -> skip width
        self.decoder = nn.ModuleList()
        below = widths[4]
        for level in (3, 2, 1, 0):
            self.decoder.append(_double_conv(widths[level] + below, widths[level], batch_norm))
            below = widths[level]
        self.semantic_head = nn.Conv2d(widths[0], SEMANTIC_CHANNELS, 1)
        self.cell_type_head = nn.Conv2d(widths[0], self.num_classes, 1)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1),
                             persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1),
                             persistent=False)
        self._encoder_frozen = False
        # torchvision's VGG initialisation
        init_weights(self, (self.semantic_head, self.cell_type_head), mode="fan_out",
                     nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        self.check_input(x)
        x = (x - self.mean) / self.std
        skips = []
        for k, (start, stop) in enumerate(self._block_bounds):
            x = self.encoder[start:stop](x)
            if k < 4:
                skips.append(self.skip_attention[k](x))
        for stage in self.decoder:
            skip = skips.pop()
            x = F.interpolate(x, size=skip.shape[2:], mode="bilinear", align_corners=False)
            x = stage(torch.cat([skip, x], dim=1))
        return {"semantic": self.semantic_head(x), "cell_type": self.cell_type_head(x)}

    # --- the paper's training recipe: ImageNet encoder, frozen for the first half ---

    def encoder_parameters(self):
        """Parameters of the VGG16 contracting path (what the paper freezes)."""
        return self.encoder.parameters()

    def freeze_encoder(self, frozen: bool = True) -> None:
        """Freeze (or unfreeze) the contracting path: no gradients, and its BatchNorm
        layers (``norm="batch"`` only) stay in eval mode so their statistics stay put."""
        self._encoder_frozen = bool(frozen)
        self.encoder.requires_grad_(not frozen)
        self.train(self.training)

    def train(self, mode: bool = True):
        super().train(mode)
        if getattr(self, "_encoder_frozen", False):
            for m in self.encoder.modules():
                if isinstance(m, nn.modules.batchnorm._BatchNorm):
                    m.eval()
        return self

    def load_imagenet_encoder(self, source_state_dict: dict | None = None) -> None:
        """Copy torchvision's ImageNet VGG16 conv weights (``IMAGENET1K_V1``) into the
        encoder; only the full-width, batch-norm-free configuration can take them.

        ``source_state_dict``: a torchvision ``vgg16`` state dict (or its ``features``)
        to copy from instead of downloading.  Raises :class:`PretrainedUnavailableError`
        for other configurations, and within seconds when offline.
        """
        if self.config["widths"] != list(VGG16_WIDTHS) or self.config["norm"] != "none":
            # the answer does not depend on the network, so no probe first
            raise PretrainedUnavailableError(
                "ImageNet VGG16 weights exist only for the full width (64-128-256-512-512, "
                f"norm='none'); this model has widths {self.config['widths']}, norm="
                f"{self.config['norm']!r} and keeps its random initialisation.")
        if source_state_dict is None:
            check_reachable(TORCHVISION_URL)
            from torchvision.models import VGG16_Weights

            try:
                source_state_dict = VGG16_Weights.IMAGENET1K_V1.get_state_dict(progress=False)
            except Exception as exc:  # download/cache errors come in many types
                raise PretrainedUnavailableError(
                    "could not download the ImageNet VGG16 weights: "
                    f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None
        features = {k[len("features."):]: v for k, v in source_state_dict.items()
                    if k.startswith("features.")} or dict(source_state_dict)
        own = self.encoder.state_dict()
        if features.keys() != own.keys() or any(features[k].shape != own[k].shape
                                                for k in own):
            raise ValueError("source_state_dict does not hold torchvision vgg16 features "
                             f"(expected keys like {sorted(own)[:2]})")
        self.encoder.load_state_dict(features)
