"""Named training recipes: ``preset(name, architecture)`` -> TrainConfig fields.

``"paper"``: each architecture's published recipe (optimiser, learning rate, batch,
epochs, encoder freezing, augmentations, preprocessing); the loss is already the paper's
in every model (``loss_config`` / ``training_loss``).  Where a paper is silent the choice
made here is stated next to the number.  All paper recipes stop early after 10 epochs
without improvement (Bendiabdallah & Settouti's criterion; the others give none) and cap
the epochs at 100.  One epoch is one pass over the training samples
(``steps_per_epoch=0``), as in the papers' Keras / TensorFlow code.  They are meant for a
GPU: the full-size networks at these batch sizes take hours on a CPU.

``"fast"``: the CPU schedule the bundled "-compact" models were trained with (AdamW,
one-cycle, 30 epochs of 60 batches of 8 crops of 192 px: about an hour on 2 cores).

"-compact" variants get their family's recipe (they are the same networks, narrower).
"""
from __future__ import annotations

import math

from ..data.augment import augment as _augment

__all__ = ["PRESETS", "describe", "family_of", "preset"]

PRESETS = ("fast", "paper")

# every augmentation of augment() switched off: a paper recipe turns on what it names
_NO_AUG = {"flips": False, "rot90": False, "rotate": False, "zoom": None, "shear": 0.0,
           "shift": 0.0, "elastic": False, "blur": 0.0, "gamma": None, "brightness": 0.0,
           "contrast": 0.0, "hue": 0.0, "saturation": 0.0, "noise": 0.0}


def _aug(**on) -> dict:
    return {**_NO_AUG, **on}


_COMMON = {"patience": 10, "epochs": 100, "steps_per_epoch": 0, "schedule": "constant",
           "scale_jitter": 0.0, "mosaic_fraction": 0.0, "preprocess": "none",
           "imagenet": False, "freeze_encoder_fraction": 0.0, "weight_decay": 0.0}

_PAPER = {
    # Nasser, Belalem & Mahmoudi 2025 (wcsegnet_resunet_nasser2025.txt).
    # Sec. 2.3.2: "The model is configured with the Adam optimizer"; Sec. 2.4: "stochastic
    # gradient descent with a mini-batch size of 16 images and an initial learning rate of
    # 10^-4" (read as mini-batch training with that Adam).  Epochs: not given; Sec. 3
    # "WCSegNet achieved convergence as early as the thirtieth epoch" -> cap 100 + early
    # stopping.  Schedule: only an initial rate -> constant.  Input: 120x120 images
    # (Sec. 2.5) -> 128 px crops.  Sec. 2.2 / Fig. 2 (Keras ImageDataGenerator):
    # rotation_range=40, width/height_shift_range=0.2, shear_range=0.2, zoom_range=0.2,
    # horizontal_flip.  Keras' shear_range is in degrees: 0.2 deg = shear factor
    # tan(0.2 deg) ~ 0.0035; zoom_range=0.2 = factors 0.8..1.2 (isotropic here, per axis in
    # Keras).  No photometric augmentation, no pretrained encoder.
    "wcsegnet": {"optimizer": "adam", "lr": 1e-4, "batch_size": 16, "crop": 128,
                 "augment": _aug(flips="h", rotate=40, shift=0.2,
                                 shear=math.tan(math.radians(0.2)), zoom=(0.8, 1.2))},
    # Lu et al. 2021 (wbc-net_unetpp-resnet_lu2021.txt).  Sec. 4.2 names only the data
    # augmentation: "rotation, zooming, and flipping horizontally from left to right".
    # Silent on optimiser, learning rate, batch, epochs, ranges: Adam 1e-3 (Keras'
    # default), batch 8, cap 100 epochs + early stopping, rotation +-180 deg (cells have
    # no orientation), zoom 0.8..1.25, 256 px crops.
    "wbc-net": {"optimizer": "adam", "lr": 1e-3, "batch_size": 8, "crop": 256,
                "augment": _aug(flips="h", rotate=True, zoom=(0.8, 1.25))},
    # Zhu et al. 2023 (ahe-retinex_cbam-unet_zhu2023.txt), Sec. 4 (experiments): "the
    # pretrained weights were the initialized weights of the VGG16 network ... the VGG16
    # backbone part was first frozen and trained for 50 generations, and then all of them
    # were thawed and continued to be trained together for 50 generations" -> ImageNet
    # encoder, 100 epochs, frozen for the first half; "Two data samples are crawled at a
    # time" -> batch 2; "The initial learning rate is set to 1x10^-4".  Optimiser: not
    # named -> Adam (TensorFlow); schedule: only an initial rate -> constant.  Data
    # (Sec. 2.1 / 4): AHE-Retinex on every image, then "4 random images ... formed into
    # 512x512 pixel size images" -> every training crop is a 2x2 mosaic of single cells
    # (the 3x3 and 4x4 mosaics of Sec. 4.4 / Fig. 11 are test images only).  512 px of
    # BCISC crops ~ 256 px at the native scale.  No other augmentation is named.
    # Early stopping never ends the frozen half (see loop.train_steps).
    "cbam-unet-vgg16": {"optimizer": "adam", "lr": 1e-4, "batch_size": 2, "crop": 256,
                        "imagenet": True, "freeze_encoder_fraction": 0.5,
                        "preprocess": "ahe-retinex", "mosaic_fraction": 1.0,
                        "mosaic_grids": (2,), "augment": _aug()},
    # Fan et al. 2019 (leukocytemask_maskrcnn_fan2019.txt), Sec. 3.3: "Stochastic gradient
    # descent is used for training, with momentum 0.9, batch size 2, initial learning rate
    # 10^-3, weight decay 2x10^-4".  Epochs: not given -> cap 100 + early stopping.
    # "initial" rate, decay not given -> divided by 10 after 2/3 of the epochs (the usual
    # Mask R-CNN step schedule).  Sec. 3.2 / Fig. 9: FlipH, FlipV, rotation (-180..180
    # deg), elastic transformation (Simard et al. [35]), Gaussian blur, gamma
    # transformation; their strengths are not given (ours: elastic 6 px / sigma 8, blur
    # sigma 0.5..1.5 on 30 % of crops, gamma 0.8..1.25).  256 px crops (not given).
    "leukocytemask": {"optimizer": "sgd", "momentum": 0.9, "lr": 1e-3, "weight_decay": 2e-4,
                      "batch_size": 2, "crop": 256, "schedule": "step",
                      "augment": _aug(flips="hv", rotate=True, elastic=True, blur=0.3,
                                      gamma=(0.8, 1.25))},
    # Bendiabdallah & Settouti (unet-backbones_marrow_bendiabdallah.txt), Sec. 3.2 (l. 219):
    # "Adam ... with a learning rate of 1e-3"; l. 222: "early stopping criterion at 10
    # training epochs"; Sec. 2.3 (l. 191-195): ImageNet encoders, "Then, we train the
    # decoder layers" -> encoder frozen throughout; Sec. 3.1: images resized to 256x256
    # -> 256 px crops.  Sec. 2.2: "We randomly rotated inputs vertically and horizontally,
    # then zoomed them. We also randomly increased and decreased the brightness" -> up-down
    # and left-right flips, zoom 0.8..1.25, brightness +-0.1 (ranges not given).  Batch:
    # not given -> 8; epochs: not given (Table 1: 13-69 until early stopping) -> cap 100.
    "unet": {"optimizer": "adam", "lr": 1e-3, "batch_size": 8, "crop": 256, "imagenet": True,
             "freeze_encoder_fraction": 1.0,
             "augment": _aug(flips="hv", zoom=(0.8, 1.25), brightness=0.1)},
}

