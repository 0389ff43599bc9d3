"""Sample data for File > Open Sample: an offline synthetic smear and real public fields."""
from __future__ import annotations

import numpy as np

from ..schema import labels_layer_kwargs, layers_from_semantic
from .fetch import fetch
from .imread import read_image

# Class codes of the samples, from the datasets' own labels (CSV / folder name).
ZHENG_CLASSES = {"zheng/d1/001": 2, "zheng/d2/004": 1}


def _schema_layers(name, nucleus, cytoplasm, cell_type):
    return [
        (nucleus, labels_layer_kwargs(name, "nucleus"), "labels"),
        (cytoplasm, labels_layer_kwargs(name, "cytoplasm"), "labels"),
        (cell_type, labels_layer_kwargs(name, "cell_type"), "labels"),
    ]


def synthetic_sample(seed: int = 0):
    """Synthetic smear with one white cell of each type and its ground truth (offline)."""
    from ..core.synthetic import synthetic_smear

    smear = synthetic_smear(seed=seed)
    name = "synthetic smear"
    meta = {"ground_truth_classes": smear.classes, "pixel_size_um": smear.pixel_size_um}
    layers = [(smear.image, {"name": name, "rgb": True, "metadata": meta}, "image")]
    return layers + _schema_layers(f"{name} (truth)", smear.nucleus, smear.cytoplasm,
                                   smear.cell_type)


def _bcisc_field(cls_folder: str, class_code: int, mirror=None):
    image = read_image(fetch(f"bcisc/{cls_folder}/1-1.jpg", mirror=mirror))
    mask = read_image(fetch(f"bcisc/{cls_folder}/1-1.png", mirror=mirror))
    if mask.ndim == 3:  # some BCISC masks are noisy RGB
        mask = mask[..., :3].mean(axis=-1)
    name = f"BCISC {cls_folder} 1-1"
    cell_type = np.where(mask > 127, class_code, 0).astype(np.uint8)
    # BCISC masks cover whole cells only: nucleus / cytoplasm are unknown, so no layers for them
    kwargs = labels_layer_kwargs(f"{name} (expert)", "cell_type")
    return [
        (image, {"name": name, "rgb": True, "metadata": {"source": "fpklipic/BCISC, Apache-2.0"}},
         "image"),
        (cell_type, kwargs, "labels"),
    ]


def _zheng_cell(key: str, mirror=None):
    image = read_image(fetch(f"{key}.bmp", mirror=mirror))
    mask = read_image(fetch(f"{key}.png", mirror=mirror))
    semantic = (mask >= 64).astype(np.uint8) + (mask >= 192)  # 0/128/255 with stray values
    dataset = "Dataset 1" if "/d1/" in key else "Dataset 2"
    name = f"segmentation_WBC {dataset} {key.rsplit('/', 1)[-1]}"
    meta = {"source": "zxaoyou/segmentation_WBC, GPL-3.0; cite Zheng et al. 2018"}
    layers = [(image, {"name": name, "rgb": True, "metadata": meta}, "image")]
    return layers + _schema_layers(f"{name} (expert)",
                                   *layers_from_semantic(semantic, ZHENG_CLASSES[key]))


def bcisc_neutrophil_field():
    return _bcisc_field("neut", 1)


def bcisc_lymphocyte_field():
    return _bcisc_field("lymp", 2)


def zheng_dataset1_cell():
    return _zheng_cell("zheng/d1/001")


def zheng_dataset2_cell():
    return _zheng_cell("zheng/d2/004")
