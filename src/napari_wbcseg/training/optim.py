"""Initial weights, optimiser, learning-rate schedule and encoder freezing of a run (torch)."""
from __future__ import annotations

import torch

OPTIMIZERS = ("adamw", "adam", "sgd")
SCHEDULES = ("onecycle", "plateau", "constant", "step")
#: "step": the rate is divided by 10 once, after this fraction of the epochs
STEP_AT = 2 / 3


def make_optimizer(model, config) -> torch.optim.Optimizer:
    params = model.parameters()
    if config.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    if config.optimizer == "adam":  # L2 penalty in the gradient, as Keras' / Caffe's decay
        return torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay)
    if config.optimizer == "sgd":
        return torch.optim.SGD(params, lr=config.lr, momentum=config.momentum,
                               weight_decay=config.weight_decay)
    raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {config.optimizer!r}")


def make_scheduler(opt, config, epochs: int, steps_per_epoch: int):
    """The schedule of ``config.schedule`` (None for "constant").

    "onecycle" steps after every batch (warm-up over the first 10 %, cosine decay);
    "step" and "plateau" after every epoch (:func:`epoch_step`); "plateau" divides the
    rate by 5 when the validation score has not improved for half the patience.
    """
    if config.schedule == "constant":
        return None
    if config.schedule == "onecycle":
        return torch.optim.lr_scheduler.OneCycleLR(
            opt, max_lr=config.lr, total_steps=max(epochs * steps_per_epoch, 2), pct_start=0.1)
    if config.schedule == "step":
        return torch.optim.lr_scheduler.MultiStepLR(
            opt, milestones=[max(1, round(STEP_AT * epochs))], gamma=0.1)
    if config.schedule == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(
            opt, mode="max", factor=0.2, patience=max(1, config.patience // 2))
    raise ValueError(f"schedule must be one of {SCHEDULES}, got {config.schedule!r}")


def batch_step(sched, config) -> None:
    if sched is not None and config.schedule == "onecycle":
        sched.step()


def epoch_step(sched, config, score: float) -> None:
    if sched is None:
        return
    if config.schedule == "step":
        sched.step()
    elif config.schedule == "plateau":
        sched.step(score)


def _encoder(model):
    enc = getattr(model, "encoder", None)
    if not isinstance(enc, torch.nn.Module):
        enc = getattr(getattr(model, "net", None), "encoder", None)
    return enc if isinstance(enc, torch.nn.Module) else None


def can_freeze(model) -> bool:
    return hasattr(model, "freeze_encoder") or _encoder(model) is not None


def set_encoder_frozen(model, frozen: bool) -> None:
    """Freeze (or thaw) the encoder; call after ``model.train()``: frozen BatchNorm
    layers are put back in eval mode so that their statistics stay put."""
    if hasattr(model, "freeze_encoder"):
        model.freeze_encoder(frozen)
        return
    enc = _encoder(model)
    if enc is None:
        return
    enc.requires_grad_(not frozen)
    if frozen:
        for m in enc.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                m.eval()


def freeze_norm_statistics(model) -> None:
    """Put every BatchNorm layer in eval mode (call after ``model.train()``): running
    statistics stay as loaded, the affine weights still train."""
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.eval()


def current_lr(opt) -> float:
    return float(opt.param_groups[0]["lr"])


def warm_start(model, state: dict) -> bool:
    """Load every tensor of ``state`` whose name and shape fit (``ValueError`` if none)."""
    own = model.state_dict()
    usable = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    if not usable:
        raise ValueError("the initial weights do not fit this architecture")
    model.load_state_dict(usable, strict=False)
    return True


def imagenet_init(model) -> tuple[str, bool]:
    """Encoder from ImageNet: (message for the user, whether it worked)."""
    from ..models.pretrained import PretrainedUnavailableError

    if not hasattr(model, "load_imagenet_encoder"):
        return (f"{model.architecture} has no ImageNet encoder; "
                "it starts from random initialisation"), False
    try:
        model.load_imagenet_encoder()
    except PretrainedUnavailableError as exc:
        return str(exc), False
    return f"{model.architecture}: encoder initialised from ImageNet", True