_FAST = {"optimizer": "adamw", "lr": 2e-3, "weight_decay": 1e-4, "schedule": "onecycle",
         "epochs": 30, "steps_per_epoch": 60, "batch_size": 8, "crop": 192, "patience": 10,
         "scale_jitter": 0.15, "mosaic_fraction": 0.0, "preprocess": "none", "imagenet": False,
         # takes effect only when the encoder starts pretrained (ImageNet or a warm start)
         "freeze_encoder_fraction": 0.5, "augment": {}}


def family_of(architecture: str) -> str:
    """The recipe family of a registered architecture name ("unet-resnet50" -> "unet")."""
    from ...models import architecture_info

    name = architecture_info(architecture)["name"]  # KeyError/ValueError for unknown names
    base = name[: -len("-compact")] if name.endswith("-compact") else name
    if base.startswith(("unet-", "wbcseg-")):  # the flagship is a U-Net on an ImageNet encoder
        return "unet"
    if base in _PAPER:
        return base
    raise ValueError(f"no paper recipe for architecture {architecture!r}")


def preset(name: str, architecture: str) -> dict:
    """TrainConfig fields (a fresh dict) of the recipe ``name`` for ``architecture``."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; presets are: {', '.join(PRESETS)}")
    fields = {"architecture": architecture}
    if name == "fast":
        return {**fields, **_FAST, "augment": {}}
    recipe = _PAPER[family_of(architecture)]
    out = {**fields, **_COMMON, **recipe}
    out["augment"] = dict(recipe.get("augment", {}))
    return out


# documented bounds of the numeric settings (check_config): beyond them a run would
# allocate without limit (crop, batch) or never start (epochs, patience)
LIMITS = {"epochs": (1, 100_000), "steps_per_epoch": (0, 1_000_000), "batch_size": (1, 1024),
          "crop": (8, 2048), "patience": (0, 100_000), "seed": (0, 2**32 - 1)}


def _whole(value) -> bool:
    import numbers

    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _finite(value) -> bool:
    import numbers

    return (isinstance(value, numbers.Real) and not isinstance(value, bool)
            and math.isfinite(value))


def check_config(config) -> None:
    """``ValueError`` (one line) for settings train_steps cannot run or that are out of
    their documented bounds (:data:`LIMITS`; lr in (0, 10], weight decay, momentum, class
    weight, fractions and jitter finite and in range)."""
    from .optim import OPTIMIZERS, SCHEDULES
    from ..data.sampling import PREPROCESSING

    c = config
    problems = []
    if c.optimizer not in OPTIMIZERS:
        problems.append(f"optimizer must be one of {OPTIMIZERS}, got {c.optimizer!r}")
    if c.schedule not in SCHEDULES:
        problems.append(f"schedule must be one of {SCHEDULES}, got {c.schedule!r}")
    if c.preprocess not in PREPROCESSING:
        problems.append(f"preprocess must be one of {PREPROCESSING}, got {c.preprocess!r}")
    if not (isinstance(c.lr, (int, float)) and math.isfinite(c.lr) and c.lr > 0):
        problems.append(f"lr must be a positive number, got {c.lr!r}")
    for key, (lo, hi) in LIMITS.items():
        value = getattr(c, key)
        if not (_whole(value) and lo <= value <= hi):
            extra = " (0: one pass over the training samples)" if key == "steps_per_epoch" else ""
            problems.append(f"{key} must be a whole number in [{lo}, {hi}]{extra}, got {value!r}")
    if isinstance(c.lr, (int, float)) and math.isfinite(c.lr) and c.lr > 10:
        problems.append(f"lr must be at most 10, got {c.lr!r}")
    for key, lo, hi in (("weight_decay", 0.0, 10.0), ("momentum", 0.0, 1.0),
                        ("class_weight", 0.0, 1000.0), ("freeze_encoder_fraction", 0.0, 1.0),
                        ("scale_jitter", 0.0, 2.0)):
        value = getattr(c, key)
        if not (_finite(value) and lo <= value <= hi):
            problems.append(f"{key} must be a finite number in [{lo:g}, {hi:g}], got {value!r}")
    weights = c.source_weights
    if not (isinstance(weights, dict) and all(isinstance(k, str) and _finite(v) and 0 <= v <= 1000
                                              for k, v in weights.items())):
        problems.append("source_weights must map data source names to numbers in [0, 1000], "
                        f"got {weights!r}"[:300])
    if not isinstance(c.model_config, dict):
        problems.append(f"model_config must be a JSON object, got {c.model_config!r}"[:300])
    if c.threads is not None and not (_whole(c.threads) and 1 <= c.threads <= 4096):
        problems.append(f"threads must be None or a whole number >= 1, got {c.threads!r}")
    if not (_finite(c.mosaic_fraction) and 0.0 <= c.mosaic_fraction <= 1.0):
        problems.append(f"mosaic_fraction must be in [0, 1], got {c.mosaic_fraction!r}")
    if not c.mosaic_grids or any(int(g) != g or g < 1 for g in c.mosaic_grids):
        problems.append(f"mosaic_grids must be whole numbers >= 1, got {c.mosaic_grids!r}")
    import inspect

    valid = set(inspect.signature(_augment).parameters) - {"sample", "rng"}
    unknown = sorted(set(c.augment) - valid)
    if unknown:
        problems.append(f"unknown augmentation(s) {unknown}; valid: {sorted(valid)}")
    if problems:
        raise ValueError("; ".join(problems))


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.3g}"
    if isinstance(v, (tuple, list)):
        return "-".join(_fmt(x) for x in v)
    return str(v)


def describe(config, *, preset_name: str | None = None, init: str | None = None) -> str:
    """The effective settings in one line."""
    c = config
    opt = c.optimizer + (f" (momentum {c.momentum:g})" if c.optimizer == "sgd" else "")
    epochs = (f"{c.epochs} epochs x {c.steps_per_epoch} batches" if c.steps_per_epoch else
              f"{c.epochs} epochs of one pass over the training samples")
    mosaics = (f"mosaics {c.mosaic_fraction:g} ({'/'.join(f'{g}x{g}' for g in c.mosaic_grids)})"
               if c.mosaic_fraction else "no mosaics")
    freeze = (f", encoder frozen for {c.freeze_encoder_fraction:.0%} of the epochs if pretrained"
              if c.freeze_encoder_fraction else "")
    on = ", ".join(k if v is True else f"{k} {_fmt(v)}" for k, v in c.augment.items()
                   if v is not None and v is not False and v != 0)
    aug = ("default augmentation" if not c.augment else
           f"augmentation: {on}" if on else "no augmentation")
    return (f"{c.architecture}" + (f", preset {preset_name}" if preset_name else "")
            + (f", init {init}" if init else "")
            + f": {opt} lr {c.lr:g} {c.schedule}, weight decay {c.weight_decay:g}, {epochs}, "
            f"batch {c.batch_size}, crop {c.crop} px, patience {c.patience}, {mosaics}, "
            f"preprocess {c.preprocess}, scale jitter {c.scale_jitter:g}{freeze}, {aug}, "
            f"seed {c.seed}")
