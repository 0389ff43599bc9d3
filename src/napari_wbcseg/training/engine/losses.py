"""Losses (torch) for the semantic + cell-type heads, with partial labels.

Targets use the codes of :mod:`.sample`: semantic 0 background, 1 cytoplasm,
2 nucleus, 3 cell of unknown part, 255 (``ignore_index``) fully unknown; cell class
1..K on cells, 0 background, 255 unknown.  Every term averages over the pixels it
can use and is exactly zero, but still attached to the graph, when there are none,
so batches without cells or without known classes never give NaN.

Building blocks from the papers: :func:`focal_loss` and :func:`dice_loss` (Zhu et al.
2023: L = L_dice + L_focal, gamma = 2) and :func:`tversky_loss` (Lu et al. 2021, WBC-Net:
L = L_BCE + L_Tversky, alpha = 0.3 on false positives, beta = 0.7 on false negatives).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["cell_log_probs", "dice_loss", "focal_loss", "segmentation_loss", "tversky_loss"]

_KNOWN_PART = (0, 1, 2)


def _zero(like: torch.Tensor) -> torch.Tensor:
    return like.sum() * 0.0


def _masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    n = mask.sum()
    if n == 0:
        return _zero(values)
    return torch.where(mask, values, torch.zeros_like(values)).sum() / n


def _prep(pred: torch.Tensor, target: torch.Tensor, mask):
    target = target.to(pred.dtype)
    if target.shape != pred.shape:
        raise ValueError(f"pred {tuple(pred.shape)} and target {tuple(target.shape)} differ")
    if mask is None:
        mask = torch.ones_like(pred)
    else:
        mask = mask.to(pred.dtype)
        if pred.ndim == 4 and mask.ndim == 3:
            mask = mask.unsqueeze(1)
        mask = mask.expand_as(pred)
    dims = (0, 2, 3) if pred.ndim == 4 else tuple(range(pred.ndim))
    return target, mask, dims


def dice_loss(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None,
              smooth: float = 1.0) -> torch.Tensor:
    """Soft Dice loss ``1 - (2 sum(p g) + s) / (sum(p) + sum(g) + s)``.

    ``pred`` are probabilities, ``target`` 0/1 of the same shape; (N, C, H, W) inputs
    give one Dice per channel (summed over batch and pixels), averaged over channels.
    ``mask`` (same shape, or (N, H, W) for 4-D inputs) keeps only the pixels it marks.
    """
    target, mask, dims = _prep(pred, target, mask)
    p, g = pred * mask, target * mask
    inter = (p * g).sum(dims)
    dice = (2 * inter + smooth) / (p.sum(dims) + g.sum(dims) + smooth)
    return (1 - dice).mean()


def tversky_loss(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None,
                 alpha: float = 0.3, beta: float = 0.7, smooth: float = 1.0) -> torch.Tensor:
    """Tversky loss of WBC-Net: ``sum_c (1 - T_c)``,
    ``T = (sum p g + s) / (sum p g + alpha sum p (1 - g) + beta sum (1 - p) g + s)``.

    Shapes and ``mask`` as in :func:`dice_loss`; the per-channel terms are summed, as
    in the paper.  alpha = beta = 0.5 gives the Dice loss.
    """
    target, mask, dims = _prep(pred, target, mask)
    tp = (pred * target * mask).sum(dims)
    fp = (pred * (1 - target) * mask).sum(dims)
    fn = ((1 - pred) * target * mask).sum(dims)
    t = (tp + smooth) / (tp + alpha * fp + beta * fn + smooth)
    return (1 - t).sum()


def focal_loss(logits: torch.Tensor, target: torch.Tensor, *, gamma: float = 2.0,
               weight: torch.Tensor | None = None, ignore_index: int = 255) -> torch.Tensor:
    """Multi-class focal loss ``-(1 - p_t)^gamma log p_t`` (Lin et al.), mean over the
    pixels whose target is a valid channel (others, e.g. ``ignore_index``, are skipped).

    ``logits`` (N, C, ...), ``target`` (N, ...) integer; ``weight`` optional (C,)
    per-class factors (the alpha of the paper); ``gamma=0`` gives cross-entropy.
    """
    C = logits.shape[1]
    target = target.long()
    valid = (target >= 0) & (target < C) & (target != ignore_index)
    if not valid.any():
        return _zero(logits)
    t = torch.where(valid, target, torch.zeros_like(target))
    logp = F.log_softmax(logits, dim=1)
    logp_t = logp.gather(1, t.unsqueeze(1)).squeeze(1)
    loss = -logp_t if gamma == 0 else -((1 - logp_t.exp()).clamp_min(0) ** gamma) * logp_t
    w = valid.to(logits.dtype)
    if weight is not None:
        w = w * weight.to(logits)[t]
    return (loss * w).sum() / w.sum().clamp_min(torch.finfo(logits.dtype).tiny)


def cell_log_probs(semantic_logits: torch.Tensor):
    """``(log P(background), log P(cell))`` with P(cell) = P(cytoplasm) + P(nucleus)."""
    logp = F.log_softmax(semantic_logits, dim=1)
    return logp[:, 0], torch.logsumexp(logp[:, 1:3], dim=1)


def _unpack(outputs):
    if isinstance(outputs, torch.Tensor):
        return outputs, None
    if isinstance(outputs, dict):
        return outputs["semantic"], outputs.get("cell_type")
    sem, *rest = outputs
    return sem, (rest[0] if rest else None)


def _subsample_factor(target_hw, logits_hw) -> int:
    """``f`` when the logits are the targets' size divided by a whole ``f`` > 1, else 1."""
    (th, tw), (lh, lw) = (tuple(int(v) for v in target_hw), tuple(int(v) for v in logits_hw))
    if lh < 1 or lh >= th or th % lh or tw % max(lw, 1) or th // lh != tw // lw:
        return 1
    return th // lh


