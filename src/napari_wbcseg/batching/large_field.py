"""Fields larger than a worker's memory, segmented block by block through dask.

:func:`open_lazy_field` (from :mod:`.lazy_field`) opens a big TIFF/OME-TIFF/zarr field
lazily; :func:`segment_large_field` cuts it into ``block`` x ``block`` cores, reads each
with a margin of two cell diameters (one dask task per block, run on dask's synchronous
scheduler so a distributed worker's memory holds one block at a time; no Client needed)
and segments it with ``segment_steps`` at one fixed scale for the whole field.  The cells
are made one set (:mod:`.large_field_cells`) and the same four files as
``napari-wbcseg segment --out`` are written, the label images as tiled BigTIFFs built
tile by tile, so the full label image is never in memory.  See ``docs/large_fields.md``.
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from .lazy_field import (LARGE_FIELD_MEGAPIXELS, LargeFieldError, LazyField,  # noqa: F401
                         open_lazy_field)

OUT_TILE = 512  # px: tiles of the written label TIFFs
MARGIN_DIAMETERS = 2.0  # block margin in cell diameters
MIN_MARGIN_PX = 64
# One block's working copy at the model's scale: segment peaks at ~0.8 GB + 100-190 MB
# per megapixel (inference/segment.py), so 8 MP keeps a worker near 2 GB whatever `block`.
BLOCK_WORK_MEGAPIXELS = 8.0
_BORDER_NOTE = "cells cut by the border"
_AUTO_TRIES = 4  # blocks tried for an "auto" cell size before the model's scale

__all__ = ["LARGE_FIELD_MEGAPIXELS", "LargeFieldError", "LargeFieldResult", "LazyField",
           "open_lazy_field", "segment_large_field", "block_grid"]


@dataclass
class LargeFieldResult:
    table: object  # pandas.DataFrame, one row per cell, field coordinates
    differential: object
    model: str
    device: str
    shape: tuple
    timings: dict = field(default_factory=dict)
    messages: list = field(default_factory=list)
    paths: list = field(default_factory=list)
    n_blocks: int = 0
    margin: int = 0


def block_grid(hw, block: int, margin: int):
    """``[(core, region), ...]`` in raster order, each ``(y0, y1, x0, x1)``: cores tile the
    field, regions are the cores grown by ``margin`` (clipped to the field)."""
    H, W = hw
    out = []
    for y0 in range(0, H, block):
        for x0 in range(0, W, block):
            core = (y0, min(y0 + block, H), x0, min(x0 + block, W))
            region = (max(0, core[0] - margin), min(H, core[1] + margin),
                      max(0, core[2] - margin), min(W, core[3] + margin))
            out.append((core, region))
    return out


def segment_large_field(field: LazyField, params, out, stem: str, *, block: int = 4096,
                        margin: int | None = None, on_progress=None,
                        write_guard=None) -> LargeFieldResult:
    """Segment ``field`` block by block and write ``<stem>_nucleus.tif``, ``_cytoplasm.tif``,
    ``_celltype.tif`` and ``_cells.csv`` into ``out``.

    ``params``: :class:`~napari_wbcseg.inference.segment.SegmentParams`; an "auto" cell
    diameter is estimated once (from the first blocks with contrast) and fixed for every
    block.  ``block`` is the largest core side: halved until a block with its margins is
    at most ``BLOCK_WORK_MEGAPIXELS`` at the model's scale.  ``margin`` (px) defaults to
    two cell diameters.  ``on_progress`` receives a
    :class:`~napari_wbcseg.inference.segment.SegmentEvent` ("block", done, total) per block;
    ``write_guard(path)`` is a context manager around each file write (as in
    :func:`.field_outputs.write_field_files`).  Raises :class:`LargeFieldError` for a block
    too large for one segmentation at that scale, ``ValueError`` for bad settings.
    """
    import contextlib

    from ..inference.device import resolve_device
    from ..inference.predictor import load_model
    from ..inference.segment import SegmentEvent, SegmentParams

    t0 = time.perf_counter()
    if not isinstance(params, SegmentParams):
        raise TypeError(f"params must be SegmentParams, got {type(params).__name__}")
    if not (isinstance(block, int) and not isinstance(block, bool) and 256 <= block <= 16384):
        raise ValueError(f"block must be a whole number of pixels in [256, 16384], got {block!r}")
    out, hw = Path(out), field.shape
    device = resolve_device(params.device)
    net = load_model(params.model, device, tta=bool(params.tta))
    messages: list[str] = []
    diameter = _fixed_diameter(field, params, block, messages)
    d = float(diameter) if diameter else float(net.native_cell_diameter)
    margin = max(MIN_MARGIN_PX, math.ceil(MARGIN_DIAMETERS * d)) if margin is None else int(margin)
    block = _fitting_block(block, margin, net.native_cell_diameter / d if diameter else 1.0)
    grid = block_grid(hw, block, margin)
    _check_block_size(grid, d if diameter else None, net.native_cell_diameter)
    fixed = replace(params, cell_diameter=diameter, device=device)
    cells = []
    t1 = time.perf_counter()
    for i, (core, region) in enumerate(grid):
        found = _run_block(field, fixed, i, core, region, hw, messages)
        cells.extend(found)
        if on_progress is not None:
            on_progress(SegmentEvent("block", i + 1, len(grid), f"block {i + 1}/{len(grid)}"))
    segment_s = time.perf_counter() - t1
    from .large_field_cells import field_table, resolve_cells

    kept, counts = resolve_cells(cells)
    notes = set(messages)
    if counts["cut"]:
        messages.append(f"{counts['cut']} cells are larger than the block margin ({margin} px) "
                        "and were cut at a block edge: use a larger margin")
    table = field_table(kept, hw, _columns(params))
    if table is None:
        table = _empty_table(params)
    if _BORDER_NOTE in messages:  # a block's classifier noted cut cells: the field's count
        messages.remove(_BORDER_NOTE)
    if _BORDER_NOTE in notes and table["touches_border"].any():
        messages.append(f"{int(table['touches_border'].sum())} cell(s) cut by the image border: "
                        "classified from the part inside the image")
    guard = write_guard or (lambda _path: contextlib.nullcontext())
    t2 = time.perf_counter()
    paths = _write_outputs(kept, table, hw, out, stem, guard)
    timings = {"segment_s": segment_s, "write_s": time.perf_counter() - t2,
               "cell_diameter_px": round(d, 1) if diameter else None, "margin_px": margin,
               "blocks": len(grid), "block_px": block, "duplicates": counts["duplicates"],
               "rescued": counts["rescued"], "total_s": time.perf_counter() - t0}
    return LargeFieldResult(table, params.differential(table), net.entry.name, device, hw,
                            timings, messages, paths, len(grid), margin)


def _fixed_diameter(field: LazyField, params, block: int, messages):
    """The cell diameter every block uses: the given one, or one estimate for the field."""
    if params.cell_diameter != "auto":
        return params.cell_diameter
    from ..core.scale import estimate_cell_diameter
    from ..inference.segment import CELL_DIAMETER_RANGE_PX, NO_CONTRAST_LEVELS

    tries = 0
    for core, _region in block_grid(field.shape, block, 0):
        rgb = _read(field, core)
        if int(rgb.max()) - int(rgb.min()) <= NO_CONTRAST_LEVELS:
            continue
        tries += 1
        d = estimate_cell_diameter(rgb)
        if d is not None and CELL_DIAMETER_RANGE_PX[0] <= d <= CELL_DIAMETER_RANGE_PX[1]:
            return float(d)
        if tries >= _AUTO_TRIES:
            break
    messages.append("could not estimate the cell size: using the model's native scale")
    return None


def _fitting_block(block: int, margin: int, factor: float) -> int:
    """``block`` halved (not below 256) until one block with its margins, rescaled to the
    model's cell size, is at most ``BLOCK_WORK_MEGAPIXELS``."""
    while block > 256 and ((block + 2 * margin) * factor) ** 2 > BLOCK_WORK_MEGAPIXELS * 1e6:
        block = max(256, block // 2)
    return block


def _check_block_size(grid, diameter, native):
    from ..inference.segment import ImageTooLargeError, check_image_size

    y0, y1, x0, x1 = max((r for _c, r in grid), key=lambda r: (r[1] - r[0]) * (r[3] - r[2]))
    hw = (y1 - y0, x1 - x0)
    factor = native / diameter if diameter else 1.0
    try:
        check_image_size(hw, "one block with its margin")
        check_image_size((round(hw[0] * factor), round(hw[1] * factor)),
                         "one block rescaled to the model's cell size")
    except ImageTooLargeError as exc:
        raise LargeFieldError(f"{exc.args[0].split(': crop')[0]}: use a smaller block") from None


def _read(field: LazyField, box) -> np.ndarray:
    """One region as numpy, through dask's synchronous scheduler (bounded memory)."""
    y0, y1, x0, x1 = box
    rgb = np.asarray(field.region(y0, y1, x0, x1).compute(scheduler="synchronous"))
    field.note_read(rgb.shape)
    return rgb


def _run_block(field: LazyField, params, index, core, region, hw, messages):
    """One dask task: read the block with its margin, segment it, return its cells."""
    import dask

    def segment_block(rgb):
        from ..core.batch import run_to_end
        from ..inference.segment import NO_CONTRAST_LEVELS, segment_steps
        from .large_field_cells import block_cells

        field.note_read(rgb.shape)
        if rgb.size and int(rgb.max()) - int(rgb.min()) <= NO_CONTRAST_LEVELS:
            return []  # segment's own rule for a flat image (no cells), without its work
        result = run_to_end(segment_steps(rgb, params))
        for m in result.messages:
            m = _field_message(m)
            if m and m not in messages:
                messages.append(m)
        return block_cells(result, index, region, core, hw)

    y0, y1, x0, x1 = region
    task = dask.delayed(segment_block, pure=False)(field.region(y0, y1, x0, x1))
    return task.compute(scheduler="synchronous")


def _field_message(m: str) -> str | None:
    """A block's message as said of the field: counts of one block (which include cells
    of its margin and cells it cut) are not the field's, so they lose the number."""
    import re

    if "no contrast" in m:
        return None
    if re.match(r"\d+ cell\(s\) cut by the image border", m):
        return _BORDER_NOTE  # said again with the field's own count
    if re.match(r"\d+ object\(s\) too small", m):
        return "object(s) too small to be a white cell: left unidentified"
    return m


def _columns(params):
    from ..core.measurements import BASE_COLUMNS, UM_COLUMNS

    return BASE_COLUMNS + (UM_COLUMNS if params.pixel_size_um is not None else [])


def _empty_table(params):
    from ..core.measurements import cell_table

    z = np.zeros((1, 1), np.int32)
    return cell_table(z, z, np.zeros((1, 1), np.uint8), confidence={},
                      pixel_size_um=params.pixel_size_um, **params.table_kw())


def _write_outputs(kept, table, hw, out: Path, stem: str, guard) -> list[Path]:
    from .field_outputs import LABEL_KINDS, write_cells_csv

    paths = []
    for kind in LABEL_KINDS:
        path = out / f"{stem}_{kind}.tif"
        with guard(path):
            _write_label_tiff(path, kept, hw, kind, f"{stem} {kind}")
        paths.append(path)
    paths.append(write_cells_csv(table, stem, out, guard))
    return paths


def _write_label_tiff(path: Path, kept, hw, kind: str, name: str) -> None:
    """A tiled, zlib-compressed BigTIFF written tile by tile (atomic: temp name, rename)."""
    import tifffile

    from ..io.atomic import atomic_path
    from ..io.writer import LABELS_TAG, smallest_label_dtype
    from .large_field_cells import paint_tile

    H, W = hw
    dtype = np.uint8 if kind == "celltype" else smallest_label_dtype(np.array([len(kept)]))
    ids = np.arange(1, len(kept) + 1)
    by_top = range(len(kept))

    def tiles():
        for ty0 in range(0, H, OUT_TILE):
            ty1 = min(ty0 + OUT_TILE, H)
            band = sorted(k for k in by_top if kept[k].y0 < ty1 and kept[k].y1 > ty0)  # id order
            cells, cell_ids = [kept[k] for k in band], [ids[k] for k in band]
            for tx0 in range(0, W, OUT_TILE):
                yield paint_tile(cells, cell_ids, ty0, ty1, tx0, min(tx0 + OUT_TILE, W),
                                 kind, dtype)

    description = json.dumps({LABELS_TAG: {"layer_type": "labels", "name": name}})
    with atomic_path(path) as tmp:
        tifffile.imwrite(tmp, tiles(), shape=(H, W), dtype=dtype, tile=(OUT_TILE, OUT_TILE),
                         compression="zlib", compressionargs={"level": 1}, bigtiff=True,
                         description=description, metadata=None)
