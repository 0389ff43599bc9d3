"""LeukocyteMask (Fan et al. 2019): the paper's structure, targets, losses and rendering.

The contract (shapes, gradients, save/load) is in ``test_contract.py``.  The full model
(~44 M parameters) is built once; everything else uses the compact one.
"""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from napari_wbcseg.models import create_model
from napari_wbcseg.models.leukocytemask_heads import Bottleneck, CellNucleusRoIHeads


@pytest.fixture(scope="module")
def full():
    torch.manual_seed(0)
    return create_model("leukocytemask").eval()


@pytest.fixture()
def compact():
    torch.manual_seed(0)
    return create_model("leukocytemask-compact").eval()


def _disks(n=2, size=96, radii=(16, 18)):
    """Light background, two pink disks (classes 1 and 2) with dark nuclei (half radius)."""
    yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    x = torch.full((n, 3, size, size), 0.9)
    sem = torch.zeros(n, size, size, dtype=torch.long)
    cls = torch.zeros_like(sem)
    centres = ((0.3 * size, 0.3 * size), (0.68 * size, 0.7 * size))
    for i in range(n):
        for k, ((cy, cx), r) in enumerate(zip(centres, radii)):
            d2 = (yy - cy - 3 * i) ** 2 + (xx - cx) ** 2
            cell, nuc = d2 <= r * r, d2 <= (r / 2) ** 2
            x[i, :, cell] = torch.tensor([0.75, 0.55, 0.75])[:, None]
            x[i, :, nuc] = torch.tensor([0.35, 0.2, 0.5])[:, None]
            sem[i][cell], sem[i][nuc], cls[i][cell] = 1, 2, 1 + k
    return x, sem, cls


# ---------------------------------------------------------------- structure (paper)
def test_backbone_is_the_wbc_oriented_resnet50(full):
    body = full.detector.backbone.body
    stem = [m for m in body.stem.modules() if isinstance(m, nn.Conv2d)]
    assert [(c.kernel_size, c.stride, c.out_channels) for c in stem] == \
        [((3, 3), (2, 2), 64), ((3, 3), (1, 1), 64)]  # conv1 -> two 3x3 convs
    assert [len(s) for s in body.stages] == [3, 2, 3, 3]  # conv3_x: 2, conv4_x: 3 blocks
    assert all(isinstance(b, Bottleneck) for s in body.stages for b in s)
    assert body.out_channels == [256, 512, 1024, 2048]  # ResNet50 widths
    assert all(isinstance(m, nn.BatchNorm2d) and m.weight.requires_grad
               for m in body.modules() if isinstance(m, nn.BatchNorm2d))


def test_fpn_levels_and_p6_subsampling(compact):
    x = torch.rand(1, 3, 128, 96)
    with torch.no_grad():
        feats = compact.detector.backbone(x)
    assert list(feats) == ["0", "1", "2", "3", "pool"]
    assert [tuple(f.shape[-2:]) for f in feats.values()] == \
        [(32, 24), (16, 12), (8, 6), (4, 3), (2, 2)]  # strides 4..64, no resizing
    torch.testing.assert_close(feats["pool"], feats["3"][..., ::2, ::2])  # P6 = P5 / 2
    assert {f.shape[1] for f in feats.values()} == {64}


def test_rpn_anchors_and_heads(full):
    det = full.detector
    gen = det.rpn.anchor_generator
    assert gen.num_anchors_per_location() == [3] * 5  # 3 ratios on each of P2..P6
    assert [s for (s,) in gen.sizes] == [20, 40, 80, 160, 320]  # one scale per level
    assert det.rpn.head.conv[0].out_channels == 2048  # "a 2048-dimensional vector"
    assert det.rpn.proposal_matcher.high_threshold == 0.7
    assert det.rpn.proposal_matcher.low_threshold == 0.3
    heads = det.roi_heads
    assert isinstance(heads, CellNucleusRoIHeads)
    assert heads.box_roi_pool.featmap_names == ["0", "1", "2", "3"]  # RoIAlign on P2..P5
    assert heads.box_predictor.cls_score.out_features == 6  # background + 5 cell types
    assert heads.mask_predictor.mask_fcn_logits.out_channels == 2  # cell, nucleus
    assert full.num_parameters() > 40e6


def test_no_resizing_and_imagenet_normalisation(compact):
    images, _ = compact.detector.transform(list(torch.rand(1, 3, 64, 96)))
    assert images.image_sizes == [(64, 96)] and images.tensors.shape[-2:] == (64, 96)
    white = torch.ones(1, 3, 32, 32)
    out, _ = compact.detector.transform(list(white))
    expected = (1 - torch.tensor([0.485, 0.456, 0.406])) / torch.tensor([0.229, 0.224, 0.225])
    torch.testing.assert_close(out.tensors[0, :, 0, 0], expected)


