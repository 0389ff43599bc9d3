"""WCSegNet: the residual U-Net of Nasser, Belalem & Mahmoudi (2025).

"An Automatic Nucleus Segmentation and Classification of White Blood Cell with
ResUNet", Ingénierie des Systèmes d'Information 30(1), doi:10.18280/isi.300102
(``papers/wcsegnet_resunet_nasser2025.txt``).

What the paper fixes, and this module follows:

* a U-Net (Ronneberger et al.) whose every "Conv-Block" is a residual block
  (Fig. 4): conv 3x3 -> LeakyReLU -> conv 3x3 (no activation), stride 1, "same"
  padding, the block input added to the second conv's output, then LeakyReLU;
* encoder: pairs of residual blocks, each pair followed by 2x2 max pooling,
  filters 64, 128, 256, 512; bottleneck: two Conv-Blocks of 1024 filters;
* one dropout layer after the second 512 Conv-Block of the encoder;
* decoder: four 2x2 upsampling layers (each doubles H and W), each followed by
  two Conv-Blocks of 512, 256, 128, 64 filters; four concatenations (skip
  connections); two dropout layers in the middle of the decoder path;
* then a 3x3 convolution with batch normalisation, LeakyReLU and dropout, and a
  final 1x1 convolution to the class scores (softmax, categorical cross-entropy).

Where the paper is ambiguous or contradicts itself, and what we chose:

1. *Number of encoder blocks.*  "Ten Conv-Blocks, each two followed by a max
   pooling" plus "two Conv-Blocks with 1024 feature maps" in the bottleneck.
   Ten blocks with a pooling after every pair would make five poolings, but the
   decoder has only four upsampling layers.  We read the ten blocks as
   4 encoder pairs (64, 128, 256, 512) + the bottleneck pair (1024): four
   poolings, ``size_multiple = 16``.
2. *Filter sequence.*  The encoder text lists "64, 128, 256, and finally 1024",
   skipping 512, but then speaks of "the second residual 512 conv-block" and "the
   subsequent increase to 512 and 1024".  We use 64, 128, 256, 512, 1024.
3. *Normalisation inside the Conv-Blocks.*  Only the final 3x3 layer is said to
   have batch normalisation; the residual blocks' "convolution blocks" are not
   described further.  We put BatchNorm after every conv of every block (the usual
   Keras ResUNet "conv block", and it makes the 1024-filter network train with the
   paper's small batches); ``norm="none"`` gives plain conv + bias.
4. *Residual shortcut when the channel count changes* (first block of each stage,
   and after every concatenation): the paper sums input and output, which only
   works with equal channels.  We use a 1x1 conv (+ BN) projection (ResNet's
   option B) there and the identity elsewhere.
5. *Upsampling type.*  "Upsampling layers (2x2) ... multiplying each dimension by
   2" is Keras ``UpSampling2D(size=(2, 2))``: parameter-free nearest-neighbour
   upsampling, which we use (no transposed conv, no "up-conv" channel halving);
   the first Conv-Block after the concatenation reduces the channels.
6. *Order of upsampling, concatenation and Conv-Blocks.*  The text lists
   upsampling, then the Conv-Blocks, then "four concatenation layers".  We use the
   standard U-Net order per stage: upsample -> concatenate with the encoder
   feature map of the same size (skip first) -> two Conv-Blocks.
7. *Dropout rates* are never given, nor exactly where "in the middle" of the
   decoder the two dropout layers sit.  We use 0.5 after the second 512 encoder
   block (as in the classic Keras U-Net; it feeds both the skip connection and the
   pooling), 0.3 after the 256- and 128-filter decoder stages (the middle two of
   the four) and 0.1 after the final 3x3 layer.  All three rates are config keys.
8. *LeakyReLU slope.*  Only "typically 0.01 to 0.1" (Keras' default would be 0.3).
   We use 0.01, the value of Maas et al. (the paper's ref. [40]).
9. *Output layer.*  "A final convolution layer (3x3) ... uses a (1x1) size kernel":
   we use 1x1.
10. *Heads.*  The paper has one head with 4 channels (background + nucleus of
    three cell types).  The product needs semantic {background, cytoplasm,
    nucleus} and cell type (K = 5 classes, codes 1..5, no background channel:
    the semantic head says where cells are).  Both heads are 1x1 convs that
    branch after the shared 3x3 conv + BN + LeakyReLU + dropout layer, i.e. they
    share the whole encoder/decoder.
11. *Input size and scaling.*  The paper trains on 120x120 images, which 16 does
    not divide (Keras would fail at the 15 -> 7 -> 14 concatenation unless it
    padded).  We require ``H, W`` multiples of 16 (callers pad) and take RGB in
    [0, 1] without further normalisation.
12. *Initialisation* is not given: He (Kaiming) normal for LeakyReLU, as in the
    paper's ref. [39]; BN weight 1, bias 0.

Configurations (registered in :mod:`napari_wbcseg.models`): ``wcsegnet`` is the
paper's (filters 64-128-256-512 + 1024; 64.6 M parameters, 105 GMACs at 256x256:
four 3x3 convs per stage instead of U-Net's two, hence about twice U-Net's size).
``wcsegnet-compact`` keeps all of the above and divides the filters by 8
(8-16-32-64 + 128; 1.0 M parameters, 1.7 GMACs at 256x256) for CPU inference on
whole 2048x1536 fields; its time is dominated by the full-resolution stage, so
narrower deep stages would barely speed it up.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from .base import SEMANTIC_CHANNELS, SegmentationModel, init_weights

PAPER = ("Nasser, Belalem & Mahmoudi (2025), An Automatic Nucleus Segmentation and "
         "Classification of White Blood Cell with ResUNet, ISI 30(1), "
         "doi:10.18280/isi.300102")

def _conv(cin: int, cout: int, k: int, norm: bool) -> list[nn.Module]:
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, k, padding=k // 2, bias=not norm)]
    if norm:
        layers.append(nn.BatchNorm2d(cout))
    return layers


class ResidualBlock(nn.Module):
    """Fig. 4: conv-BN-LeakyReLU, conv-BN, add the (projected) input, LeakyReLU."""

    def __init__(self, cin: int, cout: int, slope: float, norm: bool):
        super().__init__()
        self.conv1 = nn.Sequential(*_conv(cin, cout, 3, norm), nn.LeakyReLU(slope, inplace=True))
        self.conv2 = nn.Sequential(*_conv(cout, cout, 3, norm))
        self.shortcut = nn.Identity() if cin == cout else nn.Sequential(*_conv(cin, cout, 1, norm))
        self.act = nn.LeakyReLU(slope, inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv2(self.conv1(x))
        return self.act(out + self.shortcut(x))


def _stage(cin: int, cout: int, n_blocks: int, slope: float, norm: bool) -> nn.Sequential:
    return nn.Sequential(*[ResidualBlock(cin if i == 0 else cout, cout, slope, norm)
                           for i in range(n_blocks)])


class WCSegNet(SegmentationModel):
    """Residual U-Net with a semantic and a cell-type head; see the module docstring."""

    architecture = "wcsegnet"

    def __init__(self, filters: Sequence[int] = (64, 128, 256, 512, 1024),
                 num_classes: int = 5, blocks_per_stage: int = 2,
                 negative_slope: float = 0.01, norm: str = "batch",
                 encoder_dropout: float = 0.5, decoder_dropout: float = 0.3,
                 head_dropout: float = 0.1, class_head_level: int = 0):
        filters = [int(f) for f in filters]
        if len(filters) < 2 or any(f < 1 for f in filters):
            raise ValueError(f"filters must list >= 2 positive widths, got {filters}")
        if norm not in ("batch", "none"):
            raise ValueError(f"norm must be 'batch' or 'none', got {norm!r}")
        if int(blocks_per_stage) < 1:
            raise ValueError(f"blocks_per_stage must be >= 1, got {blocks_per_stage}")
        for key, p in (("encoder_dropout", encoder_dropout),
                       ("decoder_dropout", decoder_dropout), ("head_dropout", head_dropout)):
            if not 0.0 <= float(p) < 1.0:
                raise ValueError(f"{key} must be in [0, 1), got {p}")
        config = {"filters": filters, "num_classes": int(num_classes),
                  "blocks_per_stage": int(blocks_per_stage),
                  "negative_slope": float(negative_slope), "norm": norm,
                  "encoder_dropout": float(encoder_dropout),
                  "decoder_dropout": float(decoder_dropout),
                  "head_dropout": float(head_dropout),
                  "class_head_level": int(class_head_level)}
        if not 0 <= int(class_head_level) < len(filters) - 1:
            raise ValueError(f"class_head_level must be in 0..{len(filters) - 2}, "
                             f"got {class_head_level}")
        super().__init__(num_classes, config)
        use_norm, n, slope = norm == "batch", int(blocks_per_stage), float(negative_slope)
        depth = len(filters) - 1  # number of poolings
        self.size_multiple = 2 ** depth

        self.encoder = nn.ModuleList()
        cin = 3
        for f in filters[:-1]:
            self.encoder.append(_stage(cin, f, n, slope, use_norm))
            cin = f
        self.encoder_dropout = nn.Dropout(encoder_dropout)
        self.bottleneck = _stage(filters[-2], filters[-1], n, slope, use_norm)

        self.decoder = nn.ModuleList()
        for i in reversed(range(depth)):
            self.decoder.append(_stage(filters[i] + filters[i + 1], filters[i], n, slope, use_norm))
        # the middle two of the decoder stages (256 and 128 for the paper's filters)
        mid = depth // 2
        self._dropout_after = {mid - 1, mid} if depth >= 2 else {0}
        self.decoder_dropout = nn.Dropout(decoder_dropout)

        self.head = nn.Sequential(*_conv(filters[0], filters[0], 3, use_norm),
                                  nn.LeakyReLU(slope, inplace=True), nn.Dropout(head_dropout))
        self.semantic_head = nn.Conv2d(filters[0], SEMANTIC_CHANNELS, 1)
        # The cell type depends on the whole cell (nuclear shape, granules), so a narrow
        # network may read it from a coarser decoder stage (level L = 1/2^L resolution)
        # and upsample the logits; level 0 is the shared full-resolution head.
        self.class_head_level = level = int(class_head_level)
        if level:
            self.class_neck = nn.Sequential(*_conv(filters[level], filters[level], 3, use_norm),
                                            nn.LeakyReLU(slope, inplace=True),
                                            nn.Dropout(head_dropout))
        self.cell_type_head = nn.Conv2d(filters[level], self.num_classes, 1)
        init_weights(self, (self.semantic_head, self.cell_type_head), a=slope,
                     nonlinearity="leaky_relu")

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        self.check_input(x)
        skips = []
        for i, stage in enumerate(self.encoder):
            x = stage(x)
            if i == len(self.encoder) - 1:
                x = self.encoder_dropout(x)
            skips.append(x)
            x = F.max_pool2d(x, 2)
        x = self.bottleneck(x)
        coarse = None
        for j, stage in enumerate(self.decoder):
            x = F.interpolate(x, scale_factor=2.0, mode="nearest")
            x = stage(torch.cat([skips.pop(), x], dim=1))
            if j in self._dropout_after:
                x = self.decoder_dropout(x)
            if self.class_head_level and j == len(self.decoder) - 1 - self.class_head_level:
                coarse = self.cell_type_head(self.class_neck(x))
        x = self.head(x)
        if coarse is None:
            cell_type = self.cell_type_head(x)
        else:
            cell_type = F.interpolate(coarse, size=x.shape[2:], mode="bilinear",
                                      align_corners=False)
        return {"semantic": self.semantic_head(x), "cell_type": cell_type}
