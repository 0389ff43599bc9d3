"""Colour correction over a stack of planes, as a generator of progress events.

Scripts call :func:`run_to_end`; the widget drives the same generator in a
napari ``thread_worker`` so progress and cancel work the same everywhere.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Generator

import numpy as np

from .image import ImageFormatError

# AHE-Retinex keeps a few float copies of a plane: measured ~50 MB per megapixel
# (2048x1536 = 3.1 MP peaks 157 MB above its input), so a 50 MP plane (e.g. 8200x6100)
# stays near 2.5 GB; a 20000x20000 one (400 MP) would pass 20 GB and must be cropped or
# tiled.  Tests monkeypatch it.
MAX_PLANE_MEGAPIXELS = 50.0


class PlaneTooLargeError(ImageFormatError):
    """A plane above ``MAX_PLANE_MEGAPIXELS``: refused before any allocation."""


def check_plane_size(shape, rgb: bool) -> None:
    """``PlaneTooLargeError`` for planes of ``shape`` (image or stack) above the limit."""
    h, w = shape[-3:-1] if rgb else shape[-2:]
    mp = h * w / 1e6
    if mp > MAX_PLANE_MEGAPIXELS:
        raise PlaneTooLargeError(f"a plane of {w}x{h} px ({mp:.3g} megapixels) is above the "
                                 f"limit of {MAX_PLANE_MEGAPIXELS:g} megapixels for colour "
                                 "correction: crop or tile it")


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
    """Apply ``params`` to each plane; yields Progress, returns uint8 RGB of shape (..., H, W, 3).

    Raises :class:`~.image.ImageFormatError` for a shape that is neither a plane nor a
    stack, :class:`PlaneTooLargeError` for planes above ``MAX_PLANE_MEGAPIXELS``.
    """
    from .preprocessing import apply_preprocessing

    data = np.asarray(data) if not hasattr(data, "shape") else data
    total = plane_count(data, rgb)
    check_plane_size(data.shape, rgb)
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