def test_compact_size():
    m = create_model("leukocytemask-compact")
    assert 2e6 <= m.num_parameters() <= 5e6


# ---------------------------------------------------------------- targets
def test_instance_targets_from_dense_codes(compact):
    sem = torch.zeros(64, 64, dtype=torch.long)
    cls = torch.zeros_like(sem)
    sem[4:20, 6:30] = 1
    sem[8:14, 10:20] = 2
    cls[4:20, 6:30] = 3
    cls[4:6, 6:30] = 4  # minority class
    sem[30:50, 30:50] = 3  # whole-cell mask, unknown class
    cls[30:50, 30:50] = 255
    sem[60:62, 20:23] = 1  # tiny fragment: dropped
    sem[40:64, 0:10] = 255
    t = compact.instance_targets(sem, cls)
    assert t["boxes"].tolist() == [[6, 4, 30, 20], [30, 30, 50, 50]]
    assert t["labels"].tolist() == [3, 6]  # majority class; K + 1 = unknown class
    assert t["nucleus_known"].tolist() == [True, False]
    assert t["masks"].shape == (2, 64, 64)
    assert set(t["masks"][0].unique().tolist()) == {0, 1, 2, 255}
    assert (t["masks"][0, 30:50, 30:50] == 0).all()  # the other cell is not this one
    empty = compact.instance_targets(torch.zeros(32, 32, dtype=torch.long),
                                     torch.zeros(32, 32, dtype=torch.long))
    assert empty["boxes"].shape == (0, 4) and empty["masks"].shape == (0, 32, 32)


def test_unknown_class_and_class_weights_in_box_loss(compact):
    heads = compact.detector.roi_heads
    logits = torch.tensor([[0.0, 1.0, 0.0, 0.0, 0.0, 0.0], [2.0, 0.0, 0.0, 0.0, 0.0, 0.0]])
    reg = torch.zeros(2, 24)
    tgt = [torch.zeros(2, 4)]
    loss_unknown, _ = heads.box_losses(logits, reg, [torch.tensor([6, 0])], tgt)
    logp = F.log_softmax(logits, 1)
    expected = -(torch.logsumexp(logp[0, 1:], 0) + logp[1, 0]) / 2  # "some cell type"
    torch.testing.assert_close(loss_unknown, expected)
    heads.class_weights = torch.tensor([3.0, 1, 1, 1, 1])
    try:
        weighted, _ = heads.box_losses(logits, reg, [torch.tensor([1, 0])], tgt)
    finally:
        heads.class_weights = None
    torch.testing.assert_close(weighted, -(3 * logp[0, 1] + logp[1, 0]) / 4)


def test_nucleus_loss_masked_for_unknown_parts(compact):
    heads = compact.detector.roi_heads
    codes = torch.zeros(1, 32, 32, dtype=torch.uint8)
    codes[0, 8:24, 8:24] = 1
    codes[0, 12:20, 12:20] = 2
    logits = torch.zeros(1, 2, 28, 28, requires_grad=True)
    box = [torch.tensor([[8.0, 8.0, 24.0, 24.0]])]
    args = (box, [{"masks": codes, "nucleus_known": torch.tensor([True])}], [torch.tensor([0])])
    cell, nucleus = heads.mask_losses(logits, *args)
    torch.testing.assert_close(cell, torch.tensor(math.log(2.0)))  # zero logits: BCE = log 2
    torch.testing.assert_close(nucleus, torch.tensor(math.log(2.0)))
    args[1][0]["nucleus_known"] = torch.tensor([False])
    cell2, nucleus2 = heads.mask_losses(logits, *args)
    assert nucleus2.item() == 0.0 and cell2.item() == pytest.approx(cell.item())
    nucleus2.backward()
    assert (logits.grad == 0).all()


