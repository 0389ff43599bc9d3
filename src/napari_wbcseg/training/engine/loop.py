"""The training loop as a plain generator of events.

Scripts, the CLI and (later) the GUI all drive :func:`train_steps`; it yields
:class:`NoticeEvent` / :class:`BatchEvent` / :class:`EpochEvent` / :class:`CheckpointEvent`
and returns a :class:`TrainResult`.  ``should_stop()`` is polled after every batch:
training then ends cleanly and the best weights so far are kept.  A non-finite loss (or
gradient) stops training with a clear message and keeps the best weights.  With a
``checkpoint_dir`` the whole state is saved after every epoch (:mod:`.checkpoint`) and
``resume=`` continues such a run from the next epoch, exactly as if it had not stopped.
Batches are built in :mod:`.sampling`, optimiser and schedules in :mod:`.optim`, named
recipes in :mod:`.presets`.
"""
from __future__ import annotations

import copy
import math
import time
from dataclasses import asdict, dataclass, field, fields

import numpy as np

from ..data.sampling import (cell_type_counts, class_balance_weights,  # noqa: F401  (public here too)
                       make_batch)
from ..data.sampling import make_sampler as _sampler  # noqa: F401


@dataclass(frozen=True)
class TrainConfig:
    architecture: str = "wcsegnet-compact"
    model_config: dict = field(default_factory=dict)
    epochs: int = 30
    steps_per_epoch: int = 50  # batches per epoch; 0: one pass over the training samples
    batch_size: int = 8
    crop: int = 192
    lr: float = 3e-3
    weight_decay: float = 1e-4
    optimizer: str = "adamw"  # "adamw" | "adam" | "sgd" (training.optim)
    momentum: float = 0.9  # SGD only
    schedule: str = "onecycle"  # "onecycle" | "plateau" | "constant" | "step"
    patience: int = 10  # epochs without improvement before early stopping
    seed: int = 0
    threads: int | None = None
    source_weights: dict = field(default_factory=dict)  # sampling weight per source
    class_weight: float = 1.0  # weight of the cell-type loss
    imagenet: bool = False  # start the encoder from ImageNet weights (needs the internet)
    # Zhu et al.: encoder frozen for the first part of training (only when it starts
    # pretrained: ImageNet or initial_state); 1.0 = always (Bendiabdallah: decoder only)
    freeze_encoder_fraction: float = 0.0
    # weight the cell-type loss by inverse square-root class frequency (rare types count more)
    class_balance: bool = False
    # keep BatchNorm running statistics fixed (fine-tuning on a few corrected images:
    # their batch statistics would otherwise overwrite those learnt on the full data)
    freeze_norm: bool = False
    # the cell-type loss trains only the cell-type head (fine-tuning on a few images:
    # it would otherwise reshape the features the segmentation relies on)
    class_head_only: bool = False
    # the cell-type softmax runs over the types present in the training data only (a few
    # corrected images without eosinophils must not teach "never an eosinophil"), and
    # with the cells' type frequencies added to its logits (balanced softmax), so that
    # ten lymphocytes do not teach "everything is a lymphocyte"
    class_loss_present_only: bool = False
    # rank epochs by segmentation Dice alone (the session sets it when the validation
    # images hold too few labelled cells for a cell-type accuracy worth ranking by)
    score_without_classes: bool = False
    augment: dict = field(default_factory=dict)  # keywords of augment.augment() (overrides)
    scale_jitter: float = 0.15  # random rescale exp(U(-j, j)) around the native scale
    # probability that a batch element is a Zhu et al. mosaic of g x g single-cell images
    # (segmentation_WBC-*, BCISC-sub), g drawn from mosaic_grids
    mosaic_fraction: float = 0.0
    mosaic_grids: tuple = (2, 3, 4)
    preprocess: str = "none"  # "none" | "ahe-retinex" (applied once, before augmentation)
    # "auto": bf16 autocast + channels-last where the CPU has AMX/AVX-512 BF16 and the
    # architecture was measured to gain from it (training.precision); "fp32" | "bf16" force it
    precision: str = "auto"

    def __post_init__(self):
        object.__setattr__(self, "mosaic_grids", tuple(self.mosaic_grids))

    @classmethod
    def from_dict(cls, values: dict) -> "TrainConfig":
        """From :func:`dataclasses.asdict` output (``ValueError`` for unknown keys)."""
        return settings_from_dict(cls, values, "training")


