"""WBC-Net: UNet++ with a ResNet34-style residual encoder (Lu et al. 2021).

"WBC-Net: A white blood cell segmentation network based on UNet++ and ResNet",
Applied Soft Computing 101 (2021) 107006, doi:10.1016/j.asoc.2020.107006
(``papers/wbc-net_unetpp-resnet_lu2021.txt``).

What the paper fixes, and this module follows:

* UNet++ (Zhou et al. 2018) nodes ``X^{i,j}``: level ``i`` (resolution 1/2^i),
  column ``j``; the encoder is the column ``X^{i,0}``, every other node is a
  convolutional block of the decoder;
* the encoder "combines convolutional blocks with residual blocks", each residual
  block being two 3x3 convolutions plus an identity shortcut (ResNet, Eq. 2), from
  "the reshaped ResNet34" embedded in the encoder;
* "mixed skip pathways" (Sec. 3.2): besides U-Net's long skip ``X^{0,0} -> X^{0,3}``
  (in the paper's 3-column figure), ``X^{0,0} -> X^{0,2}`` and ``X^{0,1} -> X^{0,3}``
  are added.  Together with the chain ``X^{i,j-1} -> X^{i,j}`` that is exactly the
  dense skip pathway of UNet++: node ``X^{i,j}`` concatenates *all* of
  ``X^{i,0} .. X^{i,j-1}`` and the upsampled ``X^{i+1,j-1}``; we implement it for
  every level and the 5-column network;
* a decoder of convolutions and deconvolutions: upsampling by 2x2 stride-2
  transposed convolutions (one per node, ``f_{i+1} -> f_i`` channels, as in the
  UNet++ reference code), followed by the node's convolutional block;
* deep supervision (Sec. 3.3): the outputs of the five full-resolution nodes
  ``X^{0,0} .. X^{0,4}`` each get a 1x1 output layer and a loss; at inference "the
  segmentation outputs of five branches are averaged";
* loss (Sec. 3.4): ``L = L_BCE + L_Tversky`` with alpha = 0.3 (false positives) and
  beta = 0.7 (false negatives): :attr:`WBCNet.loss_config`.

Where the paper is ambiguous (Fig. 1 with the exact layout is not in our text), and
what we chose:

1. *Filters.*  Never given.  UNet++ uses 32-64-128-256-512 and ResNet34's four
   stages 64-128-256-512: the two coincide on levels 1..4, so the full model uses
   ``filters = [32, 64, 128, 256, 512]``.
2. *Residual blocks per level.*  "Reshaped ResNet34": its four stages have 3, 4, 6
   and 3 basic blocks; we put them on the four downsampled levels ``X^{1,0}..X^{4,0}``
   (same widths as ResNet34's stages) and none on ``X^{0,0}``, which plays the part
   of ResNet's stem ("reshaped": the 7x7 stride-2 stem and its max pooling are
   replaced by a full-resolution convolutional block, because the decoder needs
   full-resolution encoder features).  ``residual_blocks = [0, 3, 4, 6, 3]``.
3. *Encoder node layout.*  We read "combines convolutional blocks with residual
   blocks" as: 2x2 max pooling (UNet++; ResNet would use a stride-2 conv), one
   convolutional block (two conv3x3-BN-ReLU, changes the width) and then the
   residual blocks (ResNet34 basic blocks: conv-BN-ReLU, conv-BN, + identity, ReLU).
   The convolutional block makes every shortcut an identity, as ResNet's Eq. 2 has.
4. *Normalisation and activation* are not stated: BatchNorm + ReLU everywhere (as in
   ResNet34); UNet++'s dropout is not mentioned by the paper and not used.
5. *Mixed skip pathways.*  Read as UNet++'s dense pathways (see above); the two
   connections the paper names are what the dense pathways add to its illustration.
   The ablation "without skip pathways" would be a plain chain; not offered.
6. *Deep-supervised outputs.*  The paper lists ``X^{0,0}`` too (UNet++ itself
   supervises only ``X^{0,1}..X^{0,4}``); we follow the paper.  ``supervised_nodes``
   (columns of level 0) changes the set, e.g. ``[4]`` for "without deep supervision".
7. *Averaging.*  The paper averages the "segmentation outputs", i.e. the sigmoid /
   softmax probabilities of the branches.  We average the softmax probabilities of
   every head and return their log (``logsumexp(log_softmax) - log n``), so the
   contract's ``softmax(forward(x))`` gives back exactly the averaged probabilities.
   Averaging logits instead would let one over-confident branch dominate.  The
   same average is returned in training mode; the loss uses the per-branch outputs.
8. *Heads.*  The paper has one binary (WBC / background) output per branch.  Ours
   has, per supervised node, two 1x1 convs: semantic (background / cytoplasm /
   nucleus; P(cytoplasm) + P(nucleus) is the paper's P(WBC)) and cell type (K = 5
   classes, no background channel).  Every branch is supervised with both.
9. *Loss.*  ``training.losses.segmentation_loss`` with ``region="tversky"``: its
   ``cell_bce`` term is the paper's L_BCE (binary cross-entropy of P(cell) against
   WBC / non-WBC, averaged over the pixels instead of summed) and its region term is
   the paper's Tversky loss (alpha 0.3, beta 0.7, smoothing 1 instead of a "very
   small" epsilon) on the whole cell, and also on nucleus and cytoplasm.  The
   3-class semantic cross-entropy and the cell-type cross-entropy are added for our
   extra outputs.  The list of deep-supervision outputs is averaged (the paper sums
   the branch losses: a constant factor 5).
10. *Input.*  RGB in [0, 1], no normalisation; ``H, W`` multiples of 16 (four
    poolings; callers pad).  No ImageNet initialisation: the reshaped encoder does
    not match torchvision's ResNet34 layout.

Configurations (registered in :mod:`napari_wbcseg.models`): ``wbc-net`` (the above;
31.7 M parameters, 49 GMACs at 256x256) and ``wbc-net-compact``: the same structure,
residual blocks [0, 3, 4, 6, 3] included, with filters divided by 4 (8-16-32-64-128;
2.0 M parameters, 3.1 GMACs at 256x256) for CPU training and inference.  Its time is
dominated by the five full-resolution nodes, so the deep residual stages (most of
the parameters) cost little.
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from .base import SEMANTIC_CHANNELS, SegmentationModel, init_weights

PAPER = ("Lu, Qin, Fan, Lai & Li (2021), WBC-Net: A white blood cell segmentation network "
         "based on UNet++ and ResNet, Applied Soft Computing 101, 107006, "
         "doi:10.1016/j.asoc.2020.107006")


def conv_bn_relu(cin: int, cout: int) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout),
            nn.ReLU(inplace=True)]


def conv_block(cin: int, cout: int) -> nn.Sequential:
    """UNet++'s convolutional block: two conv3x3-BN-ReLU."""
    return nn.Sequential(*conv_bn_relu(cin, cout), *conv_bn_relu(cout, cout))


