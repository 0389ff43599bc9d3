"""Building blocks of LeukocyteMask (see ``leukocytemask.py`` for the paper and choices).

* :class:`WBCResNet`: the paper's "WBC-oriented" ResNet50 (two 3x3 stem convs, 3-2-3-3
  bottleneck blocks) returning C2..C5;
* :class:`WBCFPNBackbone`: that ResNet + torchvision's FPN with P6 = max-pool(1, stride 2)
  of P5 (``LastLevelMaxPool``);
* :class:`WideRPNHead`: the RPN's 3x3 conv to a ``mid_channels``-d vector (2048 in the
  paper) and two sibling 1x1 convs;
* :class:`NoResizeTransform`: torchvision's normalisation and batching without resizing;
* :class:`CellNucleusRoIHeads`: box head + a two-channel mask head (cell, nucleus) with
  losses for partly labelled cells.
"""
from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn
from torch.nn import functional as F
from torchvision.models.detection.roi_heads import RoIHeads, expand_boxes, expand_masks
from torchvision.models.detection.transform import GeneralizedRCNNTransform
from torchvision.ops import boxes as box_ops
from torchvision.ops import roi_align
from torchvision.ops.feature_pyramid_network import FeaturePyramidNetwork, LastLevelMaxPool


def _conv_bn(cin: int, cout: int, k: int, stride: int = 1, relu: bool = True) -> nn.Sequential:
    # conv + BN inside one nn.Sequential so SegmentationModel.inference_copy can fold them
    layers = [nn.Conv2d(cin, cout, k, stride, k // 2, bias=False), nn.BatchNorm2d(cout)]
    if relu:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class Bottleneck(nn.Module):
    """ResNet50 building block: 1x1 -> 3x3 (stride) -> 1x1 (x4 channels), identity add, ReLU."""

    expansion = 4

    def __init__(self, cin: int, width: int, stride: int):
        super().__init__()
        cout = width * self.expansion
        self.conv1 = _conv_bn(cin, width, 1)
        self.conv2 = _conv_bn(width, width, 3, stride)
        self.conv3 = _conv_bn(width, cout, 1, relu=False)
        self.shortcut = (nn.Identity() if stride == 1 and cin == cout
                         else _conv_bn(cin, cout, 1, stride, relu=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.conv3(self.conv2(self.conv1(x))) + self.shortcut(x))


class WBCResNet(nn.Module):
    """Bottom-up pathway: stem of two 3x3 convs, max-pool, conv2_x..conv5_x (C2..C5)."""

    def __init__(self, stem_channels: int, widths, blocks):
        super().__init__()
        # conv1 (7x7/2 in ResNet50) -> two 3x3 convs, the first with stride 2, so the
        # pyramid keeps strides 4, 8, 16, 32
        self.stem = nn.Sequential(_conv_bn(3, stem_channels, 3, 2),
                                  _conv_bn(stem_channels, stem_channels, 3))
        self.pool = nn.MaxPool2d(3, 2, 1)
        self.stages = nn.ModuleList()
        self.out_channels = []
        cin = stem_channels
        for i, (width, n) in enumerate(zip(widths, blocks)):
            stage = [Bottleneck(cin if j == 0 else width * 4, width,
                                2 if (i > 0 and j == 0) else 1) for j in range(n)]
            self.stages.append(nn.Sequential(*stage))
            cin = width * 4
            self.out_channels.append(cin)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> "OrderedDict[str, torch.Tensor]":
        x = self.pool(self.stem(x))
        out = OrderedDict()
        for i, stage in enumerate(self.stages):
            x = stage(x)
            out[str(i)] = x  # "0".."3" = C2..C5, the names the RoI poolers use
        return out


class WBCFPNBackbone(nn.Module):
    """Modified ResNet + FPN: P2..P5 (keys "0".."3") and P6 = P5 subsampled by 2 ("pool")."""

    def __init__(self, stem_channels: int, widths, blocks, fpn_channels: int):
        super().__init__()
        self.body = WBCResNet(stem_channels, widths, blocks)
        self.fpn = FeaturePyramidNetwork(self.body.out_channels, fpn_channels,
                                         extra_blocks=LastLevelMaxPool())
        self.out_channels = fpn_channels

    def forward(self, x: torch.Tensor) -> "OrderedDict[str, torch.Tensor]":
        return self.fpn(self.body(x))


class WideRPNHead(nn.Module):
    """RPN head: 3x3 conv to ``mid_channels`` + ReLU, 1x1 objectness and 1x1 box deltas.

    Like torchvision's RPNHead but with the intermediate width free (the paper: 2048).
    One sigmoid logit per anchor replaces the paper's 2 softmax scores (equivalent).
    """

    def __init__(self, in_channels: int, mid_channels: int, num_anchors: int):
        super().__init__()
        self.conv = nn.Sequential(nn.Conv2d(in_channels, mid_channels, 3, padding=1),
                                  nn.ReLU(inplace=True))
        self.cls_logits = nn.Conv2d(mid_channels, num_anchors, 1)
        self.bbox_pred = nn.Conv2d(mid_channels, num_anchors * 4, 1)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.normal_(m.weight, std=0.01)
                nn.init.zeros_(m.bias)

    def forward(self, features: list[torch.Tensor]):
        hidden = [self.conv(f) for f in features]
        return [self.cls_logits(h) for h in hidden], [self.bbox_pred(h) for h in hidden]


class NoResizeTransform(GeneralizedRCNNTransform):
    """ImageNet normalisation and zero-padding to a multiple of 32, but no resizing:
    the product already feeds images at the native scale (a white cell ~80 px)."""

    def resize(self, image, target=None):
        return image, target


class CellNucleusRoIHeads(RoIHeads):
    """Mask R-CNN RoI heads whose mask branch predicts two channels per RoI.

    Channel 0: class-agnostic soft cell mask; channel 1: soft nucleus mask (the nucleus
    of the RoI's cell, 0 outside it).  Targets hold ``masks`` (n, H, W) uint8 codes per
    instance (0 outside the cell, 1 cytoplasm, 2 nucleus, 3 cell of unknown part,
    255 unknown pixel) and ``nucleus_known`` (n,) bool.  Label ``unknown_label`` marks
    a cell of unknown class: a positive for the RPN, box and mask losses, but its
    classification loss is only "some cell type" (-log(1 - P(background))).
    Detections are class-agnostic (see :meth:`detect`).
    """

    def __init__(self, *args, unknown_label: int, **kwargs):
        super().__init__(*args, **kwargs)
        self.unknown_label = int(unknown_label)
        self.class_weights: torch.Tensor | None = None  # (K,), set per call by the model

    def forward(self, features, proposals, image_shapes, targets=None):
        if self.training:
            proposals, matched, labels, reg_targets = self.select_training_samples(
                proposals, targets)
        feats = self.box_head(self.box_roi_pool(features, proposals, image_shapes))
        class_logits, box_regression = self.box_predictor(feats)
        if not self.training:
            result = self.detect(class_logits, box_regression, proposals, image_shapes)
            logits = self._mask_logits(features, [r["boxes"] for r in result], image_shapes)
            for r, m in zip(result, logits.split([len(r["boxes"]) for r in result])):
                r["mask_probs"] = m.sigmoid()
            return result, {}
        loss_cls, loss_box = self.box_losses(class_logits, box_regression, labels, reg_targets)
        pos = [torch.where(lab > 0)[0] for lab in labels]
        logits = self._mask_logits(features, [p[i] for p, i in zip(proposals, pos)], image_shapes)
        loss_mask, loss_nucleus = self.mask_losses(
            logits, [p[i] for p, i in zip(proposals, pos)], targets,
            [m[i] for m, i in zip(matched, pos)])
        return [], {"loss_classifier": loss_cls, "loss_box_reg": loss_box,
                    "loss_mask": loss_mask, "loss_nucleus": loss_nucleus}

    def _mask_logits(self, features, boxes, image_shapes) -> torch.Tensor:
        pooled = self.mask_roi_pool(features, boxes, image_shapes)
        return self.mask_predictor(self.mask_head(pooled))

    def box_losses(self, class_logits, box_regression, labels, reg_targets):
        labels = torch.cat(labels)
        reg_targets = torch.cat(reg_targets)
        n, c = class_logits.shape
        logp = F.log_softmax(class_logits, 1)
        unknown = labels == self.unknown_label
        nll_known = -logp.gather(1, labels.clamp(0, c - 1)[:, None])[:, 0]
        nll_unknown = -torch.logsumexp(logp[:, 1:], 1)  # -log P(any cell type)
        nll = torch.where(unknown, nll_unknown, nll_known)
        weight = torch.ones_like(nll)
        if self.class_weights is not None:
            known_fg = (labels > 0) & ~unknown
            per_class = self.class_weights.to(nll)[(labels - 1).clamp(0, c - 2)]
            weight = torch.where(known_fg, per_class, weight)
        loss_cls = (weight * nll).sum() / weight.sum().clamp_min(1e-6)
        # box regression of the GT class; for unknown-class cells of the most likely
        # class, the box inference would use
        guess = class_logits[:, 1:].detach().argmax(1) + 1
        reg_class = torch.where(unknown, guess, labels.clamp(0, c - 1))
        pos = torch.where(labels > 0)[0]
        deltas = box_regression.reshape(n, -1, 4)[pos, reg_class[pos]]
        loss_box = F.smooth_l1_loss(deltas, reg_targets[pos], beta=1 / 9,
                                    reduction="sum") / max(n, 1)
        return loss_cls, loss_box

    def mask_losses(self, mask_logits, proposals, targets, matched):
        """Pixel-weighted BCE of the cell channel and of the nucleus channel."""
        if mask_logits.shape[0] == 0:
            zero = mask_logits.sum() * 0.0
            return zero, zero
        size = mask_logits.shape[-1]
        planes = []
        for props, t, idx in zip(proposals, targets, matched):
            if len(props) == 0:
                continue
            codes = t["masks"]
            known = codes != 255
            nuc_known = known & (codes != 3) & t["nucleus_known"][:, None, None]
            maps = torch.stack([(codes >= 1) & (codes <= 3), known, codes == 2, nuc_known], 1)
            rois = torch.cat([idx[:, None].to(props), props], 1)
            planes.append(roi_align(maps.to(props), rois, (size, size), 1.0))
        planes = torch.cat(planes)  # (P, 4, M, M): cell, cell weight, nucleus, nucleus weight

        def weighted_bce(logit, target, weight):
            target = (target / weight.clamp_min(1e-6)).clamp(0, 1)
            bce = F.binary_cross_entropy_with_logits(logit, target, reduction="none")
            return (weight * bce).sum() / weight.sum().clamp_min(1.0)

        return (weighted_bce(mask_logits[:, 0], planes[:, 0], planes[:, 1]),
                weighted_bce(mask_logits[:, 1], planes[:, 2], planes[:, 3]))

    def detect(self, class_logits, box_regression, proposals, image_shapes):
        """Class-agnostic detections: score = 1 - P(background), box of the most likely
        class, NMS over all classes, ``class_probs`` = P(class | cell) (K,)."""
        probs = F.softmax(class_logits, -1)
        fg = probs[:, 1:]
        scores = fg.sum(1)
        labels = fg.argmax(1) + 1
        boxes = self.box_coder.decode(box_regression, proposals)
        boxes = boxes[torch.arange(len(labels), device=labels.device), labels]
        cls_probs = fg / scores.clamp_min(1e-12)[:, None]
        result = []
        counts = [len(p) for p in proposals]
        for b, s, lab, cp, shape in zip(boxes.split(counts), scores.split(counts),
                                        labels.split(counts), cls_probs.split(counts),
                                        image_shapes):
            b = box_ops.clip_boxes_to_image(b, shape)
            keep = torch.where(s >= self.score_thresh)[0]
            keep = keep[box_ops.remove_small_boxes(b[keep], min_size=1e-2)]
            keep = keep[box_ops.nms(b[keep], s[keep], self.nms_thresh)][: self.detections_per_img]
            result.append({"boxes": b[keep], "scores": s[keep], "labels": lab[keep],
                           "class_probs": cp[keep]})
        return result


def paste_soft_masks(masks: torch.Tensor, box: torch.Tensor, height: int, width: int):
    """Paste (C, M, M) soft masks into an image the way torchvision does (1-pixel zero
    border, box expanded to match, bilinear).  Returns (slices, (C, h, w) crop) or None."""
    padded, scale = expand_masks(masks[None], 1)
    x0, y0, x1, y1 = (int(v) for v in expand_boxes(box[None], scale)[0].to(torch.int64))
    w, h = max(x1 - x0 + 1, 1), max(y1 - y0 + 1, 1)
    xa, xb, ya, yb = max(x0, 0), min(x1 + 1, width), max(y0, 0), min(y1 + 1, height)
    if xa >= xb or ya >= yb:
        return None
    crop = F.interpolate(padded, size=(h, w), mode="bilinear", align_corners=False)[0]
    return (slice(ya, yb), slice(xa, xb)), crop[:, ya - y0:yb - y0, xa - x0:xb - x0]
