"""The training loop as a plain generator of events.

Scripts, the CLI and (later) the GUI all drive :func:`train_steps`; it yields
:class:`BatchEvent` / :class:`EpochEvent` / :class:`CheckpointEvent` and returns a
:class:`TrainResult`.  ``should_stop()`` is polled after every batch: training then
ends cleanly and the best weights so far are kept.  A non-finite loss stops
training with a clear message and keeps the last good weights.
"""
from __future__ import annotations

import copy
import time
from dataclasses import asdict, dataclass, field

import numpy as np


@dataclass(frozen=True)
class TrainConfig:
    architecture: str = "wcsegnet-compact"
    model_config: dict = field(default_factory=dict)
    epochs: int = 30
    steps_per_epoch: int = 50
    batch_size: int = 8
    crop: int = 192
    lr: float = 3e-3
    weight_decay: float = 1e-4
    patience: int = 10  # epochs without improvement before early stopping
    seed: int = 0
    threads: int | None = None
    source_weights: dict = field(default_factory=dict)  # sampling weight per source
    class_weight: float = 1.0  # weight of the cell-type loss
    imagenet: bool = False  # start the encoder from ImageNet weights (needs the internet)
    # Zhu et al.: encoder frozen for the first part of training (models with freeze_encoder)
    freeze_encoder_fraction: float = 0.0


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
    epoch: int
    score: float


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


def _score(summary: dict) -> float:
    """One number to pick the best epoch: mean of the available validation metrics."""
    keys = [k for k in ("cell_dice", "nucleus_dice", "cytoplasm_dice", "class_accuracy")
            if k in summary]
    return float(np.mean([summary[k] for k in keys])) if keys else float("nan")


def _sampler(samples, weights: dict, rng):
    sources = sorted({s.source for s in samples})
    by_source = {src: [s for s in samples if s.source == src] for src in sources}
    p = np.array([weights.get(src, 1.0) for src in sources], float)
    p /= p.sum()

    def draw():
        src = sources[rng.choice(len(sources), p=p)]
        pool = by_source[src]
        return pool[rng.integers(len(pool))]
    return draw


def make_batch(draw, config: TrainConfig, rng):
    from .augment import augment, random_crop, resample_to_native, to_batch

    crops = []
    for _ in range(config.batch_size):
        s = resample_to_native(draw(), jitter=0.15, rng=rng)
        crops.append(augment(random_crop(s, config.crop, rng), rng))
    return to_batch(crops)


def _imagenet_init(model) -> str:
    from ..models.pretrained import PretrainedUnavailableError

    if not hasattr(model, "load_imagenet_encoder"):
        return (f"{model.architecture} has no ImageNet encoder; "
                "it starts from random initialisation")
    try:
        model.load_imagenet_encoder()
    except PretrainedUnavailableError as exc:
        return str(exc)
    return f"{model.architecture}: encoder initialised from ImageNet"


def batch_loss(model, batch: dict, *, class_weight: float = 1.0, class_weights=None):
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
    out = model(x)
    outputs = out.get("deep_supervision") or out
    return segmentation_loss(outputs, semantic, cell_class, class_weight=class_weight,
                             class_weights=class_weights, **getattr(model, "loss_config", {}))


def train_steps(train_samples, val_samples, config: TrainConfig = TrainConfig(), *,
                initial_state: dict | None = None, should_stop=lambda: False):
    import torch

    from ..models import create_model
    from .evaluate import evaluate, summary

    if not train_samples:
        raise ValueError("no training samples")
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    if config.threads:
        torch.set_num_threads(config.threads)
    model = create_model(config.architecture, **config.model_config)
    if initial_state is not None:  # warm start: every tensor whose name and shape match
        own = model.state_dict()
        usable = {k: v for k, v in initial_state.items() if k in own and own[k].shape == v.shape}
        if not usable:
            raise ValueError("the initial weights do not fit this architecture")
        model.load_state_dict(usable, strict=False)
    if config.imagenet:
        yield NoticeEvent(_imagenet_init(model))
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    total_steps = config.epochs * config.steps_per_epoch
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=config.lr, total_steps=total_steps,
                                                pct_start=0.1)
    draw = _sampler(train_samples, config.source_weights, rng)
    best = (-1.0, -1, {}, copy.deepcopy(model.state_dict()))
    history, stopped, since_best = [], "finished", 0
    t_start = time.perf_counter()

    def predict(x):
        return np.concatenate([o.numpy() for o in model.predict(torch.from_numpy(x)).values()], 1)

    for epoch in range(1, config.epochs + 1):
        t_epoch, losses = time.perf_counter(), []
        model.train()
        if hasattr(model, "freeze_encoder") and config.freeze_encoder_fraction > 0:
            frozen = epoch <= config.freeze_encoder_fraction * config.epochs
            model.freeze_encoder(frozen)  # after train(): frozen BN layers stay in eval
        for step in range(1, config.steps_per_epoch + 1):
            batch = make_batch(draw, config, rng)
            loss, parts = batch_loss(model, batch, class_weight=config.class_weight)
            if not torch.isfinite(loss):
                stopped = "non-finite loss"
                break
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            opt.step()
            sched.step()
            losses.append(float(loss.detach()))
            yield BatchEvent(epoch, step, config.steps_per_epoch, losses[-1], parts)
            if should_stop():
                stopped = "user"
                break
        if stopped == "non-finite loss":
            break
        report = evaluate(predict, val_samples, model.size_multiple) if val_samples else {}
        score = _score(summary(report)) if report else -float(np.mean(losses))
        improved = score > best[0]
        if improved:
            best = (score, epoch, report, copy.deepcopy(model.state_dict()))
            since_best = 0
        else:
            since_best += 1
        history.append({"epoch": epoch, "train_loss": float(np.mean(losses)) if losses else None,
                        "score": score, "validation": report})
        yield EpochEvent(epoch, history[-1]["train_loss"], report, score, improved,
                         time.perf_counter() - t_epoch)
        if improved:
            yield CheckpointEvent(epoch, score)
        if stopped == "user":
            break
        if since_best >= config.patience:
            stopped = "early-stopping"
            break
    model.load_state_dict(best[3])
    model.eval()
    return TrainResult(model, best[1], best[0], best[2], history, stopped,
                       time.perf_counter() - t_start, asdict(config))