class ResidualBlock(nn.Module):
    """ResNet34 basic block: conv-BN-ReLU, conv-BN, + identity, ReLU (Fig. 2)."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv1 = nn.Sequential(*conv_bn_relu(channels, channels))
        self.conv2 = nn.Sequential(nn.Conv2d(channels, channels, 3, padding=1, bias=False),
                                   nn.BatchNorm2d(channels))
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.conv2(self.conv1(x)) + x)


class EncoderNode(nn.Module):
    """``X^{i,0}``: (max pooling for i > 0), a convolutional block, residual blocks."""

    def __init__(self, cin: int, cout: int, n_residual: int, pool: bool):
        super().__init__()
        self.pool = nn.MaxPool2d(2) if pool else nn.Identity()
        self.conv = conv_block(cin, cout)
        self.residual = nn.Sequential(*[ResidualBlock(cout) for _ in range(n_residual)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.residual(self.conv(self.pool(x)))


class WBCNet(SegmentationModel):
    """UNet++ with residual encoder, dense skips and five supervised outputs; see the
    module docstring for the paper's points and our choices."""

    architecture = "wbc-net"
    loss_config = {"region": "tversky", "tversky_alpha": 0.3, "tversky_beta": 0.7}

    def __init__(self, filters: Sequence[int] = (32, 64, 128, 256, 512),
                 residual_blocks: Sequence[int] = (0, 3, 4, 6, 3),
                 supervised_nodes: Sequence[int] = (0, 1, 2, 3, 4), num_classes: int = 5):
        filters = [int(f) for f in filters]
        residual_blocks = [int(n) for n in residual_blocks]
        supervised = sorted({int(j) for j in supervised_nodes})
        if len(filters) < 2 or any(f < 1 for f in filters):
            raise ValueError(f"filters must list >= 2 positive widths, got {filters}")
        if len(residual_blocks) != len(filters) or any(n < 0 for n in residual_blocks):
            raise ValueError(f"residual_blocks must give one count >= 0 per level "
                             f"({len(filters)}), got {residual_blocks}")
        depth = len(filters) - 1
        if not supervised or any(not 0 <= j <= depth for j in supervised):
            raise ValueError(f"supervised_nodes must be columns in 0..{depth}, "
                             f"got {list(supervised_nodes)}")
        config = {"filters": filters, "residual_blocks": residual_blocks,
                  "supervised_nodes": supervised, "num_classes": int(num_classes)}
        super().__init__(num_classes, config)
        self.depth = depth
        self.size_multiple = 2 ** depth
        self.supervised_nodes = supervised

        self.encoder = nn.ModuleList(
            EncoderNode(3 if i == 0 else filters[i - 1], f, residual_blocks[i], pool=i > 0)
            for i, f in enumerate(filters))
        # decoder node X^{i,j}, j >= 1: deconvolution of X^{i+1,j-1} to f_i channels,
        # concatenated with X^{i,0..j-1} (dense skip pathways), then a conv block
        self.up = nn.ModuleDict()
        self.nodes = nn.ModuleDict()
        for j in range(1, depth + 1):
            for i in range(depth - j + 1):
                self.up[f"{i}_{j}"] = nn.ConvTranspose2d(filters[i + 1], filters[i], 2, stride=2)
                self.nodes[f"{i}_{j}"] = conv_block((j + 1) * filters[i], filters[i])
        self.semantic_heads = nn.ModuleList(
            nn.Conv2d(filters[0], SEMANTIC_CHANNELS, 1) for _ in supervised)
        self.cell_type_heads = nn.ModuleList(
            nn.Conv2d(filters[0], self.num_classes, 1) for _ in supervised)
        init_weights(self, (*self.semantic_heads, *self.cell_type_heads),
                     conv_types=(nn.Conv2d, nn.ConvTranspose2d), mode="fan_out",
                     nonlinearity="relu")

    def nested_features(self, x: torch.Tensor) -> dict[tuple[int, int], torch.Tensor]:
        """All node outputs ``{(i, j): X^{i,j}}``, computed column by column."""
        X: dict[tuple[int, int], torch.Tensor] = {}
        h = x
        for i, node in enumerate(self.encoder):
            X[i, 0] = h = node(h)
        for j in range(1, self.depth + 1):
            for i in range(self.depth - j + 1):
                up = self.up[f"{i}_{j}"](X[i + 1, j - 1])
                X[i, j] = self.nodes[f"{i}_{j}"](torch.cat([X[i, k] for k in range(j)] + [up], 1))
        return X

    def forward(self, x: torch.Tensor) -> dict:
        self.check_input(x)
        X = self.nested_features(x)
        branches = [{"semantic": sem(X[0, j]), "cell_type": cls(X[0, j])}
                    for j, sem, cls in zip(self.supervised_nodes, self.semantic_heads,
                                           self.cell_type_heads)]
        out = {key: _log_mean_softmax([b[key] for b in branches])
               for key in ("semantic", "cell_type")}
        if self.training:
            out["deep_supervision"] = branches
        return out


def _log_mean_softmax(logits: list[torch.Tensor]) -> torch.Tensor:
    """``log(mean_k softmax(logits_k))``: softmax of the result is the mean probability."""
    if len(logits) == 1:
        return logits[0]
    logp = torch.stack([F.log_softmax(lg, dim=1) for lg in logits])
    return torch.logsumexp(logp, dim=0) - math.log(len(logits))