# ---------------------------------------------------------------- dense rendering
def test_render_probabilities_from_detections(compact):
    m = 28
    masks = torch.zeros(2, 2, m, m)
    masks[:, 0] = 1.0  # soft cell masks: the whole box
    masks[0, 1, 7:21, 7:21] = 1.0  # nucleus in the middle of the first cell
    det = {"boxes": torch.tensor([[10.0, 10.0, 40.0, 40.0], [30.0, 30.0, 60.0, 60.0]]),
           "scores": torch.tensor([0.9, 0.6]), "mask_probs": masks,
           "class_probs": torch.tensor([[0.7, 0.3, 0, 0, 0], [0, 0, 0, 0, 1.0]])}
    sem, cls = compact._render(det, 64, 64)
    p, c = sem.softmax(0), cls.softmax(0)
    torch.testing.assert_close(p[:, 25, 25], torch.tensor([0.1, 0.0, 0.9]), atol=1e-4, rtol=0)
    torch.testing.assert_close(p[:, 15, 12], torch.tensor([0.1, 0.9, 0.0]), atol=1e-4, rtol=0)
    torch.testing.assert_close(p[:, 50, 50], torch.tensor([0.4, 0.6, 0.0]), atol=1e-4, rtol=0)
    torch.testing.assert_close(p[:, 36, 36], torch.tensor([0.1, 0.9, 0.0]), atol=1e-4, rtol=0)
    torch.testing.assert_close(p[:, 2, 2], torch.tensor([1.0, 0.0, 0.0]), atol=1e-4, rtol=0)
    torch.testing.assert_close(c[:, 20, 20], torch.tensor([0.7, 0.3, 0, 0, 0]), atol=1e-4, rtol=0)
    torch.testing.assert_close(c[:, 36, 36], torch.tensor([0.7, 0.3, 0, 0, 0]), atol=1e-4,
                               rtol=0)  # overlap: the higher score owns the pixel
    torch.testing.assert_close(c[:, 55, 55], torch.tensor([0, 0, 0, 0, 1.0]), atol=1e-4, rtol=0)
    torch.testing.assert_close(c[:, 2, 2], torch.full((5,), 0.2))  # no detection: uniform


def test_forward_runs_detector_in_eval_and_restores_modes(compact):
    compact.train()
    bn = next(m for m in compact.modules() if isinstance(m, nn.BatchNorm2d))
    before = bn.running_mean.clone()
    compact(torch.rand(1, 3, 64, 64))
    assert all(m.training for m in compact.modules())
    assert torch.equal(bn.running_mean, before)  # eval-mode BN inside forward
    compact.eval()
    assert compact.detect(torch.rand(1, 3, 64, 64))[0]["boxes"].shape == (0, 4)  # untrained


# ---------------------------------------------------------------- training
def test_few_training_steps_reduce_the_loss(compact):
    torch.manual_seed(0)
    x, sem, cls = _disks()
    opt = torch.optim.AdamW(compact.parameters(), lr=2e-3, weight_decay=1e-4)
    compact.train()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # 2 threads on a busy 2-core machine: 10x slower steps
    try:
        losses = []
        for _ in range(50):
            loss, parts = compact.training_loss(x, sem, cls)
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(parts["total"])
        assert set(parts) >= {"loss_classifier", "loss_box_reg", "loss_mask", "loss_nucleus",
                              "loss_objectness", "loss_rpn_box_reg", "total"}
        assert sum(losses[-3:]) / 3 < 0.1 * sum(losses[:3]) / 3, losses
        # the eval-mode model (running BN statistics) now finds both disks
        compact.eval()
        p = compact.predict(x)
        sem_p, cls_p = p["semantic"][0], p["cell_type"][0]
        assert sem_p[:, 29, 29].argmax() == 2 and sem_p[:, 29, 42].argmax() == 1  # nucleus, ring
        assert sem_p[:, 65, 67].argmax() == 2 and sem_p[:, 5, 90].argmax() == 0
        assert cls_p[:, 29, 29].argmax() == 0 and cls_p[:, 65, 67].argmax() == 1  # classes 1, 2
        dets = compact.detect(x)[0]
        assert sorted(dets["labels"][dets["scores"] > 0.9].tolist()) == [1, 2]
        # float16 storage of the weights gives nearly the same probabilities: the boxes
        # move by ~0.01-0.05 px, which shifts the pasted soft masks' edges a little
        half = create_model("leukocytemask-compact").eval()
        half.load_state_dict({k: v.half().float() if v.is_floating_point() else v
                              for k, v in compact.state_dict().items()})
        b = half.predict(x)
        for key in p:
            torch.testing.assert_close(p[key], b[key], atol=5e-2, rtol=0)
            assert (p[key] - b[key]).abs().mean() < 1e-3
    finally:
        torch.set_num_threads(threads)


def test_frozen_batchnorm_statistics_stay_put_in_the_training_loss(compact):
    """A fine-tune's ``freeze_norm`` (BN layers in eval mode on a model in training mode)
    must keep the running statistics; without it the training loss updates them."""
    from napari_wbcseg.training.engine.optim import freeze_norm_statistics

    x, sem, cls = _disks()
    bns = [m for m in compact.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert bns
    compact.train()
    freeze_norm_statistics(compact)
    before = [m.running_mean.clone() for m in bns]
    compact.training_loss(x, sem, cls)
    assert all(torch.equal(m.running_mean, b) for m, b in zip(bns, before))
    assert not any(m.training for m in bns)  # the frozen modes are restored too
    compact.train()
    compact.training_loss(x, sem, cls)
    assert not all(torch.equal(m.running_mean, b) for m, b in zip(bns, before))