def settings_from_dict(cls, values: dict, what: str):
    """``cls(**values)`` for a settings dataclass; ``ValueError`` naming unknown keys (a
    checkpoint or card of another version must not be half-read)."""
    unknown = sorted(set(values) - {f.name for f in fields(cls)})
    if unknown:
        raise ValueError(f"unknown {what} settings {unknown}")
    return cls(**values)


@dataclass
class NoticeEvent:
    """Something the user should read (e.g. ImageNet weights unavailable)."""
    message: str


@dataclass
class BatchEvent:
    epoch: int
    step: int
    steps: int
    loss: float
    parts: dict


@dataclass
class EpochEvent:
    epoch: int
    train_loss: float
    validation: dict
    score: float
    improved: bool
    seconds: float


@dataclass
class CheckpointEvent:
    """The best score improved (``improved``) and/or a checkpoint file was written."""
    epoch: int
    score: float
    improved: bool = True
    path: str | None = None


@dataclass
class TrainResult:
    model: object  # best model (torch module, CPU)
    best_epoch: int
    best_score: float
    best_validation: dict
    history: list
    stopped: str  # "finished", "early-stopping", "user", "non-finite loss"
    seconds: float
    config: dict
    checkpoint: str | None = None  # the last checkpoint written (or resumed from)


def _score(summary: dict, with_classes: bool = True) -> float:
    """One number to pick the best epoch: mean of the available validation metrics
    (without the cell-type accuracy when ``with_classes`` is False)."""
    keys = [k for k in ("cell_dice", "nucleus_dice", "cytoplasm_dice", "class_accuracy")
            if k in summary and (with_classes or k != "class_accuracy")]
    return float(np.mean([summary[k] for k in keys])) if keys else float("nan")


def batch_loss(model, batch: dict, *, class_weight: float = 1.0, class_weights=None,
               class_mask=None, class_log_prior=None, precision: str = "fp32"):
    """``(loss, parts)`` of ``model`` (in training mode) on a numpy ``batch``.

    Models with their own loss (``training_loss``, e.g. Mask R-CNN) use it; the others
    get :func:`~.losses.segmentation_loss` with the model's ``loss_config`` (the
    paper's loss), over every deep-supervision output when the model has them.
    """
    import torch

    from .losses import segmentation_loss

    x = torch.from_numpy(batch["image"])
    semantic = torch.from_numpy(batch["semantic"])
    cell_class = torch.from_numpy(batch["cell_class"])
    if hasattr(model, "training_loss"):
        return model.training_loss(x, semantic, cell_class, class_weight=class_weight,
                                   class_weights=class_weights)
    from ...inference.precision import autocast

    if precision == "bf16":
        x = x.contiguous(memory_format=torch.channels_last)
    with autocast(precision):  # the network in bf16, the loss in fp32
        out = model(x)
    outputs = _as_float(out.get("deep_supervision") or out)
    return segmentation_loss(outputs, semantic, cell_class, class_weight=class_weight,
                             class_weights=class_weights, class_mask=class_mask,
                             class_log_prior=class_log_prior,
                             **getattr(model, "loss_config", {}))


def _as_float(outputs):
    if isinstance(outputs, dict):
        return {k: _as_float(v) for k, v in outputs.items()}
    if isinstance(outputs, (list, tuple)):
        return [_as_float(v) for v in outputs]
    return outputs.float() if hasattr(outputs, "float") else outputs


def _non_finite(what, value, epoch, step, lr, best_epoch, checkpoint) -> str:
    kept = (f"the best weights so far (epoch {best_epoch}) are kept" if best_epoch > 0 else
            "no epoch had finished: the model keeps its initial weights")
    again = (f"; or resume {checkpoint} (last finished epoch) with a lower learning rate"
             if checkpoint else "")
    return (f"non-finite {what} ({value}) at epoch {epoch}, step {step}: training stopped and "
            f"{kept}. Try a lower learning rate (now {lr:.3g}){again}.")


