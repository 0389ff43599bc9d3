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
    listing the valid names for an unknown ``name``, ``ValueError`` listing the
    valid keys for an unknown config key, and ``ValueError`` for a config beyond the
    size bounds (:data:`MAX_PARAMETERS`; widths, depths, list lengths).
    """
    key, entry = _entry(name)
    unknown = sorted(set(config) - set(entry.default_config))
    if unknown and entry.default_config:
        raise ValueError(f"unknown config key(s) {unknown} for architecture {key!r}; "
                         f"valid keys are: {sorted(entry.default_config)}")
    module_name, class_name = entry.target.split(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    merged = {**copy.deepcopy(entry.default_config), **config}
    if merged != entry.default_config:  # the registered configs are known to be sane
        _check_size(key, cls, merged)
    model = cls(**merged)
    model.architecture = key
    return model


# A config read from a model file is bounded before anything is allocated: the largest
# registered network (unet-resnet152) has 67 M parameters; 200 M (800 MB of fp32
# weights) leaves room for wider variants but refuses e.g. 65,536 filters (154 GB).
MAX_PARAMETERS = 200_000_000
_MAX_INT = 100_000  # any width or count
_MAX_DEPTH = 64  # fields named *block*/*layer*: repetitions, built one module each
_MAX_LIST = 64


def _check_size(key: str, cls, config: dict) -> None:
    """``ValueError`` for a config whose fields or parameter count exceed the bounds.

    The parameter count comes from building the network on torch's "meta" device, which
    records shapes without allocating memory (after the field bounds keep that quick).
    """
    import math

    for name, value in config.items():
        values = value if isinstance(value, (list, tuple)) else [value]
        if isinstance(value, (list, tuple)) and len(value) > _MAX_LIST:
            raise ValueError(f"{key} config {name!r} has {len(value)} entries (at most "
                             f"{_MAX_LIST})")
        limit = _MAX_DEPTH if ("block" in name or "layer" in name) else _MAX_INT
        for v in values:
            if isinstance(v, float) and not math.isfinite(v):
                raise ValueError(f"{key} config {name!r} is not finite: {v!r}")
            if isinstance(v, int) and not isinstance(v, bool) and abs(v) > limit:
                raise ValueError(f"{key} config {name!r} = {v} is beyond the bound of "
                                 f"{limit}")
    import torch

    with torch.device("meta"):
        probe = cls(**copy.deepcopy(config))
    count = sum(t.numel() for t in probe.parameters()) + sum(t.numel() for t in probe.buffers())
    if count > MAX_PARAMETERS:
        raise ValueError(f"{key} config would build {count / 1e6:,.0f} M parameters "
                         f"(~{4 * count / 2**30:,.1f} GiB), above the limit of "
                         f"{MAX_PARAMETERS / 1e6:,.0f} M; the config is corrupt or hostile")


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

_WBCNET_PAPER = ("Lu, Qin, Fan, Lai & Li (2021), WBC-Net: A white blood cell segmentation "
                 "network based on UNet++ and ResNet, Applied Soft Computing 101, 107006, "
                 "doi:10.1016/j.asoc.2020.107006")
_WBCNET_FULL = {"filters": [32, 64, 128, 256, 512], "residual_blocks": [0, 3, 4, 6, 3],
                "supervised_nodes": [0, 1, 2, 3, 4], "num_classes": 5}
register_architecture(
    "wbc-net", "napari_wbcseg.models.wbcnet:WBCNet", family="UNet++ (WBC-Net)",
    paper=_WBCNET_PAPER, default_config=_WBCNET_FULL,
    description=("WBC-Net as in the paper: UNet++ with dense (mixed) skip pathways, a "
                 "ResNet34-style encoder (3-4-6-3 residual blocks on levels 1-4), "
                 "transposed-conv upsampling, filters 32-64-128-256-512, deep supervision "
                 "of X0,0..X0,4 averaged at inference, BCE + Tversky loss. "
                 "About 31.7 M parameters: use a GPU."))
register_architecture(
    "wbc-net-compact", "napari_wbcseg.models.wbcnet:WBCNet", family="UNet++ (WBC-Net)",
    paper=_WBCNET_PAPER, default_config={**_WBCNET_FULL, "filters": [8, 16, 32, 64, 128]},
    description=("WBC-Net with the paper's structure (residual blocks, dense skips, five "
                 "supervised outputs) but filters divided by 4 (8-16-32-64-128, about "
                 "2.0 M parameters) for CPU training and inference."))

_CBAM_PAPER = ("Zhu, Chen, Sun & Li (2023), Improved U-net-based leukocyte segmentation "
               "method, J. Biomed. Opt. 28(4), 045002, doi:10.1117/1.JBO.28.4.045002")
_CBAM_FULL = {"widths": [64, 128, 256, 512, 512], "num_classes": 5, "cbam_reduction": 16,
              "spatial_kernel": 7, "norm": "none"}
register_architecture(
    "cbam-unet-vgg16", "napari_wbcseg.models.cbam_unet:CBAMUNet", family="CBAM U-Net (VGG16)",
    paper=_CBAM_PAPER, default_config=_CBAM_FULL,
    description=("U-Net with torchvision's VGG16 contracting path (ImageNet weights can be "
                 "loaded), CBAM (channel then spatial attention, r=16, 7x7) on the four skip "
                 "connections, focal (gamma 2) + Dice loss; encoder frozen for the first half "
                 "of training. About 24.9 M parameters (56 GMACs at 256x256): use a GPU."))
register_architecture(
    "cbam-unet-vgg16-compact", "napari_wbcseg.models.cbam_unet:CBAMUNet",
    family="CBAM U-Net (VGG16)", paper=_CBAM_PAPER,
    default_config={**_CBAM_FULL, "widths": [16, 32, 64, 128, 128], "cbam_reduction": 4,
                    "norm": "batch"},
    description=("The CBAM U-Net's VGG16 layout at a quarter of the widths (16-32-64-128-128, "
                 "about 1.6 M parameters, 3.6 GMACs at 256x256) with batch normalisation "
                 "(the vgg16_bn layout) so that it trains from scratch on a CPU; no ImageNet "
                 "weights exist for this width."))

register_architecture(
    "leukocytemask", "napari_wbcseg.models.leukocytemask:LeukocyteMask",
    family="Mask R-CNN (LeukocyteMask)",
    paper=("Fan, Zhang, Xi, Li, Liu & Xu (2019), LeukocyteMask: An automated localization "
           "and segmentation method for leukocyte in blood smear images using deep neural "
           "networks, J. Biophotonics 12(7), e201800488, doi:10.1002/jbio.201800488"),
    default_config={
        "num_classes": 5, "stem_channels": 64, "stage_widths": [64, 128, 256, 512],
        "stage_blocks": [3, 2, 3, 3], "fpn_channels": 256, "rpn_channels": 2048,
        "anchor_sizes": [20.0, 40.0, 80.0, 160.0, 320.0], "aspect_ratios": [0.5, 1.0, 2.0],
        "box_head_channels": 1024, "mask_head_channels": 256, "mask_head_layers": 4,
        "rpn_pre_nms_top_n_train": 2000, "rpn_pre_nms_top_n_test": 1000,
        "rpn_post_nms_top_n_train": 2000, "rpn_post_nms_top_n_test": 1000,
        "box_batch_size_per_image": 512, "detections_per_image": 100,
        "score_threshold": 0.5, "box_nms_threshold": 0.5, "min_instance_area": 64,
        "nucleus_loss_weight": 1.0, "initial_cell_prior": 0.01},
    description=("LeukocyteMask as in the paper: Mask R-CNN on a ResNet50-FPN with a stem of "
                 "two 3x3 convs and 3-2-3-3 bottleneck blocks, P6 subsampled from P5, RPN "
                 "with a 2048-d 3x3 conv and 3 ratios x 5 scales (one per level), RoIAlign, "
                 "box classifier over the five cell types, 2-channel soft masks (cell, "
                 "nucleus) rendered into dense probabilities. About 44 M parameters: use "
                 "a GPU."))
register_architecture(
    "leukocytemask-compact", "napari_wbcseg.models.leukocytemask:LeukocyteMask",
    family="Mask R-CNN (LeukocyteMask)", paper=architecture_info("leukocytemask")["paper"],
    default_config={**architecture_info("leukocytemask")["default_config"],
                    "stem_channels": 16, "stage_widths": [16, 32, 64, 128],
                    "fpn_channels": 64, "rpn_channels": 128, "box_head_channels": 256,
                    "mask_head_channels": 64, "rpn_pre_nms_top_n_train": 1000,
                    "rpn_pre_nms_top_n_test": 500, "rpn_post_nms_top_n_train": 500,
                    "rpn_post_nms_top_n_test": 250, "box_batch_size_per_image": 128},
    description=("LeukocyteMask with the paper's structure but a quarter of the widths "
                 "(stem 16, bottlenecks 16-32-64-128, FPN 64, RPN 128, FC 256, mask head "
                 "64) and fewer proposals, about 2.6 M parameters, for CPU training."))

# --- unet encoders: registrations of models/smp_unet.py ---
_UNET_PAPER = ("Bendiabdallah & Settouti, A comparison of U-net backbone architectures for "
               "the automatic white blood cells segmentation (bone-marrow cytology images)")
#: registry suffix -> segmentation-models-pytorch encoder name
UNET_ENCODERS = {
    "mobilenet": "tu-mobilenetv1_100",
    "mobilenetv2": "mobilenet_v2",
    "resnet18": "resnet18",
    "resnet34": "resnet34",
    "resnet50": "resnet50",
    "resnet152": "resnet152",
    "vgg16": "vgg16",
    "vgg19": "vgg19",
    # ImageNet weights offline from the [pretrained] extra (models/imagenet_lite.py)
    "efficientnet-lite0": "tu-tf_efficientnet_lite0",
    "efficientnet-lite1": "tu-tf_efficientnet_lite1",
    "efficientnet-lite2": "tu-tf_efficientnet_lite2",
}
for _suffix, _encoder in UNET_ENCODERS.items():
    register_architecture(
        f"unet-{_suffix}", "napari_wbcseg.models.smp_unet:SmpUNet", family="U-Net (ImageNet encoder)",
        paper=_UNET_PAPER,
        default_config={"encoder": _encoder, "num_classes": 5,
                        "decoder_channels": [256, 128, 64, 32, 16], "loss": "cross-entropy",
                        "deep_supervision": False},
        description=(f"U-Net decoder (smp widths 256-128-64-32-16) on the {_suffix} encoder "
                     f"(segmentation-models-pytorch '{_encoder}'), semantic + cell-type heads, "
                     "cross-entropy loss; ImageNet initialisation when online."))

register_architecture(
    "wbcseg-lite0", "napari_wbcseg.models.smp_unet:SmpUNet",
    family="U-Net (ImageNet encoder)", paper=_UNET_PAPER,
    default_config={"encoder": "tu-tf_efficientnet_lite0", "num_classes": 5,
                    "decoder_channels": [128, 64, 48, 32, 16], "loss": "cross-entropy+dice",
                    "deep_supervision": False},
    description=("The product's flagship for CPUs: an ImageNet-initialised EfficientNet-Lite0 "
                 "encoder (offline weights, `napari-wbcseg[pretrained]`) under a light U-Net "
                 "decoder (128-64-48-32-16) with the semantic (background / cytoplasm / "
                 "nucleus) and cell-type heads, cross-entropy + soft Dice; trained in bf16 "
                 "with channels-last where the CPU has AMX. About 4.0 M parameters."))
