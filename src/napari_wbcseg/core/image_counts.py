"""The one differential count of an image, derived from its three label layers.

Every view of an image's counts (the Segment and Correct docks, the layers' ``features``,
each CSV export) comes from :func:`image_counts`, called on the current label arrays with
the counting rules kept in the label layers' metadata (:meth:`CountRules.from_metadata`):
``include_border_cells`` (count cells cut by the image border) and ``class_threshold`` (the
confidence below which a counted cell is "to check").  So the views cannot disagree, and
whoever edits the arrays only has to ask for the counts again.

A change of classes only (a reclassified cell, an undo of one) does not need the cells
measured again: :func:`recount_classes` takes the class column from the cell-type array at
one pixel per cell (:func:`class_pixels`, found when the cells were measured) and keeps
every measurement of the table, giving exactly what :func:`image_counts` would.

:func:`labels_checksum` fingerprints label arrays cheaply (CRC-32, no copy of a contiguous
array): "did these layers change since ..." without keeping a copy of them.
"""
from __future__ import annotations

import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..schema import DEFAULT_CLASSES, class_by_code
from .measurements import _class_name, cell_table, differential_count

INCLUDE_BORDER_KEY = "include_border_cells"  # label-layer metadata: count border cells
THRESHOLD_KEY = "class_threshold"  # label-layer metadata: "to check" below this confidence

__all__ = ["CountRules", "ImageCounts", "image_counts", "counts_from_table", "class_pixels",
           "recount_classes", "labels_checksum", "INCLUDE_BORDER_KEY", "THRESHOLD_KEY"]


@dataclass(frozen=True)
class CountRules:
    """How cells are counted: border cells in or out, and the "to check" confidence."""

    include_border: bool = False
    check_below: float | None = None

    @classmethod
    def from_metadata(cls, metadata: Mapping) -> "CountRules":
        """From a label layer's metadata; anything but ``True`` / a number in [0, 1] is
        the default (hand-made metadata never breaks the count)."""
        t = metadata.get(THRESHOLD_KEY)
        ok = (isinstance(t, (int, float, np.number)) and not isinstance(t, (bool, np.bool_))
              and 0.0 <= float(t) <= 1.0)
        return cls(include_border=metadata.get(INCLUDE_BORDER_KEY, False) is True,
                   check_below=float(t) if ok else None)


@dataclass(frozen=True)
class ImageCounts:
    """``table``: one row per cell (index ``cell_id``); ``differential``: one row per
    class (index ``class_code``, totals in ``attrs``; see ``differential_count``)."""

    table: pd.DataFrame
    differential: pd.DataFrame

    def cell_features(self) -> pd.DataFrame:
        """The nucleus and cytoplasm layers' ``features`` (napari's ``index`` = cell id)."""
        return self.table.reset_index().rename(columns={"cell_id": "index"})

    def class_features(self) -> pd.DataFrame:
        """The cell-type layer's ``features`` (``index`` = class code): the differential."""
        return self.differential.reset_index().rename(columns={"class_code": "index"})


def image_counts(nucleus, cytoplasm, cell_type, *, rules: CountRules = CountRules(),
                 classes=DEFAULT_CLASSES, confidence=None, pixel_size_um=None,
                 reviewed_cells: Iterable[int] = ()) -> ImageCounts:
    """Per-cell table (with a ``reviewed`` column) and differential count of one image."""
    table = cell_table(nucleus, cytoplasm, cell_type, confidence=confidence,
                       pixel_size_um=pixel_size_um, classes=classes)
    return counts_from_table(table, rules=rules, classes=classes,
                             reviewed_cells=reviewed_cells)


def counts_from_table(table: pd.DataFrame, *, rules: CountRules = CountRules(),
                      classes=DEFAULT_CLASSES, reviewed_cells: Iterable[int] = ()) -> ImageCounts:
    """:func:`image_counts` from a ``cell_table`` of the same arrays already at hand (a
    fresh segmentation's), without measuring the cells again."""
    table = table.copy()
    table["reviewed"] = table.index.isin(sorted(int(c) for c in reviewed_cells))
    diff = differential_count(table, classes, include_border=rules.include_border,
                              check_below=rules.check_below)
    return ImageCounts(table, diff)


def class_pixels(nucleus, cytoplasm, cell_ids) -> np.ndarray:
    """Flat index, per cell id of ``cell_ids``, of the pixel whose cell-type value
    ``cell_table`` takes as the cell's class (its last pixel in C order)."""
    nucleus, cytoplasm = np.asarray(nucleus), np.asarray(cytoplasm)
    cells = np.where(nucleus > 0, nucleus, cytoplasm).astype(np.int64).ravel()
    last = np.zeros(int(cells.max()) + 1 if cells.size else 1, np.int64)
    last[cells] = np.arange(cells.size)  # later writes win, as in cell_table
    ids = np.asarray(cell_ids, np.int64)
    if ids.size and (ids.min() < 1 or ids.max() >= last.size):
        raise ValueError("cell ids outside the label images")
    return last[ids]


def recount_classes(counts: ImageCounts, cell_type, pixels, *, rules: CountRules = CountRules(),
                    classes=DEFAULT_CLASSES, confidence=None,
                    reviewed_cells: Iterable[int] = ()) -> ImageCounts:
    """:func:`image_counts` after the cell-type array, the confidences, the classes, the
    rules or the review changed, but not the nucleus and cytoplasm: ``counts.table``'s
    measurements are kept, its class and confidence columns made again.  ``pixels``:
    :func:`class_pixels` of the cells of ``counts.table`` (same order)."""
    table = counts.table.drop(columns=["reviewed"], errors="ignore").copy()
    pixels = np.asarray(pixels, np.int64)
    if pixels.shape != (len(table),):
        raise ValueError(f"{pixels.size} class pixels for {len(table)} cells")
    code = np.asarray(cell_type).ravel()[pixels].astype(np.int64)
    by_code = class_by_code(classes)
    table["class_code"] = code
    table["class"] = [_class_name(c, by_code) for c in code]
    get = (confidence if confidence is not None else {}).get
    table["confidence"] = np.array([np.nan if get(int(i)) is None else float(get(int(i)))
                                    for i in table.index], float)
    return counts_from_table(table, rules=rules, classes=classes, reviewed_cells=reviewed_cells)


def labels_checksum(*arrays) -> str:
    """A CRC-32 over the arrays' dtypes, shapes and bytes (hex); equal arrays, equal sums."""
    crc = 0
    for a in arrays:
        a = np.ascontiguousarray(a)
        crc = zlib.crc32(f"{a.dtype.str}{a.shape};".encode(), crc)
        crc = zlib.crc32(a.reshape(-1).view(np.uint8), crc)
    return f"{crc:08x}"
