"""Inference: device choice and tiled prediction over a predictor callable.

Light on purpose: importing this package (or ``.tiling`` / ``.device``) never
imports torch; ``device`` imports it inside its functions.
"""
from __future__ import annotations

from .device import (
    available_devices,
    describe_device,
    free_cached_memory,
    is_out_of_memory,
    resolve_device,
)
from .tiling import (
    TileProgress,
    auto_tile_size,
    halve_tile,
    predict_tiled,
    run_to_end,
    tile_grid,
)

__all__ = [
    "TileProgress",
    "auto_tile_size",
    "available_devices",
    "describe_device",
    "free_cached_memory",
    "halve_tile",
    "is_out_of_memory",
    "predict_tiled",
    "resolve_device",
    "run_to_end",
    "tile_grid",
]
