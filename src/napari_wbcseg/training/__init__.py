"""Training, in three sub-packages.

* :mod:`.data` - datasets, samples, augmentation, folders of labelled images (numpy and
  OpenCV only);
* :mod:`.engine` - the loop, losses, optimisers, checkpoints, presets, the GUI session and
  the per-cell classifier's training (torch, imported lazily);
* :mod:`.evaluation` - the one evaluator, the papers' tables and the train / selection /
  validation protocol.

Importing this package imports neither torch nor the data; the names below are the data
helpers most scripts need.
"""
from __future__ import annotations

from .data.augment import augment, mosaic, random_crop, resample, resample_to_native, to_batch
from .data.datasets import (load_all, load_bcisc_fields, load_bcisc_subimages,
                            load_segmentation_wbc, split_by_group, synthetic_samples)
from .data.sample import (BACKGROUND, CELL, CYTOPLASM, DEFAULT_SCALE, IGNORE,
                          NATIVE_CELL_DIAMETER, NUCLEUS, UNKNOWN_CLASS, Sample)

__all__ = [
    "BACKGROUND", "CELL", "CYTOPLASM", "DEFAULT_SCALE", "IGNORE", "NATIVE_CELL_DIAMETER",
    "NUCLEUS", "Sample", "UNKNOWN_CLASS", "augment", "load_all", "load_bcisc_fields",
    "load_bcisc_subimages", "load_segmentation_wbc", "mosaic", "random_crop", "resample",
    "resample_to_native", "split_by_group", "synthetic_samples", "to_batch",
]
