"""LeukocyteMask: the Mask R-CNN of Fan et al. (2019), wrapped as a dense model.

"LeukocyteMask: An automated localization and segmentation method for leukocyte in
blood smear images using deep neural networks", J. Biophotonics 12(7), e201800488,
doi:10.1002/jbio.201800488 (``papers/leukocytemask_maskrcnn_fan2019.txt``).

What the paper fixes, and this module follows (torchvision's ``MaskRCNN`` inside):

* backbone: ResNet50 whose conv1 (7x7) is replaced by two 3x3 convolutions, with
  conv3_x reduced to 2 and conv4_x to 3 bottleneck blocks (conv2_x 3, conv5_x 3 as in
  ResNet50); conv + BN + ReLU, identity shortcuts (Eq. 2);
* FPN: nearest 2x upsampling, 1x1 lateral convs, element-wise addition, a 3x3 conv on
  every merged map -> P2..P5; P6 "just a subsampling of P5 with a factor of 2"
  (torchvision's ``LastLevelMaxPool``: max-pool kernel 1, stride 2);
* RPN: a 3x3 conv to a 2048-d vector, two sibling 1x1 convs (objectness, 4k deltas);
  3 aspect ratios {2:1, 1:1, 1:2}; the 5 scales "determined by the 5 feature maps
  P2..P6", i.e. one anchor size per level; positives IoU > 0.7, negatives < 0.3;
* RoIAlign; a localisation branch of 2 FC layers + sibling classifier / regressor; a
  mask branch "tiny FCN" giving soft masks, average binary cross-entropy (Eq. 4); the
  multi-task loss L = L_cls + L_box + L_mask (Eq. 5) plus the RPN loss (Eq. 3);
* soft masks thresholded at 0.5.

Ambiguities and choices:

1. *Stem widths and strides.*  Not given.  Both 3x3 convs have ResNet50's conv1 width
   (64), the first has stride 2 and ResNet's 3x3/2 max-pool follows, so C2..C5 keep
   strides 4..32.  Stride on the 3x3 conv of each bottleneck (torchvision's ResNet).
2. *Anchor sizes.*  The paper gives none (its Keras base uses 32..512 on images resized
   to 1024 px).  No resizing here (the product feeds native scale, white cell ~80 px),
   so the sizes are 20, 40, 80, 160, 320 px on P2..P6 (an 80 px cell matches P4's 1:1
   anchor).  "k = 15 anchors at each sliding position" counts 3 ratios x 5 scales over
   all levels; per level there are 3 anchors.
3. *RPN width.*  2048 as written (a 4.7 M-parameter conv); ``rpn_channels``.
4. *Heads.*  Unspecified beyond "2 FCs" and "a few stacked convolutional layers":
   Mask R-CNN's (He et al.): 7x7 RoIAlign + FC 1024 x2; 14x14 RoIAlign + four 3x3 convs
   (256) + 2x deconv + 1x1 -> 28x28.  RoIs go to P2..P5 by torchvision's level mapper
   (canonical 224 px -> P4); P6 feeds the RPN only (as in the paper's Keras base).
5. *Classes.*  The paper is binary (WBC / non-WBC).  Here the box classifier has the
   five cell types + background, and the mask branch has two class-agnostic channels
   per RoI: cell and nucleus (see "Nucleus" below).
6. *Training settings.*  SGD, momentum 0.9, batch 2, lr 1e-3, weight decay 2e-4 in the
   paper; the product's loop (AdamW) is used unchanged.  Sampling sizes, NMS and top-n
   values are not given: torchvision's Mask R-CNN defaults in the full configuration.
   No ImageNet weights are reachable: trained from scratch, BatchNorm trainable.
7. *Resizing.*  torchvision's transform would resize to 800-1333 px; it is disabled
   (images are already at the native scale), ImageNet mean/std normalisation is kept.
8. *Augmentation* (flips, rotation, elastic, blur, gamma) belongs to the training
   pipeline, not to this module.
9. *Initialisation* is not given.  Convs: He normal; RPN and FPN: torchvision's.  The
   box classifier's bias starts at a background prior (RetinaNet's trick): P(some
   cell type) = ``initial_cell_prior`` = 0.01 for every RoI, so an untrained network
   detects nothing (renders all background) instead of ~100 random boxes at score
   ~5/6 whose NMS and pixel ownership flip under tiny weight changes (float16
   storage, BN folding); training moves the bias within a few steps.

Nucleus (product extension).  The mask predictor has 2 output channels per RoI:
channel 0 the soft mask of the RoI's cell, channel 1 the soft mask of that cell's
nucleus.  Both are trained with pixel-weighted BCE (Eq. 4) on the RoIAligned targets:
pixels of unknown code (255) weigh 0; the nucleus channel weighs 0 on the whole RoI
when the cell has any pixel of unknown part (code 3, whole-cell masks).  The nucleus
loss is reported as ``loss_nucleus`` and added with ``nucleus_loss_weight``.

Targets from the dense codes (``training/data/sample.py``).  Instances = 4-connected
components of semantic in {1, 2, 3} with at least ``min_instance_area`` pixels (touching
cells become one instance: the dense codes cannot tell them apart); box = the
component's pixel extent; label = majority known class (1..K) in it.  A cell whose
class is unknown (no pixel with a known class) keeps a box and masks (it is a positive
for the RPN, box regression and masks, never "background"), with label K + 1 that the
classifier turns into -log(1 - P(background)): "some cell type".  Images without cells
give empty targets (boxes (0, 4)): all RoIs are background.

Dense output (the package contract).  ``forward`` runs the detector in eval mode (and
restores the modes), keeps class-agnostic detections with score = 1 - P(background) >=
``score_threshold`` (NMS over all classes), pastes their soft masks and renders
P(cell) = max over detections of score x soft cell mask, P(nucleus) = P(cell) x soft
nucleus mask of the same (owning) detection, P(cytoplasm) = P(cell) - P(nucleus),
P(background) = 1 - P(cell); cell-type probabilities = the owner's class distribution
(background removed, renormalised), uniform where no detection reaches.  Logits are
log(clamp(p, 1e-6)).  The product's cell threshold P(cell) >= 0.5 is the paper's soft
mask threshold 0.5 (on the score-weighted mask); :meth:`LeukocyteMask.detect` gives the
instances with binary masks at 0.5 too.  ``forward`` is not differentiable (it runs
under ``no_grad``); training goes through :meth:`LeukocyteMask.training_loss`.

Configurations: ``leukocytemask`` (paper widths; 44.3 M parameters) and
``leukocytemask-compact`` (same structure, widths / 4, FPN 64, RPN 128, FC 256;
2.6 M parameters) for CPU training.  Conv GMACs at 1x3x256x256 depend on the number of
detections (the mask head runs once per detection): full 34.0 (none, e.g. untrained)
to 85.4 (100); compact 0.92 to 4.15.
"""
from __future__ import annotations

