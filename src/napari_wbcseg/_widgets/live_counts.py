"""The live counts of one image's three label layers, shared by every dock that shows them.

:func:`live_counts` gives the one :class:`LiveCounts` of a layer set (made on first use,
dropped when a layer leaves the viewer).  It recomputes ``core.image_counts`` from the
current arrays and metadata, writes the result into the layers' ``features`` and tells its
listeners, so the Segment dock, the Correct dock, the layers and every export follow each
edit and each undo:

* the docks' own edits run inside :meth:`LiveCounts.hold` (one recount when it ends);
* a change of classes only (the nucleus and cytoplasm as last measured) keeps the
  measurements and recounts from the table (``core.image_counts.recount_classes``);
* napari's tools (a brush stroke, napari's own Ctrl+Z, a new ``data`` or ``metadata``)
  are seen through the layers' events and recounted once, a moment after the last event,
  and only when a checksum of the arrays, the rules, the classes or the review changed.
"""
from __future__ import annotations

import itertools
import re
from contextlib import contextmanager
from functools import lru_cache

import numpy as np

from ..core.image_counts import (CountRules, ImageCounts, class_pixels, counts_from_table,
                                 image_counts, labels_checksum, recount_classes)
from ..schema import DEFAULT_CLASSES, CellClass
from ..schemes.builtin import builtin_schemes
from ..schemes.scheme import SchemeError, as_cell_class
from ..schemes.tables import table_scheme
from .review_metadata import read_review

KINDS = ("nucleus", "cytoplasm", "cell_type")
SETTLE_MS = 50  # napari's events of one action arrive together; recount once after them
_SETS: dict[tuple, "LiveCounts"] = {}
_GENERATIONS = itertools.count(1)


def layer_classes(cell_type_layer) -> tuple[CellClass, ...]:
    """The class table in a cell-type layer's metadata (``classes``: CellClass objects or
    ``{code, name, color[, group, hotkey]}`` dicts), else the default.  Groups and hotkeys
    are kept; a table stored without them that is a built-in scheme's gets them back."""
    table = cell_type_layer.metadata.get("classes")
    if table:
        try:
            rows = tuple(_as_row(c) for c in table)
        except (KeyError, TypeError, ValueError):  # SchemeError is a ValueError
            rows = ()
        if rows:
            return _with_scheme_extras(rows)
    return DEFAULT_CLASSES


def _as_row(c) -> tuple:
    if isinstance(c, dict) and isinstance(c.get("code"), np.integer):
        c = {**c, "code": int(c["code"])}
    c = as_cell_class(c)
    return (c.code, c.name, c.color, c.group, c.hotkey)


@lru_cache(maxsize=64)
def _with_scheme_extras(rows: tuple[tuple, ...]) -> tuple[CellClass, ...]:
    """``rows`` (code, name, colour, group, hotkey) as CellClass; every call of a layer's
    ``classes`` comes here, hence the cache (keyed by all five fields)."""
    classes = tuple(CellClass(*r) for r in rows)
    if any(c.group or c.hotkey for c in classes):
        return classes
    try:
        scheme = table_scheme(classes)
    except SchemeError:
        return classes
    if scheme.name not in builtin_schemes():
        return classes
    return tuple(scheme.by_code.get(c.code, c) for c in classes)


def _confidence_of(features) -> dict[int, float]:
    if not {"index", "confidence"} <= set(features.columns):
        return {}
    return {int(i): float(c) for i, c in zip(features["index"], features["confidence"])
            if np.isfinite(c)}


def live_counts(viewer, layers: dict) -> "LiveCounts":
    """The shared :class:`LiveCounts` of ``layers`` ({kind: Labels layer})."""
    key = tuple(layers[k].unique_id for k in KINDS)
    live = _SETS.get(key)
    if live is None or live.closed:
        live = _SETS[key] = LiveCounts(viewer, layers, key)
    return live


