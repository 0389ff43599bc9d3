"""Where the review gallery's cells come from: every complete layer set in the viewer.

Each set's cells, classes and confidences are its shared ``live_counts.LiveCounts`` (the
same count the Segment and Correct docks show), so an edit or an undo made anywhere is
seen here through the live count's listeners.  Also the slide-level count towards a
target (``review.slide_count.count_tables`` of the live tables: the same count as
``count_arrays`` on the layers, without measuring a cell again).
"""
from __future__ import annotations

import math

import numpy as np

from ..core.cell_thumbnails import thumbnail_scale
from ..core.gallery_groups import GalleryCell, merge_classes
from ..core.image import ImageFormatError, as_rgb_uint8
from .correction_layers import find_layer_sets, shape_problem
from .live_counts import live_counts
from .review_gallery_model import ThumbnailSource

try:  # the review core's slide count (issue 15); the gallery works without it
    from ..review.slide_count import count_tables
except ImportError:  # pragma: no cover - older checkouts
    count_tables = None


def gallery_sets(viewer) -> dict:
    """``{name: LiveCounts}`` of the layer sets whose three layers agree in size."""
    return {name: live_counts(viewer, layers)
            for name, layers in find_layer_sets(viewer.layers).items()
            if shape_problem(layers) is None}


def table_of(live):
    """The live count's per-cell table as last counted (``refresh`` brings each count up
    to date once: every ``current()`` checksums the layers)."""
    return (live.counts if live.counts is not None else live.current()).table


def cells_of(name: str, live) -> list[GalleryCell]:
    table = table_of(live)
    reviewed = table["reviewed"] if "reviewed" in table else np.zeros(len(table), bool)
    return [GalleryCell(name, int(cid), int(code), float(conf) if conf is not None else math.nan,
                        bool(border), bool(rev))
            for cid, code, conf, border, rev in zip(
                table.index, table["class_code"], table["confidence"],
                table["touches_border"], reviewed)]


def classes_of(lives: dict) -> tuple:
    return merge_classes(live.classes for live in lives.values())


def typical_diameter(lives: dict) -> float | None:
    """Median equivalent diameter (px) of all cells: one magnification for all images
    without a pixel size."""
    areas = np.concatenate([table_of(live)["cell_area_px"].to_numpy(float)
                            for live in lives.values()] or [np.zeros(0)])
    areas = areas[areas > 0]
    return float(2.0 * np.sqrt(np.median(areas) / np.pi)) if areas.size else None


def update_sources(sources: dict, lives: dict, size: int) -> dict:
    """New ``{name: ThumbnailSource}``: an image whose nucleus and cytoplasm did not change
    keeps its source (and its cached thumbnails); a changed one is copied again."""
    diameter = typical_diameter(lives)
    out = {}
    for name, live in lives.items():
        image_layer = live.image_layer(name)
        if image_layer is None or image_layer.multiscale:
            continue
        nucleus = np.asarray(live.layers["nucleus"].data)
        cytoplasm = np.asarray(live.layers["cytoplasm"].data)
        pixel = live.pixel_size_um(image_layer)
        scale = (thumbnail_scale(size, pixel_size_um=pixel) if pixel else
                 thumbnail_scale(size, cell_diameter_px=diameter))
        checksum = live.cells_checksum() + f"@{scale:.4f}"
        old = sources.get(name)
        if old is not None and old.checksum == checksum:
            out[name] = old
            continue
        try:
            rgb = as_rgb_uint8(image_layer.data, what=f"image {name!r}")
        except ImageFormatError:
            continue
        if rgb.shape[:2] != nucleus.shape:
            continue
        out[name] = ThumbnailSource(rgb, nucleus.copy(), cytoplasm.copy(), checksum, scale)
    return out


def slide_count_text(lives: dict, classes, target: int) -> str:
    """The differential of the open images and the progress towards ``target``, two lines,
    from the live counts' tables (``count_tables``: no cell measured again).  Border cells
    are counted when any image's Segment dock counts them."""
    if count_tables is None:
        return "slide count: needs napari_wbcseg.review.slide_count"
    if not lives:
        return ""
    border = any(live.rules.include_border for live in lives.values())
    count = count_tables([table_of(live) for live in lives.values()], classes,
                         int(target), include_border=border)
    names = {c.code: c.name for c in classes}
    diff = ", ".join(f"{names.get(k, k)} {count.counts.get(k, 0)} ({p:.0f} %)"
                     for k, p in count.percent.items())
    return f"{count.progress_text()}\n{diff}"