import math
from contextlib import contextmanager
from typing import Sequence

import numpy as np
import torch
from torch import nn
from torchvision.models.detection import MaskRCNN
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
from torchvision.models.detection.mask_rcnn import MaskRCNNHeads, MaskRCNNPredictor
from torchvision.ops import MultiScaleRoIAlign

from .base import SegmentationModel
from .leukocytemask_heads import (CellNucleusRoIHeads, NoResizeTransform, WBCFPNBackbone,
                                  WideRPNHead, paste_soft_masks)

PAPER = ("Fan, Zhang, Xi, Li, Liu & Xu (2019), LeukocyteMask: An automated localization "
         "and segmentation method for leukocyte in blood smear images using deep neural "
         "networks, J. Biophotonics 12(7), e201800488, doi:10.1002/jbio.201800488")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
_EPS = 1e-6


@contextmanager
def _modes(module: nn.Module, training: bool):
    """Put ``module`` in train/eval mode and restore every submodule's mode afterwards."""
    saved = [(m, m.training) for m in module.modules()]
    module.train(training)
    try:
        yield
    finally:
        for m, mode in saved:
            m.training = mode


class LeukocyteMask(SegmentationModel):
    """Mask R-CNN with the WBC-oriented ResNet-FPN; see the module docstring."""

    architecture = "leukocytemask"
    size_multiple = 32  # C5 has stride 32 (the transform would zero-pad otherwise)
    loss_config: dict = {}  # own loss: training_loss

    def __init__(self, num_classes: int = 5, stem_channels: int = 64,
                 stage_widths: Sequence[int] = (64, 128, 256, 512),
                 stage_blocks: Sequence[int] = (3, 2, 3, 3), fpn_channels: int = 256,
                 rpn_channels: int = 2048,
                 anchor_sizes: Sequence[float] = (20, 40, 80, 160, 320),
                 aspect_ratios: Sequence[float] = (0.5, 1.0, 2.0),
                 box_head_channels: int = 1024, mask_head_channels: int = 256,
                 mask_head_layers: int = 4,
                 rpn_pre_nms_top_n_train: int = 2000, rpn_pre_nms_top_n_test: int = 1000,
                 rpn_post_nms_top_n_train: int = 2000, rpn_post_nms_top_n_test: int = 1000,
                 box_batch_size_per_image: int = 512, detections_per_image: int = 100,
                 score_threshold: float = 0.5, box_nms_threshold: float = 0.5,
                 min_instance_area: int = 64, nucleus_loss_weight: float = 1.0,
                 initial_cell_prior: float = 0.01):
        widths, blocks = [int(w) for w in stage_widths], [int(b) for b in stage_blocks]
        if len(widths) != 4 or len(blocks) != 4 or min(widths + blocks) < 1:
            raise ValueError(f"stage_widths and stage_blocks need 4 positive values, "
                             f"got {widths} and {blocks}")
        if len(anchor_sizes) != 5:
            raise ValueError(f"anchor_sizes needs one size per level P2..P6, got {anchor_sizes}")
        if not 0.0 < float(initial_cell_prior) < 1.0:
            raise ValueError(f"initial_cell_prior must be in (0, 1), got {initial_cell_prior}")
        if not 0.0 < float(score_threshold) < 1.0:
            raise ValueError(f"score_threshold must be in (0, 1), got {score_threshold}")
        config = {"num_classes": int(num_classes), "stem_channels": int(stem_channels),
                  "stage_widths": widths, "stage_blocks": blocks,
                  "fpn_channels": int(fpn_channels), "rpn_channels": int(rpn_channels),
                  "anchor_sizes": [float(s) for s in anchor_sizes],
                  "aspect_ratios": [float(r) for r in aspect_ratios],
                  "box_head_channels": int(box_head_channels),
                  "mask_head_channels": int(mask_head_channels),
                  "mask_head_layers": int(mask_head_layers),
                  "rpn_pre_nms_top_n_train": int(rpn_pre_nms_top_n_train),
                  "rpn_pre_nms_top_n_test": int(rpn_pre_nms_top_n_test),
                  "rpn_post_nms_top_n_train": int(rpn_post_nms_top_n_train),
                  "rpn_post_nms_top_n_test": int(rpn_post_nms_top_n_test),
                  "box_batch_size_per_image": int(box_batch_size_per_image),
                  "detections_per_image": int(detections_per_image),
                  "score_threshold": float(score_threshold),
                  "box_nms_threshold": float(box_nms_threshold),
                  "min_instance_area": int(min_instance_area),
                  "nucleus_loss_weight": float(nucleus_loss_weight),
                  "initial_cell_prior": float(initial_cell_prior)}
        super().__init__(num_classes, config)
        c = config
        fpn = c["fpn_channels"]
        backbone = WBCFPNBackbone(c["stem_channels"], widths, blocks, fpn)
        anchors = AnchorGenerator(tuple((s,) for s in c["anchor_sizes"]),
                                  (tuple(c["aspect_ratios"]),) * 5)
        levels = ["0", "1", "2", "3"]  # P2..P5; P6 ("pool") is for the RPN only
        box_pool = MultiScaleRoIAlign(levels, 7, 2)
        mask_pool = MultiScaleRoIAlign(levels, 14, 2)
        box_head = TwoMLPHead(fpn * 7 * 7, c["box_head_channels"])
        box_predictor = FastRCNNPredictor(c["box_head_channels"], self.num_classes + 1)
        with torch.no_grad():  # P(some cell) = initial_cell_prior at start (choice 9)
            prior = c["initial_cell_prior"]
            box_predictor.cls_score.bias[1:] = math.log(prior / (1 - prior) / self.num_classes)
        mask_head = MaskRCNNHeads(fpn, [c["mask_head_channels"]] * c["mask_head_layers"], 1)
        mask_predictor = MaskRCNNPredictor(c["mask_head_channels"], c["mask_head_channels"], 2)
        detector = MaskRCNN(
            backbone, num_classes=None, rpn_anchor_generator=anchors,
            rpn_head=WideRPNHead(fpn, c["rpn_channels"], len(c["aspect_ratios"])),
            rpn_pre_nms_top_n_train=c["rpn_pre_nms_top_n_train"],
            rpn_pre_nms_top_n_test=c["rpn_pre_nms_top_n_test"],
            rpn_post_nms_top_n_train=c["rpn_post_nms_top_n_train"],
            rpn_post_nms_top_n_test=c["rpn_post_nms_top_n_test"],
            rpn_fg_iou_thresh=0.7, rpn_bg_iou_thresh=0.3,  # the paper's values
            box_roi_pool=box_pool, box_head=box_head, box_predictor=box_predictor,
            mask_roi_pool=mask_pool, mask_head=mask_head, mask_predictor=mask_predictor)
        detector.roi_heads = CellNucleusRoIHeads(
            box_pool, box_head, box_predictor, 0.5, 0.5, c["box_batch_size_per_image"], 0.25,
            None, c["score_threshold"], c["box_nms_threshold"], c["detections_per_image"],
            mask_roi_pool=mask_pool, mask_head=mask_head, mask_predictor=mask_predictor,
            unknown_label=self.num_classes + 1)
        detector.transform = NoResizeTransform(1, 1, list(IMAGENET_MEAN), list(IMAGENET_STD),
                                               size_divisible=32)
        self.detector = detector

    # ------------------------------------------------------------------ inference
    def _detections(self, x: torch.Tensor) -> list[dict]:
        self.check_input(x)
        x = x.float().contiguous()  # one memory format: detections stay identical
        with torch.no_grad(), _modes(self.detector, False):
            return self.detector(list(x))

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        dets = self._detections(x)
        H, W = x.shape[-2:]
        sem, cls = zip(*(self._render(d, H, W) for d in dets))
        return {"semantic": torch.stack(sem), "cell_type": torch.stack(cls)}

    def _render(self, det: dict, H: int, W: int):
        """Dense log-probabilities of one image from its detections (module docstring)."""
        K = self.num_classes
        device = det["boxes"].device
        p_cell = torch.zeros(H, W, device=device)
        p_nuc = torch.zeros(H, W, device=device)  # soft nucleus mask of the owner
        cls = torch.full((K, H, W), 1.0 / K, device=device)
        for box, score, masks, probs in zip(det["boxes"], det["scores"], det["mask_probs"],
                                            det["class_probs"]):
            pasted = paste_soft_masks(masks, box, H, W)
            if pasted is None:
                continue
            (ys, xs), crop = pasted
            cand = score * crop[0]
            own = cand > p_cell[ys, xs]  # strict: ties keep the higher-scored detection
            p_cell[ys, xs] = torch.where(own, cand, p_cell[ys, xs])
            p_nuc[ys, xs] = torch.where(own, crop[1], p_nuc[ys, xs])
            cls[:, ys, xs] = torch.where(own, probs[:, None, None], cls[:, ys, xs])
        nucleus = p_cell * p_nuc
        sem = torch.stack([1.0 - p_cell, p_cell - nucleus, nucleus])
        return sem.clamp_min(_EPS).log(), cls.clamp_min(_EPS).log()

    def detect(self, x: torch.Tensor, mask_threshold: float = 0.5) -> list[dict]:
        """Instances per image: ``boxes`` (n, 4) xyxy, ``scores``, ``labels`` (1..K),
        ``class_probs`` (n, K), ``cell_masks`` and ``nucleus_masks`` (n, H, W) bool
        (soft masks >= ``mask_threshold``, the paper's 0.5)."""
        H, W = x.shape[-2:]
        out = []
        for det in self._detections(x):
            n = len(det["boxes"])
            cell = torch.zeros(n, H, W, dtype=torch.bool)
            nuc = torch.zeros(n, H, W, dtype=torch.bool)
            for i in range(n):
                pasted = paste_soft_masks(det["mask_probs"][i], det["boxes"][i], H, W)
                if pasted is not None:
                    (ys, xs), crop = pasted
                    cell[i, ys, xs] = crop[0] >= mask_threshold
                    nuc[i, ys, xs] = cell[i, ys, xs] & (crop[1] >= mask_threshold)
            out.append({k: det[k] for k in ("boxes", "scores", "labels", "class_probs")}
                       | {"cell_masks": cell, "nucleus_masks": nuc})
        return out

    # ------------------------------------------------------------------ training
    def instance_targets(self, semantic: torch.Tensor, cell_class: torch.Tensor) -> dict:
        """Mask R-CNN targets of one image from its dense codes (module docstring)."""
        from scipy import ndimage as ndi

        sem = semantic.cpu().numpy().astype(np.uint8)
        cls = cell_class.cpu().numpy()
        H, W = sem.shape
        components, _ = ndi.label((sem >= 1) & (sem <= 3))
        boxes, labels, masks, nucleus_known = [], [], [], []
        for k, sl in enumerate(ndi.find_objects(components), start=1):
            if sl is None:
                continue
            comp = components[sl] == k
            if comp.sum() < self.config["min_instance_area"]:
                continue
            ys, xs = np.nonzero(comp)
            y0, x0 = sl[0].start, sl[1].start
            boxes.append([x0 + xs.min(), y0 + ys.min(), x0 + xs.max() + 1, y0 + ys.max() + 1])
            known = cls[sl][comp]
            known = known[(known >= 1) & (known <= self.num_classes)]
            labels.append(int(np.bincount(known).argmax()) if known.size
                          else self.num_classes + 1)
            codes = np.where(sem == 255, 255, 0).astype(np.uint8)
            codes[sl][comp] = sem[sl][comp]
            masks.append(codes)
            nucleus_known.append(not (sem[sl][comp] == 3).any())
        device = semantic.device
        return {"boxes": torch.tensor(boxes, dtype=torch.float32, device=device).reshape(-1, 4),
                "labels": torch.tensor(labels, dtype=torch.int64, device=device),
                "masks": torch.from_numpy(np.stack(masks) if masks
                                          else np.zeros((0, H, W), np.uint8)).to(device),
                "nucleus_known": torch.tensor(nucleus_known, dtype=torch.bool, device=device)}

    def training_loss(self, x: torch.Tensor, semantic: torch.Tensor, cell_class: torch.Tensor,
                      *, class_weight: float = 1.0, class_weights=None):
        """Mask R-CNN multi-task loss (Eq. 3 + Eq. 5) plus the nucleus mask loss.

        The detector runs in train mode whatever this module's mode (batch statistics
        in BN, running statistics updated), except BatchNorm layers put in eval mode on
        a model in training mode (frozen statistics, e.g. a fine-tune's ``freeze_norm``).
        Returns ``(loss, parts)``; parts: ``loss_objectness``, ``loss_rpn_box_reg``,
        ``loss_classifier`` (before ``class_weight``), ``loss_box_reg``, ``loss_mask``,
        ``loss_nucleus`` and ``total``.
        """
        self.check_input(x)
        targets = [self.instance_targets(s, c) for s, c in zip(semantic, cell_class)]
        heads = self.detector.roi_heads
        heads.class_weights = (None if class_weights is None
                               else torch.as_tensor(class_weights, dtype=torch.float32))
        # BatchNorm layers frozen on a model in training mode (``freeze_norm`` of a
        # fine-tune, a frozen encoder) keep their running statistics
        frozen = [m for m in self.detector.modules()
                  if isinstance(m, nn.modules.batchnorm._BatchNorm) and not m.training] \
            if self.training else []
        try:
            with _modes(self.detector, True):
                for m in frozen:
                    m.eval()
                losses = self.detector(list(x.float()), targets)
        finally:
            heads.class_weights = None
        scale = {"loss_classifier": float(class_weight),
                 "loss_nucleus": self.config["nucleus_loss_weight"]}
        total = sum(v * scale.get(k, 1.0) for k, v in losses.items())
        parts = {k: float(v.detach()) for k, v in losses.items()}
        parts["total"] = float(total.detach())
        return total, parts