class LiveCounts:
    """Counts of one layer set; ``listen(callback)``: ``callback(counts)`` after each
    recount, ``callback(None)`` when the set is gone."""

    def __init__(self, viewer, layers: dict, key=None):
        self.viewer, self.layers, self._key = viewer, {k: layers[k] for k in KINDS}, key
        self.counts: ImageCounts | None = None
        self.generation = 0  # new at each recount, unique over all sets: "changed since?"
        self.closed = False
        self._listeners: list = []
        self._state = None  # what the last counts were made from
        self._measured = None  # the nucleus + cytoplasm (and pixel size) the table measured
        self._pixels = None  # per table row: the pixel its class is read from
        self._held = 0
        self._writing = False
        self._timer = None  # made on the first layer event (needs the Qt application)
        self._confidence = _confidence_of(self.layers["nucleus"].features)
        self._connections = []
        for layer in self.layers.values():
            for event in (layer.events.paint, layer.events.data, layer.events.set_data,
                          layer.events.metadata):
                event.connect(self._on_layer_event)
                self._connections.append((event, self._on_layer_event))
        features = self.layers["nucleus"].events.features
        features.connect(self._on_features)
        self._connections.append((features, self._on_features))
        viewer.layers.events.removed.connect(self._on_removed)

    # ---- listeners and lifetime ------------------------------------------------------
    def listen(self, callback) -> None:
        if callback not in self._listeners:
            self._listeners.append(callback)

    def unlisten(self, callback) -> None:
        if callback in self._listeners:
            self._listeners.remove(callback)

    @property
    def alive(self) -> bool:
        return not self.closed and all(lay in self.viewer.layers for lay in self.layers.values())

    def _on_removed(self, event=None) -> None:
        if not self.closed and not self.alive:
            self.close()

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        for event, callback in self._connections:
            event.disconnect(callback)
        self.viewer.layers.events.removed.disconnect(self._on_removed)
        if self._timer is not None:
            self._timer.stop()
        if _SETS.get(self._key) is self:
            del _SETS[self._key]
        for callback in list(self._listeners):
            callback(None)
        self._listeners.clear()

    # ---- what the counts are made from ---------------------------------------------------
    @property
    def classes(self) -> tuple[CellClass, ...]:
        return layer_classes(self.layers["cell_type"])

    @property
    def rules(self) -> CountRules:
        """The Segment dock's choices for these layers, kept in the cell-type metadata."""
        return CountRules.from_metadata(self.layers["cell_type"].metadata)

    def pixel_size_um(self, image_layer=None) -> float | None:
        for layer in (*self.layers.values(), image_layer):
            p = layer.metadata.get("pixel_size_um") if layer is not None else None
            if isinstance(p, (int, float)) and not isinstance(p, bool) and p > 0:
                return float(p)
        feats = self.layers["nucleus"].features  # a table made with a pixel size keeps it
        if {"cell_area_px", "cell_area_um2"} <= set(feats.columns) and len(feats):
            px, um2 = feats["cell_area_px"].to_numpy(float), feats["cell_area_um2"].to_numpy(float)
            ok = px > 0
            if ok.any():
                return float(np.sqrt(um2[ok][0] / px[ok][0]))
        return None

    def image_layer(self, *names):
        """The image layer these labels belong to: one of ``names``, the metadata's
        ``source_layer`` or the name before `` nucleus``."""
        from napari.layers import Image

        nucleus = self.layers["nucleus"]
        base = re.sub(r" nucleus( \[\d+\])?$", "", nucleus.name)
        for candidate in (*names, base, nucleus.metadata.get("source_layer")):
            if candidate and candidate in self.viewer.layers:
                layer = self.viewer.layers[candidate]
                if isinstance(layer, Image):
                    return layer
        return None

    def checksum(self) -> str:
        return labels_checksum(*(np.asarray(self.layers[k].data) for k in KINDS))

    def cells_checksum(self) -> str:
        """Checksum of the nucleus and cytoplasm as last counted (computed now when none
        is at hand): a thumbnail cache's key, without summing the arrays again."""
        if self._state is not None:
            return self._state[0]
        return labels_checksum(*(np.asarray(self.layers[k].data) for k in KINDS[:2]))

    def forget_confidence(self, cells) -> None:
        """Edited cells lose the network's confidence (it was about other pixels)."""
        for cid in cells:
            self._confidence.pop(int(cid), None)
        self._state = None

    # ---- recounting -------------------------------------------------------------------
    def current(self) -> ImageCounts:
        """The counts of the layers as they are now (recounted only if something changed)."""
        self.update()
        return self.counts

    def update(self, force: bool = False) -> bool:
        """Recount if the arrays, rules, classes or review changed; True if it did.

        When the nucleus and cytoplasm (and the pixel size) are those last measured, only
        the classes, confidences and counts are made again (``recount_classes``): a
        reclassified cell costs a few milliseconds, not a measurement of every cell."""
        if self.closed:
            return False
        state = self._inputs()
        if not force and self.counts is not None and state == self._state:
            return False
        a = {k: np.asarray(self.layers[k].data) for k in KINDS}
        measured = (state[0], state[5])
        if (not force and self.counts is not None and self._measured == measured
                and a["cell_type"].shape == a["nucleus"].shape):
            counts = recount_classes(self.counts, a["cell_type"], self._pixels, rules=state[2],
                                     classes=state[3], confidence=self._confidence,
                                     reviewed_cells=state[4])
        else:
            counts = image_counts(a["nucleus"], a["cytoplasm"], a["cell_type"],
                                  rules=state[2], classes=state[3],
                                  confidence=self._confidence, pixel_size_um=state[5],
                                  reviewed_cells=state[4])
            self._measured_from(a, counts, measured)
        self._publish(counts, state)
        return True

    def adopt(self, table) -> ImageCounts:
        """Take ``table``, a ``cell_table`` of the arrays as they are now (a fresh
        segmentation's), instead of measuring every cell again."""
        if "confidence" in table:
            self._confidence = {int(i): float(c) for i, c in table["confidence"].items()
                                if np.isfinite(c)}
        state = self._inputs()
        counts = counts_from_table(table, rules=state[2], classes=state[3],
                                   reviewed_cells=state[4])
        self._measured_from({k: np.asarray(self.layers[k].data) for k in KINDS}, counts,
                            (state[0], state[5]))
        self._publish(counts, state)
        return self.counts

    def _measured_from(self, arrays, counts: ImageCounts, measured) -> None:
        """Remember which arrays ``counts``' measurements are of, and each cell's class pixel."""
        self._pixels = class_pixels(arrays["nucleus"], arrays["cytoplasm"], counts.table.index)
        self._measured = measured

    def _inputs(self) -> tuple:
        """What the counts are made from: (nucleus + cytoplasm checksum, cell-type checksum,
        rules, classes, reviewed, pixel size)."""
        return (labels_checksum(*(np.asarray(self.layers[k].data) for k in KINDS[:2])),
                labels_checksum(np.asarray(self.layers["cell_type"].data)),
                self.rules, self.classes, frozenset(read_review(self.layers.values()).cells),
                self.pixel_size_um(self.image_layer()))

    def _publish(self, counts: ImageCounts, state) -> None:
        self._writing = True
        try:
            feats = counts.cell_features()
            self.layers["nucleus"].features = feats
            self.layers["cytoplasm"].features = feats
            self.layers["cell_type"].features = counts.class_features()
        finally:
            self._writing = False
        self.counts, self._state = counts, state
        self.generation = next(_GENERATIONS)
        for callback in list(self._listeners):
            callback(counts)

    @contextmanager
    def hold(self):
        """Edits inside are recounted once, when the outermost ``hold`` ends."""
        self._held += 1
        try:
            yield self
        finally:
            self._held -= 1
            if not self._held:
                self.update()

    def _on_layer_event(self, event=None) -> None:
        if self._writing or self._held or self.closed:
            return
        if self._timer is None:
            from qtpy.QtCore import QTimer

            self._timer = QTimer()
            self._timer.setSingleShot(True)
            self._timer.setInterval(SETTLE_MS)
            self._timer.timeout.connect(self._settled)
        self._timer.start()  # restarts: one recount after the last of a burst of events

    def _settled(self) -> None:
        if self.alive:
            self.update()

    def _on_features(self, event=None) -> None:
        """Someone else set the table (a new segmentation, a script): take its confidences."""
        if self._writing or self.closed:
            return
        self._confidence = _confidence_of(self.layers["nucleus"].features)
        self._state = None
        self._on_layer_event()