def train_steps(train_samples, val_samples, config: TrainConfig = TrainConfig(), *,
                initial_state: dict | None = None, should_stop=lambda: False,
                checkpoint_dir=None, resume=None):
    """Train ``config.architecture``; a generator of events returning a :class:`TrainResult`.

    ``initial_state``: warm start from these weights (those whose name and shape fit).
    ``checkpoint_dir``: write ``last.pt`` there after every epoch.  ``resume``: a
    checkpoint (file or folder) to continue from its next epoch; its model, optimiser,
    schedule, best weights, history and random states replace the fresh ones (a corrupt
    or foreign file raises ``ValueError``).  ``ValueError`` too for settings out of their
    bounds (:func:`.presets.check_config`) and for training samples without a single
    labelled cell pixel.
    """
    import torch

    from . import checkpoint as ckio
    from ..evaluation.evaluate import evaluate, model_predict, summary
    from .optim import (batch_step, can_freeze, class_head_modules, class_head_parameters,
                        clip_gradients, current_lr, detach_class_head, epoch_step,
                        freeze_norm_statistics, imagenet_init, make_optimizer,
                        make_scheduler, set_encoder_frozen, warm_start)
    from .presets import check_config
    from ..data.sampling import is_single_cell, preprocess_samples
    from ...models import create_model

    if not train_samples:
        raise ValueError("no training samples")
    check_config(config)
    from .names import has_labelled_cell

    if not has_labelled_cell(train_samples):
        raise ValueError(f"no labelled cell in the {len(train_samples)} training samples: "
                         "every mask is empty")
    ckpt = ckio.load_checkpoint(resume) if resume is not None else None
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    if config.threads:
        torch.set_num_threads(config.threads)
    if config.preprocess != "none":
        yield NoticeEvent(f"{config.preprocess} preprocessing of "
                          f"{len(train_samples) + len(val_samples or [])} images (once)")
    train_samples = preprocess_samples(train_samples, config.preprocess)
    val_samples = preprocess_samples(val_samples or [], config.preprocess)
    steps = config.steps_per_epoch or max(1, math.ceil(len(train_samples) / config.batch_size))
    model = create_model(config.architecture, **config.model_config)
    pretrained = False
    if ckpt is None and initial_state is not None:
        pretrained = warm_start(model, initial_state)
    if ckpt is None and config.imagenet:
        message, ok = imagenet_init(model)
        pretrained = pretrained or ok
        yield NoticeEvent(message)
    from ...inference.precision import resolve_precision

    precision = ("fp32" if hasattr(model, "training_loss") else
                 resolve_precision(config.precision, "cpu", config.architecture, "training"))
    if precision == "bf16":
        model = model.to(memory_format=torch.channels_last)
    model.precision = precision  # validation predicts as inference will
    opt = make_optimizer(model, config)
    sched = make_scheduler(opt, config, config.epochs, steps)
    draw = _sampler(train_samples, config.source_weights, rng)
    mosaic_draw = None
    if config.mosaic_fraction > 0:
        singles = [s for s in train_samples if is_single_cell(s)]
        mosaic_draw = _sampler(singles, config.source_weights, rng)
        if mosaic_draw is None:
            yield NoticeEvent("no single-cell images (segmentation_WBC, BCISC-sub) to "
                              "stitch into mosaics: training without mosaics")
    class_weights = None
    if config.class_balance:
        w = class_balance_weights(train_samples, model.num_classes)
        class_weights = None if w is None else torch.tensor(w, dtype=torch.float32)
    class_mask = class_log_prior = None
    if config.class_loss_present_only:
        cells = cell_type_counts(train_samples, model.num_classes)
        if cells.any():
            class_mask = torch.from_numpy(cells > 0)
            class_log_prior = torch.from_numpy(
                np.log(np.maximum(cells, 1) / max(cells.sum(), 1)).astype(np.float32))
    best = (-float("inf"), -1, {}, copy.deepcopy(model.state_dict()))
    history, stopped, since_best, start, steps_done = [], "finished", 0, 1, 0
    data = ckio.data_fingerprint(train_samples)
    last = None
    if ckpt is not None:
        for note in ckio.restore(ckpt, resume, model=model, opt=opt, sched=sched, rng=rng,
                                 config=config, steps_per_epoch=steps, data=data):
            yield NoticeEvent(note)
        b = ckpt["best"]
        best = (b["score"], b["epoch"], b["validation"], b["state"])
        history, since_best = list(ckpt["history"]), ckpt["since_best"]
        start, steps_done = ckpt["epoch"] + 1, ckpt["steps_done"]
        pretrained, last = ckpt["encoder_pretrained"], str(ckio.checkpoint_file(resume))
        yield NoticeEvent(f"resuming after epoch {ckpt['epoch']} of {last} (best score "
                          f"{best[0]:.4f} at epoch {best[1]})")
    freeze = config.freeze_encoder_fraction > 0 and can_freeze(model)
    if freeze and not pretrained:
        freeze = False
        yield NoticeEvent("the encoder starts from random weights, so it is not frozen")

    def frozen_at(epoch):
        return freeze and 1 <= epoch <= config.freeze_encoder_fraction * config.epochs

    def may_stop(epoch):  # early stopping waits for the thawed part of a frozen-first run
        return not (frozen_at(epoch) and config.freeze_encoder_fraction < 1)

    if ckpt is not None and since_best >= config.patience and may_stop(start - 1):
        stopped, start = "early-stopping", config.epochs + 1
    t_start = time.perf_counter()
    head = class_head_modules(model) if config.class_head_only else []
    if config.class_head_only and not head and config.class_weight > 0:
        yield NoticeEvent(f"{config.architecture} has no separate cell-type head: its "
                          "cell-type loss trains the whole network")
    head_hooks = detach_class_head(head)
    head_ids = {id(p) for p in class_head_parameters(model)} if head else set()
    clip_groups = [[p for p in model.parameters() if id(p) not in head_ids],
                   [p for p in model.parameters() if id(p) in head_ids]]

    predict = model_predict(model)

    for epoch in range(start, config.epochs + 1):
        t_epoch, losses = time.perf_counter(), []
        model.train()
        if freeze:
            set_encoder_frozen(model, frozen_at(epoch))  # after train(): frozen BN stays eval
        if config.freeze_norm:
            freeze_norm_statistics(model)
            if frozen_at(epoch - 1) and not frozen_at(epoch):
                since_best = 0  # the thawed network gets its full patience
        for step in range(1, steps + 1):
            batch = make_batch(draw, config, rng, mosaic_draw)
            loss, parts = batch_loss(model, batch, class_weight=config.class_weight,
                                     class_weights=class_weights, class_mask=class_mask,
                                     class_log_prior=class_log_prior, precision=precision)
            bad = None if torch.isfinite(loss) else ("loss", float(loss.detach()))
            if bad is None:
                opt.zero_grad(set_to_none=True)
                loss.backward()
                norm = clip_gradients(clip_groups, 5.0)
                bad = None if math.isfinite(norm) else ("gradient", norm)
            if bad is not None:
                stopped = "non-finite loss"
                yield NoticeEvent(_non_finite(*bad, epoch, step, current_lr(opt), best[1], last))
                break
            opt.step()
            batch_step(sched, config)
            steps_done += 1
            losses.append(float(loss.detach()))
            yield BatchEvent(epoch, step, steps, losses[-1], parts)
            if should_stop():
                stopped = "user"
                break
        if stopped == "non-finite loss":
            break
        report = evaluate(predict, val_samples, model.size_multiple) if val_samples else {}
        score = _score(summary(report), not config.score_without_classes) if report \
            else -float(np.mean(losses))
        improved = score > best[0]
        if improved:
            best = (score, epoch, report, copy.deepcopy(model.state_dict()))
            since_best = 0
        else:
            since_best += 1
        epoch_step(sched, config, score)
        history.append({"epoch": epoch, "train_loss": float(np.mean(losses)) if losses else None,
                        "score": score, "validation": report})
        if checkpoint_dir is not None:
            last = str(ckio.save_checkpoint(
                checkpoint_dir, epoch=epoch, steps_done=steps_done, model=model, opt=opt,
                sched=sched, best=best, since_best=since_best, history=history, rng=rng,
                config=config, encoder_pretrained=pretrained, data=data))
        yield EpochEvent(epoch, history[-1]["train_loss"], report, score, improved,
                         time.perf_counter() - t_epoch)
        if improved or checkpoint_dir is not None:
            yield CheckpointEvent(epoch, score, improved, last if checkpoint_dir else None)
        if stopped == "user":
            break
        if since_best >= config.patience and may_stop(epoch):
            stopped = "early-stopping"
            break
    for hook in head_hooks:
        hook.remove()
    model.load_state_dict(best[3])
    model.eval()
    return TrainResult(model, best[1], best[0], best[2], history, stopped,
                       time.perf_counter() - t_start, asdict(config), last)