def segmentation_loss(outputs, semantic: torch.Tensor, cell_class: torch.Tensor, *,
                      ignore_index: int = 255, dice_weight: float = 1.0,
                      cell_weight: float = 1.0, class_weight: float = 1.0,
                      semantic_weight: float = 1.0,
                      focal_gamma: float = 0.0, region: str = "dice",
                      tversky_alpha: float = 0.3, tversky_beta: float = 0.7,
                      class_weights: torch.Tensor | None = None,
                      class_mask: torch.Tensor | None = None,
                      class_log_prior: torch.Tensor | None = None):
    """Loss for partially labelled batches; returns ``(total, parts)``.

    ``outputs``: the model's dict ``{"semantic": (N, 3, H, W), "cell_type": (N, K, H, W)}``
    of logits (``cell_type`` optional), a (semantic, cell_type) pair, or the semantic
    logits alone; a list of such dicts (deep supervision) averages their losses, each
    weighted by its optional ``"weight"`` (1 when absent).  An output smaller than the
    targets by a whole factor ``f`` (a coarse deep-supervision head) is scored on every
    ``f``-th target pixel.
    ``semantic`` and ``cell_class``: (N, H, W) integer targets.

    Terms (``parts`` holds each as a float, plus ``total``):

    * ``semantic_ce`` (x ``semantic_weight``): cross-entropy (focal with ``focal_gamma`` > 0) over background /
      cytoplasm / nucleus, on pixels whose target is 0, 1 or 2;
    * ``cell_bce`` (x ``cell_weight``): binary cross-entropy of P(cell) = P(cyto) +
      P(nucleus) against "target in {1, 2, 3}", on pixels with target 0..3, so
      whole-cell masks (code 3) teach cell versus background;
    * ``region`` (x ``dice_weight``): soft Dice (or Tversky with ``region="tversky"``) of
      P(cell) on pixels with target 0..3, and of P(nucleus) and P(cytoplasm) on pixels
      with target 0..2, averaged over those with any such pixel;
    * ``class_ce`` (x ``class_weight``): cross-entropy of the cell-type logits on pixels
      with a known class 1..K (code c -> channel c - 1), ``class_weights`` optional (K,).
      ``class_mask`` (K,) bool, optional: the softmax runs over these classes only, so the
      logits of the others get no gradient (a fine-tune on a few images that lack a type
      must not teach the model never to predict it).  ``class_log_prior`` (K,), optional:
      added to the cell-type logits inside the loss only (balanced softmax, Ren et al.
      2020), so the head learns what distinguishes the types, not how often each occurs
      in this training data.
    """
    if isinstance(outputs, (list, tuple)) and outputs and isinstance(outputs[0], dict):
        results = [segmentation_loss(o, semantic, cell_class, ignore_index=ignore_index,
                                     dice_weight=dice_weight, cell_weight=cell_weight,
                                     class_weight=class_weight, focal_gamma=focal_gamma,
                                     semantic_weight=semantic_weight,
                                     region=region, tversky_alpha=tversky_alpha,
                                     tversky_beta=tversky_beta, class_weights=class_weights,
                                     class_mask=class_mask,
                                     class_log_prior=class_log_prior)
                   for o in outputs]
        weights = [float(o.get("weight", 1.0)) for o in outputs]
        norm = sum(weights)
        total = sum(w * r[0] for w, r in zip(weights, results)) / norm
        parts = {k: sum(w * r[1][k] for w, r in zip(weights, results)) / norm
                 for k in results[0][1]}
        return total, parts
    if region not in ("dice", "tversky"):
        raise ValueError(f"region must be 'dice' or 'tversky', got {region!r}")
    sem_logits, cls_logits = _unpack(outputs)
    if sem_logits.ndim != 4 or sem_logits.shape[1] != 3:
        raise ValueError(f"semantic logits must be (N, 3, H, W), got {tuple(sem_logits.shape)}")
    semantic = semantic.to(sem_logits.device).long()
    cell_class = cell_class.to(sem_logits.device).long()
    factor = _subsample_factor(semantic.shape[-2:], sem_logits.shape[-2:])
    if factor > 1:  # a coarse deep-supervision output: targets taken every factor-th pixel
        semantic, cell_class = semantic[..., ::factor, ::factor], cell_class[..., ::factor, ::factor]
    if semantic.shape != sem_logits.shape[:1] + sem_logits.shape[2:]:
        raise ValueError(f"semantic target {tuple(semantic.shape)} does not match logits "
                         f"{tuple(sem_logits.shape)}")
    known_part = (semantic >= 0) & (semantic <= 2) & (semantic != ignore_index)
    known_cell = known_part | ((semantic == 3) & (semantic != ignore_index))
    is_cell = (semantic >= 1) & known_cell

    sem_target = torch.where(known_part, semantic, torch.full_like(semantic, -1))
    sem_ce = focal_loss(sem_logits, sem_target, gamma=focal_gamma, ignore_index=-1)

    log_bg, log_cell = cell_log_probs(sem_logits)
    bce = -(torch.where(is_cell, log_cell, log_bg))
    cell_bce = _masked_mean(bce, known_cell)

    probs = torch.softmax(sem_logits, dim=1)
    region_fn = dice_loss if region == "dice" else (
        lambda p, g, m: tversky_loss(p, g, m, alpha=tversky_alpha, beta=tversky_beta))
    terms = []
    if known_cell.any():
        terms.append(region_fn(probs[:, 1] + probs[:, 2], is_cell, known_cell))
    if known_part.any():
        for ch in (2, 1):
            terms.append(region_fn(probs[:, ch], semantic == ch, known_part))
    region_loss = sum(terms) / len(terms) if terms else _zero(sem_logits)

    if cls_logits is not None:
        K = cls_logits.shape[1]
        if cls_logits.shape[2:] != sem_logits.shape[2:]:
            raise ValueError("cell_type and semantic logits differ in size")
        known_cls = (cell_class >= 1) & (cell_class <= K) & (cell_class != ignore_index)
        if class_log_prior is not None:
            cls_logits = cls_logits + class_log_prior.to(cls_logits).view(1, K, 1, 1)
        if class_mask is not None:
            allowed = class_mask.to(cls_logits.device).bool()
            cls_logits = cls_logits.masked_fill(~allowed.view(1, K, 1, 1), -1e4)
            known_cls &= allowed[(cell_class - 1).clamp(0, K - 1)]
        cls_target = torch.where(known_cls, cell_class - 1, torch.full_like(cell_class, -1))
        class_ce = focal_loss(cls_logits, cls_target, gamma=0.0, weight=class_weights,
                              ignore_index=-1)
    else:
        class_ce = _zero(sem_logits)

    total = semantic_weight * sem_ce + cell_weight * cell_bce + dice_weight * region_loss + class_weight * class_ce
    parts = {"semantic_ce": float(sem_ce.detach()), "cell_bce": float(cell_bce.detach()),
             "region": float(region_loss.detach()), "class_ce": float(class_ce.detach()),
             "total": float(total.detach())}
    return total, parts
