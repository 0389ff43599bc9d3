"""Losses: finite on empty masks, ignore codes ignored, perfect logits win, gradients flow."""
from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from napari_wbcseg.training.engine.losses import (cell_log_probs, dice_loss, focal_loss,  # noqa: E402
                                           segmentation_loss, tversky_loss)

K = 5


def _targets(N=2, H=16, W=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    sem = torch.zeros(N, H, W, dtype=torch.long)
    sem[:, 4:12, 4:12] = 1
    sem[:, 6:10, 6:10] = 2
    sem[1, 4:12, 4:12] = 3  # second image: whole-cell label only
    sem[:, :2, :] = 255  # a band of fully unknown pixels
    cls = torch.zeros(N, H, W, dtype=torch.long)
    cls[0][(sem[0] >= 1) & (sem[0] <= 3)] = 3
    cls[1][(sem[1] >= 1) & (sem[1] <= 3)] = 255  # class unknown
    cls[sem == 255] = 255
    return sem, cls, g


def _random_outputs(N, H, W, g, requires_grad=True):
    sem = torch.randn(N, 3, H, W, generator=g).requires_grad_(requires_grad)
    ct = torch.randn(N, K, H, W, generator=g).requires_grad_(requires_grad)
    return {"semantic": sem, "cell_type": ct}


def _perfect_outputs(sem, cls, margin=12.0):
    N, H, W = sem.shape
    s = torch.zeros(N, 3, H, W)
    part = sem.clamp(0, 2)
    part[sem == 3] = 1  # a "cell" pixel: any of cytoplasm / nucleus is right
    s.scatter_(1, part.unsqueeze(1), margin)
    c = torch.zeros(N, K, H, W)
    known = (cls >= 1) & (cls <= K)
    c.scatter_(1, torch.where(known, cls - 1, 0).unsqueeze(1), margin)
    return {"semantic": s, "cell_type": c}


def test_total_and_parts_are_finite_and_differentiable():
    sem, cls, g = _targets()
    out = _random_outputs(*sem.shape, g)
    total, parts = segmentation_loss(out, sem, cls)
    assert torch.isfinite(total) and total.ndim == 0
    assert set(parts) == {"semantic_ce", "cell_bce", "region", "class_ce", "total"}
    assert all(isinstance(v, float) for v in parts.values())
    assert parts["total"] == pytest.approx(total.item())
    total.backward()
    for t in out.values():
        assert t.grad is not None and torch.isfinite(t.grad).all() and t.grad.abs().sum() > 0


@pytest.mark.parametrize("case", ["background_only", "all_ignored", "cells_no_class",
                                  "whole_cell_only"])
def test_empty_masks_give_finite_loss(case):
    N, H, W = 2, 12, 12
    sem = torch.zeros(N, H, W, dtype=torch.long)
    cls = torch.zeros(N, H, W, dtype=torch.long)
    if case == "all_ignored":
        sem[:] = 255
        cls[:] = 255
    elif case == "cells_no_class":
        sem[:, 3:9, 3:9] = 1
        cls[:, 3:9, 3:9] = 255
    elif case == "whole_cell_only":  # no pixel with a known part: no semantic CE at all
        sem[:] = 255
        sem[:, 3:9, 3:9] = 3
        cls[:] = 255
        cls[:, 3:9, 3:9] = 2
    out = _random_outputs(N, H, W, torch.Generator().manual_seed(1))
    total, parts = segmentation_loss(out, sem, cls)
    assert torch.isfinite(total)
    total.backward()
    assert all(torch.isfinite(t.grad).all() for t in out.values())
    if case == "all_ignored":
        assert total.item() == 0.0
    if case in ("background_only", "cells_no_class", "all_ignored"):
        assert parts["class_ce"] == 0.0
    if case == "whole_cell_only":
        assert parts["semantic_ce"] == 0.0 and parts["cell_bce"] > 0


def test_changing_ignored_pixels_does_not_change_the_loss():
    sem, cls, g = _targets()
    out = _random_outputs(*sem.shape, g, requires_grad=False)
    base, _ = segmentation_loss(out, sem, cls)
    # 1. logits on fully unknown pixels are free
    out2 = {k: v.clone() for k, v in out.items()}
    ign = (sem == 255).unsqueeze(1)
    out2["semantic"] = torch.where(ign, torch.randn_like(out2["semantic"]) * 50, out2["semantic"])
    noise = torch.randn_like(out2["cell_type"]) * 50
    out2["cell_type"] = torch.where(ign, noise, out2["cell_type"])
    assert float(segmentation_loss(out2, sem, cls)[0]) == pytest.approx(float(base), rel=1e-6)
    # 2. on whole-cell pixels (code 3) only P(cell) matters, not how it splits
    s = out["semantic"].clone()
    cellonly = (sem == 3).unsqueeze(1)
    swapped = s[:, [0, 2, 1]]
    out3 = dict(out, semantic=torch.where(cellonly, swapped, s))
    assert float(segmentation_loss(out3, sem, cls)[0]) == pytest.approx(float(base), rel=1e-5)
    # 3. cell-type logits on pixels with unknown class are free
    unknown_cls = (cls == 255).unsqueeze(1)
    out4 = dict(out, cell_type=torch.where(unknown_cls, -out["cell_type"] * 9, out["cell_type"]))
    assert float(segmentation_loss(out4, sem, cls)[0]) == pytest.approx(float(base), rel=1e-6)
    # and the ignore index is configurable
    sem7 = torch.where(sem == 255, torch.full_like(sem, 7), sem)
    cls7 = torch.where(cls == 255, torch.full_like(cls, 7), cls)
    assert float(segmentation_loss(out, sem7, cls7, ignore_index=7)[0]) == \
        pytest.approx(float(base), rel=1e-6)


def test_perfect_logits_beat_random_ones():
    sem, cls, g = _targets()
    perfect, _ = segmentation_loss(_perfect_outputs(sem, cls), sem, cls)
    rand, _ = segmentation_loss(_random_outputs(*sem.shape, g, requires_grad=False), sem, cls)
    assert float(perfect) < 0.05 < float(rand)
    for kwargs in ({"region": "tversky"}, {"focal_gamma": 2.0}, {"dice_weight": 0.0}):
        p, _ = segmentation_loss(_perfect_outputs(sem, cls), sem, cls, **kwargs)
        r, _ = segmentation_loss(_random_outputs(*sem.shape, g, False), sem, cls, **kwargs)
        assert float(p) < float(r)


def test_output_forms_and_deep_supervision():
    sem, cls, g = _targets()
    out = _random_outputs(*sem.shape, g, requires_grad=False)
    t_dict, _ = segmentation_loss(out, sem, cls)
    t_pair, _ = segmentation_loss((out["semantic"], out["cell_type"]), sem, cls)
    assert float(t_pair) == pytest.approx(float(t_dict))
    t_sem, parts = segmentation_loss(out["semantic"], sem, cls)
    assert parts["class_ce"] == 0.0 and float(t_sem) < float(t_dict)
    perfect = _perfect_outputs(sem, cls)
    t_deep, parts = segmentation_loss([out, perfect], sem, cls)
    t_perf, _ = segmentation_loss(perfect, sem, cls)
    assert float(t_deep) == pytest.approx((float(t_dict) + float(t_perf)) / 2, rel=1e-5)
    t_weighted, _ = segmentation_loss([out, dict(perfect, weight=0.5)], sem, cls)
    assert float(t_weighted) == pytest.approx((float(t_dict) + 0.5 * float(t_perf)) / 1.5,
                                              rel=1e-5)
    coarse = {k: v[..., ::2, ::2] for k, v in out.items()}  # a half-scale output
    t_coarse, _ = segmentation_loss(coarse, sem, cls)
    t_sub, _ = segmentation_loss(coarse, sem[..., ::2, ::2], cls[..., ::2, ::2])
    assert float(t_coarse) == pytest.approx(float(t_sub), rel=1e-6)
    with pytest.raises(ValueError):
        segmentation_loss({k: v[..., :5, :] for k, v in out.items()}, sem, cls)
    with pytest.raises(ValueError):
        segmentation_loss(out["semantic"][:, :2], sem, cls)
    with pytest.raises(ValueError):
        segmentation_loss(out, sem[:, :8], cls[:, :8])
    with pytest.raises(ValueError):
        segmentation_loss(out, sem, cls, region="jaccard")


def test_training_steps_reduce_the_loss():
    sem, cls, g = _targets()
    out = _random_outputs(*sem.shape, g)
    opt = torch.optim.Adam(out.values(), lr=0.2)
    first = None
    for _ in range(30):
        opt.zero_grad()
        total, _ = segmentation_loss(out, sem, cls)
        first = total.item() if first is None else first
        total.backward()
        opt.step()
    assert total.item() < 0.3 * first


def test_cell_probability_is_cytoplasm_plus_nucleus():
    logits = torch.randn(2, 3, 4, 4)
    p = torch.softmax(logits, 1)
    log_bg, log_cell = cell_log_probs(logits)
    assert torch.allclose(log_bg.exp(), p[:, 0], atol=1e-6)
    assert torch.allclose(log_cell.exp(), p[:, 1] + p[:, 2], atol=1e-6)
    assert torch.isfinite(cell_log_probs(torch.tensor([[[[100.0]], [[-100.0]], [[-100.0]]]]))[1])


def test_dice_loss():
    g = torch.zeros(1, 1, 8, 8)
    g[..., 2:6, 2:6] = 1
    assert float(dice_loss(g, g)) == pytest.approx(0.0, abs=1e-6)
    assert float(dice_loss(1 - g, g)) > 0.9
    empty = torch.zeros(1, 1, 8, 8)
    assert float(dice_loss(empty, empty)) == 0.0  # smoothing: empty vs empty is perfect
    mask = torch.zeros(1, 8, 8)
    assert float(dice_loss(torch.rand(1, 1, 8, 8), g, mask)) == 0.0  # nothing kept
    p = torch.rand(1, 1, 8, 8, requires_grad=True)
    dice_loss(p, g).backward()
    assert torch.isfinite(p.grad).all()
    two = torch.cat([g, 1 - g], 1)
    assert float(dice_loss(two, two)) == pytest.approx(0.0, abs=1e-6)
    with pytest.raises(ValueError):
        dice_loss(g, g[..., :4])


def test_tversky_loss():
    g = torch.zeros(1, 1, 8, 8)
    g[..., 2:6, 2:6] = 1
    p = torch.rand(1, 1, 8, 8)
    assert float(tversky_loss(g, g)) == pytest.approx(0.0, abs=1e-6)
    # alpha = beta = 0.5 is the Dice loss
    assert float(tversky_loss(p, g, alpha=0.5, beta=0.5, smooth=0)) == \
        pytest.approx(float(dice_loss(p, g, smooth=0)))
    # with beta > alpha missing cell pixels (FN) costs more than extra pixels (FP)
    fn_pred = g.clone()
    fn_pred[..., 2:4, 2:6] = 0  # 8 missed
    fp_pred = g.clone()
    fp_pred[..., 6:8, 2:6] = 1  # 8 extra
    assert float(tversky_loss(fn_pred, g)) > float(tversky_loss(fp_pred, g))
    assert torch.isfinite(tversky_loss(torch.zeros_like(g), torch.zeros_like(g)))


def test_focal_loss():
    logits = torch.randn(2, 4, 5, 5)
    target = torch.randint(0, 4, (2, 5, 5))
    ce = torch.nn.functional.cross_entropy(logits, target)
    assert float(focal_loss(logits, target, gamma=0.0)) == pytest.approx(float(ce), rel=1e-5)
    assert float(focal_loss(logits, target, gamma=2.0)) < float(ce)
    ignored = target.clone()
    ignored[0] = 255
    part = torch.nn.functional.cross_entropy(logits, ignored, ignore_index=255)
    assert float(focal_loss(logits, ignored, gamma=0.0)) == pytest.approx(float(part), rel=1e-5)
    none = torch.full_like(target, 255)
    z = focal_loss(logits.requires_grad_(), none)
    assert z.item() == 0.0
    z.backward()
    assert torch.isfinite(logits.grad).all()
    w = torch.tensor([1.0, 2.0, 3.0, 4.0])
    wce = torch.nn.functional.cross_entropy(logits.detach(), target, weight=w)
    assert float(focal_loss(logits.detach(), target, gamma=0.0, weight=w)) == \
        pytest.approx(float(wce), rel=1e-5)
    # easy, confident pixels are down-weighted much more than hard ones
    easy = torch.tensor([[[[8.0]], [[0.0]]]])
    hard = torch.tensor([[[[0.0]], [[0.5]]]])
    t0 = torch.zeros(1, 1, 1, dtype=torch.long)
    ratio_easy = float(focal_loss(easy, t0)) / float(focal_loss(easy, t0, gamma=0.0))
    ratio_hard = float(focal_loss(hard, t0)) / float(focal_loss(hard, t0, gamma=0.0))
    assert ratio_easy < ratio_hard


def test_class_mask_leaves_absent_types_alone():
    sem, cls, g = _targets()  # image 0: class 3 (channel 2)
    out = _random_outputs(2, 16, 16, g)
    mask = torch.tensor([False, True, True, False, False])  # types 2 and 3 in the data
    loss, parts = segmentation_loss(out, sem, cls, class_mask=mask)
    loss.backward()
    grad = out["cell_type"].grad
    assert torch.isfinite(loss) and parts["class_ce"] > 0
    assert grad[:, [0, 3, 4]].abs().sum() == 0 and grad[:, [1, 2]].abs().sum() > 0
    out2 = _random_outputs(2, 16, 16, g)
    segmentation_loss(out2, sem, cls)[0].backward()  # unmasked: every type is pushed
    assert out2["cell_type"].grad[:, [0, 3, 4]].abs().sum() > 0
    # a target outside the mask is left out rather than forced onto another type
    off = torch.tensor([True, False, False, True, True])
    _, parts_off = segmentation_loss(out, sem, cls, class_mask=off)
    assert parts_off["class_ce"] == 0


def test_class_log_prior_is_added_inside_the_loss_only():
    sem, cls, g = _targets()
    out = _random_outputs(2, 16, 16, g)
    prior = torch.log(torch.tensor([0.1, 0.1, 0.6, 0.1, 0.1]))
    _, parts = segmentation_loss(out, sem, cls, class_log_prior=prior)
    shifted = {"semantic": out["semantic"], "cell_type": out["cell_type"] + prior.view(1, K, 1, 1)}
    _, plain = segmentation_loss(shifted, sem, cls)
    assert parts["class_ce"] == pytest.approx(plain["class_ce"], rel=1e-5)
    # the frequent type's target costs less: its logits need not grow to win
    _, unadjusted = segmentation_loss(out, sem, cls)
    assert parts["class_ce"] < unadjusted["class_ce"]
