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
        total = max(epochs * steps_per_epoch, 2)
        # torch divides by (pct_start * total - 1): exactly 10 steps at 0.1 divided by zero;
        # short runs warm up over one and a half steps instead
        return torch.optim.lr_scheduler.OneCycleLR(
            opt, max_lr=config.lr, total_steps=total, pct_start=max(0.1, 1.5 / total))
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


#: modules that take the shared features into the cell-type output, in the order tried
CLASS_HEAD_ENTRIES = ("class_neck", "cell_type_head", "cell_type_heads")


def class_head_modules(model) -> list:
    """The first modules of the cell-type head, which take the shared features in;
    ``[]`` for a model without a dense cell-type head (Mask R-CNN classifies inside its
    RoI heads)."""
    for name in CLASS_HEAD_ENTRIES:
        entry = getattr(model, name, None)
        if isinstance(entry, torch.nn.Module):
            return list(entry) if isinstance(entry, torch.nn.ModuleList) else [entry]
    return []


def class_head_parameters(model) -> list:
    """Every parameter of the cell-type head (neck included)."""
    return [p for name in CLASS_HEAD_ENTRIES if isinstance(getattr(model, name, None),
                                                           torch.nn.Module)
            for p in getattr(model, name).parameters()]


def detach_class_head(modules) -> list:
    """Let the cell-type loss train only these head ``modules``: their input is detached,
    so that loss no longer reaches the shared encoder and decoder.  Fine-tuning on a few
    corrected images otherwise lets the class loss reshape the features the segmentation
    relies on (measured with scripts/bench_finetune.py).  Returns the hook handles
    (``handle.remove()`` undoes it)."""
    return [m.register_forward_pre_hook(_detach_inputs) for m in modules]


def clip_gradients(groups, max_norm: float = 5.0) -> float:
    """Clip each parameter group's gradient norm on its own (a detached class head and the
    rest of the network get independent losses: a large class-loss gradient must not
    shrink the segmentation's steps).  Returns the largest norm (inf/nan if non-finite)."""
    norms = [float(torch.nn.utils.clip_grad_norm_(g, max_norm)) for g in groups if g]
    return max(norms) if norms else 0.0


def _detach_inputs(_module, args):
    return tuple(a.detach() if isinstance(a, torch.Tensor) else a for a in args)


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
    from ...models.pretrained import PretrainedUnavailableError

    if not hasattr(model, "load_imagenet_encoder"):
        return (f"{model.architecture} has no ImageNet encoder; "
                "it starts from random initialisation"), False
    try:
        model.load_imagenet_encoder()
    except PretrainedUnavailableError as exc:
        return str(exc), False
    return f"{model.architecture}: encoder initialised from ImageNet", True
