"""The ``--data`` folders of ``napari-wbcseg train`` / ``evaluate`` as samples (no torch).

Each folder may be an annotation project (``project.json``), a public layout
(``segmentation_WBC/`` and/or ``BCISC/`` inside it, or the folder itself so named)
or a plain folder of image + mask pairs; see :mod:`.folders`.
"""
from __future__ import annotations

from pathlib import Path

from .folders import detect_and_load
from .sample import Sample

__all__ = ["detect_and_load", "load_data_folders"]


def load_data_folders(folders, synthetic: int = 0, *, reviewed_only: bool = True,
                      full_fields: bool = False) -> list[Sample]:
    """Samples of every folder in order, plus ``synthetic`` synthetic smears.

    ``full_fields`` keeps BCISC full fields at their own 2048x1536 (for scoring there,
    ~16 MB each) instead of resampling them to the native scale (for training).

    Raises FileNotFoundError (missing folder) or ValueError (nothing usable in it, bad
    masks or project files) with a one-line message that names the folder or file.
    A folder given twice is loaded once.
    """
    samples: list[Sample] = []
    seen = set()
    for folder in map(Path, folders):
        key = folder.resolve()
        if key in seen:
            continue
        seen.add(key)
        samples += detect_and_load(folder, reviewed_only=reviewed_only,
                                   full_fields=full_fields)
    if synthetic:
        from .datasets import synthetic_samples

        samples += synthetic_samples(int(synthetic))
    return samples
