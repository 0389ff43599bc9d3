"""Training: datasets, augmentation, losses (torch only in :mod:`.losses`).

Importing this package imports neither torch nor the data: ``datasets`` and
``augment`` need only numpy and OpenCV, ``losses`` needs torch and is imported on
its own (``from napari_wbcseg.training.losses import segmentation_loss``).
"""
from __future__ import annotations

from .augment import augment, mosaic, random_crop, resample, resample_to_native, to_batch
from .datasets import (load_all, load_bcisc_fields, load_bcisc_subimages, load_segmentation_wbc,
                       split_by_group, synthetic_samples)
from .sample import (BACKGROUND, CELL, CYTOPLASM, DEFAULT_SCALE, IGNORE, NATIVE_CELL_DIAMETER,
                     NUCLEUS, UNKNOWN_CLASS, Sample)

__all__ = [
    "BACKGROUND", "CELL", "CYTOPLASM", "DEFAULT_SCALE", "IGNORE", "NATIVE_CELL_DIAMETER",
    "NUCLEUS", "Sample", "UNKNOWN_CLASS", "augment", "load_all", "load_bcisc_fields",
    "load_bcisc_subimages", "load_segmentation_wbc", "mosaic", "random_crop", "resample",
    "resample_to_native", "split_by_group", "synthetic_samples", "to_batch",
]
