"""Helpers of the batch tests (imported by name: pytest puts this folder on sys.path)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

FIELD_SHAPE = (256, 320)


def write_field(path: Path, seed: int, crop_left: bool = False) -> Path:
    """A synthetic smear saved as PNG; ``crop_left`` cuts the first white cell with the
    left image border (so the field has a border cell)."""
    import cv2

    from napari_wbcseg.core.synthetic import synthetic_smear

    smear = synthetic_smear(shape=FIELD_SHAPE, n_wbc=3, seed=seed)
    image = smear.image
    if crop_left:
        cols = np.nonzero((smear.cytoplasm == 1) | (smear.nucleus == 1))[1]
        image = image[:, int(cols.mean()):]
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), np.ascontiguousarray(image[..., ::-1]))
    return path


def set_env(name: str, value: str | None) -> None:
    """Set (or with None remove) an environment variable of the process it runs in (a
    plain function: a bound ``os.environ`` method would be pickled with a copy of it)."""
    import os

    if value is None:
        os.environ.pop(name, None)
    else:
        os.environ[name] = value
