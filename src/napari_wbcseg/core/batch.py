"""Colour correction over a stack of planes, as a generator of progress events.

Scripts call :func:`run_to_end`; the widget drives the same generator in a
napari ``thread_worker`` so progress and cancel work the same everywhere.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Generator

import numpy as np

from .image import ImageFormatError


@dataclass(frozen=True)
class Progress:
    done: int
    total: int


def plane_count(data: np.ndarray, rgb: bool) -> int:
    plane_ndim = 3 if rgb else 2
    if data.ndim == plane_ndim:
        return 1
    if data.ndim == plane_ndim + 1:
        return data.shape[0]
    raise ImageFormatError(f"image of shape {tuple(data.shape)} is neither one plane nor a stack")


def preprocess_planes(data, params, rgb: bool) -> Generator[Progress, None, np.ndarray]:
    """Apply ``params`` to each plane; yields Progress, returns uint8 RGB of shape (..., H, W, 3)."""
    from .preprocessing import apply_preprocessing

    data = np.asarray(data) if not hasattr(data, "shape") else data
    total = plane_count(data, rgb)
    if total == 1:
        out = apply_preprocessing(np.asarray(data), params)
        yield Progress(1, 1)
        return out
    planes = []
    for i in range(total):
        planes.append(apply_preprocessing(np.asarray(data[i]), params))
        yield Progress(i + 1, total)
    return np.stack(planes)


def run_to_end(gen, on_event=None):
    """Drive a progress generator synchronously and return its result.

    ``on_event(event)`` is called with every yielded event (progress bars, logs)."""
    while True:
        try:
            event = next(gen)
        except StopIteration as stop:
            return stop.value
        if on_event is not None:
            on_event(event)
