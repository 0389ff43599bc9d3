"""Registry of segmentation architectures: a name maps to a class and its settings.

Importing this package does not import torch: the model classes live in their own
modules (``wcsegnet.py``, ...) that are imported only when :func:`create_model`
builds one.  Every registered model fulfils the contract of
:class:`napari_wbcseg.models.base.SegmentationModel`, which
``tests/models/test_contract.py`` checks for all of them.

>>> list_architectures()
['wcsegnet', 'wcsegnet-compact']
>>> model = create_model("wcsegnet-compact", num_classes=6)   # doctest: +SKIP
"""
from __future__ import annotations

import copy
import importlib
from dataclasses import dataclass, field

__all__ = ["UnknownArchitectureError", "architecture_info", "create_model",
           "list_architectures", "register_architecture"]


class UnknownArchitectureError(KeyError, ValueError):
    """An architecture name that is not registered (both a KeyError and a ValueError)."""

    def __str__(self) -> str:  # KeyError would print the message with quotes
        return str(self.args[0]) if self.args else ""


@dataclass(frozen=True)
class _Entry:
    target: str  # "package.module:ClassName", imported lazily
    family: str
    paper: str
    description: str
    default_config: dict = field(default_factory=dict)


_REGISTRY: dict[str, _Entry] = {}

_WCSEGNET_PAPER = ("Nasser, Belalem & Mahmoudi (2025), An Automatic Nucleus Segmentation "
                   "and Classification of White Blood Cell with ResUNet, Ingénierie des "
                   "Systèmes d'Information 30(1), doi:10.18280/isi.300102")
_WCSEGNET_FULL = {
    "filters": [64, 128, 256, 512, 1024],
    "class_head_level": 0,
    "num_classes": 5,
    "blocks_per_stage": 2,
    "negative_slope": 0.01,
    "norm": "batch",
    "encoder_dropout": 0.5,
    "decoder_dropout": 0.3,
    "head_dropout": 0.1,
}


def _normalise(name: str) -> str:
    return str(name).strip().lower().replace("_", "-")


def register_architecture(name: str, target: str, *, family: str, paper: str = "",
                          description: str = "", default_config: dict | None = None,
                          overwrite: bool = False) -> None:
    """Register ``name`` -> ``target`` (``"module:Class"``, imported only when built).

    ``default_config`` must be JSON-serialisable and hold every keyword the class
    accepts; :func:`create_model` overrides its keys.
    """
    key = _normalise(name)
    if key in _REGISTRY and not overwrite:
        raise ValueError(f"architecture {key!r} is already registered")
    if ":" not in target:
        raise ValueError(f"target must look like 'package.module:Class', got {target!r}")
    _REGISTRY[key] = _Entry(target, family, paper, description, copy.deepcopy(default_config or {}))


def list_architectures() -> list[str]:
    """Registered architecture names, in registration order."""
    return list(_REGISTRY)


def _entry(name: str) -> tuple[str, _Entry]:
    key = _normalise(name)
    if key not in _REGISTRY:
        valid = ", ".join(repr(n) for n in _REGISTRY)
        raise UnknownArchitectureError(
            f"unknown architecture {name!r}; valid architectures are: {valid}")
    return key, _REGISTRY[key]


def architecture_info(name: str) -> dict:
    """Family, paper, description and default config (a copy) of ``name``."""
    key, entry = _entry(name)
    return {"name": key, "family": entry.family, "paper": entry.paper,
            "description": entry.description,
            "default_config": copy.deepcopy(entry.default_config)}


def create_model(name: str, **config):
    """Build the architecture ``name`` (imports torch); ``config`` overrides its defaults.

    Raises :class:`UnknownArchitectureError` (a ``KeyError`` and ``ValueError``)
    listing the valid names for an unknown ``name``, and ``ValueError`` listing the
    valid keys for an unknown config key.
    """
    key, entry = _entry(name)
    unknown = sorted(set(config) - set(entry.default_config))
    if unknown and entry.default_config:
        raise ValueError(f"unknown config key(s) {unknown} for architecture {key!r}; "
                         f"valid keys are: {sorted(entry.default_config)}")
    module_name, class_name = entry.target.split(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    model = cls(**{**copy.deepcopy(entry.default_config), **config})
    model.architecture = key
    return model


register_architecture(
    "wcsegnet", "napari_wbcseg.models.wcsegnet:WCSegNet", family="residual U-Net",
    paper=_WCSEGNET_PAPER, default_config=_WCSEGNET_FULL,
    description=("WCSegNet as in the paper: residual Conv-Blocks with LeakyReLU, filters "
                 "64-128-256-512 + 1024 bottleneck, dropout in encoder, decoder and head; "
                 "two 1x1 heads (semantic background/cytoplasm/nucleus, cell type). "
                 "About 65 M parameters: use a GPU."))
register_architecture(
    "wcsegnet-compact", "napari_wbcseg.models.wcsegnet:WCSegNet", family="residual U-Net",
    paper=_WCSEGNET_PAPER, default_config={**_WCSEGNET_FULL, "filters": [8, 16, 32, 64, 128],
                    "class_head_level": 2},
    description=("WCSegNet with the paper's structure but filters divided by 8 "
                 "(8-16-32-64 + 128 bottleneck, about 1 M parameters) for CPU inference on whole "
                 "2048x1536 fields; the cell-type head reads the 32-channel decoder stage at "
                 "1/4 resolution (8 full-resolution channels proved too narrow to learn it)."))

# --- wbc-net: registrations of models/wbcnet.py ---

# --- cbam-unet: registrations of models/cbam_unet.py ---

# --- leukocytemask: registrations of models/leukocytemask.py ---

# --- unet encoders: registrations of models/smp_unet.py ---
