"""Segment a smear end to end: preprocess, tiled network, instances, table.

``segment_steps`` is a generator of :class:`SegmentEvent` that returns a
:class:`Segmentation`; the widget drives it in a worker thread, ``segment`` and
the CLI run it to the end.  Closing the generator cancels between tiles.

Bad settings raise ``ValueError`` when :class:`SegmentParams` is made: a cell diameter
outside ``CELL_DIAMETER_RANGE_PX``, a non-finite pixel size, a tile outside
``TILE_RANGE_PX``.  An image (or its rescaled working copy) above ``MAX_MEGAPIXELS``
raises :class:`ImageTooLargeError` before any work; a constant image gives no cells and
says so; a model whose outputs are NaN/inf raises
:class:`~.predictor.ModelOutputError`.

``SegmentParams.classes`` (a project's class table) writes the cell types in that table:
"auto" prefers the classifier installed for it, and cell types of another table (the
classifier's or the network head's) are mapped onto it by name
(:func:`~napari_wbcseg.schemes.map_classes`), the mapping's one line in ``messages``.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from ..core.resize import resize_image, resize_probabilities

PREPROCESS_CHOICES = ("model", "none", "ahe-retinex")
# a white cell is 4 px (a thumbnail) to 2000 px (a 100x oil field at full resolution) across
CELL_DIAMETER_RANGE_PX = (4.0, 2000.0)
TILE_RANGE_PX = (64, 8192)
PIXEL_SIZE_MAX_UM = 1000.0
# Peak memory grows linearly with the pixels.  Measured (CPU, default model): ~0.8 GB
# for torch and the model, plus 100-190 MB per megapixel (2048x1536 = 3.1 MP peaks at
# 1.1-1.35 GB RSS), so 30 MP (~10 such fields, e.g. 6300x4700) stays under ~6.5 GB;
# bigger fields must be cropped or tiled.  Applies to the input and to its working copy
# rescaled to the model's cell size.  Tests monkeypatch it.
MAX_MEGAPIXELS = 30.0
# an image whose pixels all lie within this many grey levels holds no cell
NO_CONTRAST_LEVELS = 4


class ImageTooLargeError(ValueError):
    """An image whose segmentation would need more memory than ``MAX_MEGAPIXELS`` allows."""


def check_image_size(hw, what: str = "the image") -> None:
    """``ImageTooLargeError`` when ``hw`` (rows, cols) exceeds ``MAX_MEGAPIXELS``."""
    mp = hw[0] * hw[1] / 1e6
    if mp > MAX_MEGAPIXELS:
        raise ImageTooLargeError(
            f"{what} is {hw[1]}x{hw[0]} px ({mp:.3g} megapixels), above the limit of "
            f"{MAX_MEGAPIXELS:g} megapixels for one segmentation: crop or tile it")


def _is_number(value) -> bool:
    import math

    return (isinstance(value, (int, float, np.integer, np.floating))
            and not isinstance(value, bool) and math.isfinite(float(value)))


@dataclass(frozen=True)
class SegmentParams:
    model: str | None = None  # None = the default bundled model
    device: str = "auto"
    preprocess: str = "model"  # "model" = what the model was trained with
    # typical white-cell diameter in px: a number, "auto" (estimated from the red cells,
    # falling back to the model's scale) or None (the model's scale: no resizing)
    cell_diameter: float | str | None = "auto"
    pixel_size_um: float | None = None  # only for physical units in the table
    tile: int = 512
    overlap: int = 64
    batch_size: int = 1
    # per-cell classifier: "auto" = the one installed for the model's class table (else the
    # network's own cell-type head), "none" = the network's head, or a classifier name/path
    classifier: str | None = "auto"
    # calibrated confidence below which a cell is "unidentified" (classifier only)
    class_threshold: float = 0.5
    # cells cut by the image border are flagged in the table; the differential leaves
    # them out (as hematologists count) unless this is True
    include_border_cells: bool = False
    # the class table to write the cell types in (a project's): a ClassScheme, a built-in
    # scheme's name, or CellClass items / {code, name, color} dicts; None = the model's
    classes: tuple | None = None
    # test-time augmentation: probabilities averaged over the four mirror images of each
    # tile (~4x the network's time; +0.03..0.3 points of cell Dice on the selection split)
    tta: bool = False
    # an image that needs many windows is first predicted at 0.7x to find the cells, then
    # at its own scale only around them (inference/sparse_windows.py); False = every window
    coarse_pass: bool = True

    def __post_init__(self):
        """``ValueError`` (one line) for settings out of their documented range."""
        lo, hi = CELL_DIAMETER_RANGE_PX
        d = self.cell_diameter
        if not (d is None or d == "auto" or (_is_number(d) and lo <= float(d) <= hi)):
            raise ValueError(f"cell diameter must be {lo:g}..{hi:g} pixels, 'auto' or None "
                             f"(the model's scale), got {d!r}")
        px = self.pixel_size_um
        if not (px is None or (_is_number(px) and 0 < float(px) <= PIXEL_SIZE_MAX_UM)):
            raise ValueError(f"pixel size must be a number in (0, {PIXEL_SIZE_MAX_UM:g}] um, "
                             f"got {px!r}")
        if self.preprocess not in PREPROCESS_CHOICES:
            raise ValueError(f"preprocess must be one of {', '.join(PREPROCESS_CHOICES)}, "
                             f"got {self.preprocess!r}")
        tlo, thi = TILE_RANGE_PX
        if not (_is_integer(self.tile) and tlo <= self.tile <= thi):
            raise ValueError(f"tile must be a whole number of pixels in [{tlo}, {thi}], "
                             f"got {self.tile!r}")
        if not (_is_integer(self.overlap) and 0 <= self.overlap < self.tile):
            raise ValueError(f"overlap must be a whole number in [0, tile), got {self.overlap!r}")
        if not (_is_integer(self.batch_size) and 1 <= self.batch_size <= 256):
            raise ValueError(f"batch size must be 1..256, got {self.batch_size!r}")
        t = self.class_threshold
        if not (_is_number(t) and 0.0 <= float(t) <= 1.0):
            raise ValueError(f"the confidence threshold must be a number in [0, 1], got {t!r}")
        if not isinstance(self.include_border_cells, (bool, np.bool_)):
            raise ValueError(f"include_border_cells must be True or False, "
                             f"got {self.include_border_cells!r}")
        if not isinstance(self.tta, (bool, np.bool_)):
            raise ValueError(f"tta must be True or False, got {self.tta!r}")
        if self.classes is not None:
            object.__setattr__(self, "classes", _class_table(self.classes))

    def differential(self, tables):
        """The differential count of ``tables`` under these settings (border cells, the
        confidence below which a cell is to check)."""
        from ..core.measurements import differential_count

        return differential_count(tables, include_border=bool(self.include_border_cells),
                                  check_below=float(self.class_threshold), **self.table_kw())

    def table_kw(self) -> dict:
        """``classes=`` for the per-cell table and the differential (none: their default)."""
        return {"classes": self.classes} if self.classes else {}


def _class_table(classes) -> tuple:
    """``classes`` as a validated table of CellClass, unidentified (255) last; ``ValueError``
    ("class table: ...", one line) for a table that breaks the scheme rules."""
    from itertools import islice

    from ..schemes import MAX_CLASSES, load_scheme
    from ..schemes.scheme import ClassScheme, as_cell_class
    from ..schemes.tables import table_scheme

    try:
        if isinstance(classes, (str, ClassScheme)):
            return load_scheme(classes).classes
        rows = tuple(islice(classes, MAX_CLASSES + 2))  # a bounded look at a huge table
        if len(rows) > MAX_CLASSES + 1:
            raise ValueError(f"more than the {MAX_CLASSES} classes allowed")
        return table_scheme(tuple(as_cell_class(c) for c in rows)).classes
    except (TypeError, ValueError) as exc:
        raise ValueError(f"class table: {exc}") from None


def _is_integer(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


@dataclass(frozen=True)
class SegmentEvent:
    stage: str
    done: int
    total: int
    message: str = ""


@dataclass
class Segmentation:
    nucleus: np.ndarray
    cytoplasm: np.ndarray
    cell_type: np.ndarray
    table: object  # pandas.DataFrame indexed by cell id
    differential: object  # pandas.DataFrame
    model: str
    device: str
    timings: dict = field(default_factory=dict)
    messages: list = field(default_factory=list)
    classifier: str = ""  # the per-cell classifier that gave the cell types ("" = network head)
    head_weight: float = 0.0  # weight of the network's head combined with the classifier's
    classes: tuple = ()  # the class table of ``cell_type`` (SegmentParams.classes; () = the model's)

    def cell_type_source(self) -> str:
        """The cell types' source in words, for status lines."""
        if not self.classifier:
            return "network head"
        if self.head_weight >= 1:
            return f"network head (chosen over {self.classifier})"
        if self.head_weight > 0:
            return f"{self.classifier} + network head (weight {self.head_weight:g})"
        return self.classifier


def segment(image, model=None, device="auto", preprocess="model", **kwargs) -> Segmentation:
    """Nucleus, cytoplasm and cell-type labels, per-cell table and differential count."""
    from ..core.batch import run_to_end

    params = SegmentParams(model=model, device=device, preprocess=preprocess, **kwargs)
    return run_to_end(segment_steps(image, params))


def segment_steps(image, params: SegmentParams):
    from ..core.image import as_rgb_uint8
    from ..core.measurements import cell_table
    from ..core.postprocessing import instances_from_probabilities
    from .device import describe_device, is_out_of_memory, resolve_device
    from .predictor import load_model
    from .segment_cell_types import classified, in_table, pick_classifier
    from .sparse_windows import predict_two_pass, worth_a_coarse_pass
    from .tiling import halve_tile, predict_tiled, window_side

    t0 = time.perf_counter()
    timings: dict[str, float] = {}
    messages: list[str] = []
    if not isinstance(params, SegmentParams):
        raise TypeError(f"params must be SegmentParams, got {type(params).__name__}")
    shape = getattr(image, "shape", None)
    if shape is not None and len(shape) >= 2:  # before as_rgb_uint8 copies it
        check_image_size(tuple(int(n) for n in shape[:2]))
    rgb = original = as_rgb_uint8(image)
    check_image_size(rgb.shape[:2])
    device = resolve_device(params.device)
    yield SegmentEvent("load", 0, 1, f"loading model on {describe_device(device)}")
    net = load_model(params.model, device, tta=bool(params.tta))
    timings["load_s"] = time.perf_counter() - t0
    spread = int(rgb.max()) - int(rgb.min()) if rgb.size else 0
    if spread <= NO_CONTRAST_LEVELS:
        messages.append(f"the image has no contrast (all pixels within {spread} grey levels "
                        f"of {int(rgb.min())}): no cells")
        yield SegmentEvent("done", 1, 1, "0 white cells")
        return _empty(rgb.shape[:2], net, device, timings, messages, t0, params)

    method = net.card.get("preprocessing", {}).get("method", "none")
    method = method if params.preprocess == "model" else params.preprocess
    if method == "ahe-retinex":
        from ..core.preprocessing import ahe_retinex

        rgb = ahe_retinex(rgb)
    timings["preprocess_s"] = time.perf_counter() - t0 - timings["load_s"]

    hw = rgb.shape[:2]
    diameter = params.cell_diameter
    if diameter == "auto":
        from ..core.scale import estimate_cell_diameter

        diameter = estimate_cell_diameter(rgb)
        if diameter is None:
            messages.append("could not estimate the cell size: using the model's native scale")
    factor = 1.0 if not diameter else net.native_cell_diameter / float(diameter)
    timings["cell_diameter_px"] = round(float(diameter), 1) if diameter else None
    small_hw = (max(8, round(hw[0] * factor)), max(8, round(hw[1] * factor)))
    check_image_size(small_hw, f"rescaled to the model's cell size "
                     f"({net.native_cell_diameter:g} / {float(diameter or 1):g} px), the image")
    work = rgb if small_hw == hw else resize_image(rgb, small_hw, shrink=factor < 1)
    timings["work_shape"] = small_hw

    tile = window_side(work.shape[:2], params.tile, net.size_multiple)
    t1 = time.perf_counter()
    probs = None
    if params.coarse_pass and worth_a_coarse_pass(work.shape[:2], tile, params.overlap,
                                                  net.size_multiple):
        try:
            probs, boxes = yield from _progress(predict_two_pass(
                work, net, tile=tile, overlap=params.overlap, batch_size=params.batch_size,
                pad_multiple=net.size_multiple), device)
            timings["coarse_pass_boxes"] = len(boxes) if probs is not None else None
        except Exception as exc:  # out of memory: the plain windows below handle it
            if not is_out_of_memory(exc):
                raise
            probs = None
    while probs is None:
        try:
            probs = yield from _progress(predict_tiled(
                work, net, tile=tile, overlap=params.overlap, batch_size=params.batch_size,
                pad_multiple=net.size_multiple), device)
        except Exception as exc:  # only out-of-memory is handled; everything else propagates
            if not is_out_of_memory(exc):
                raise
            from .device import free_cached_memory

            free_cached_memory(device)
            try:
                tile = halve_tile(tile)
                messages.append(f"out of memory on {device}: retrying with {tile} px tiles")
            except ValueError:
                if device == "cpu":
                    raise
                messages.append(f"out of memory on {device} even with small tiles: using the CPU")
                device, tile = "cpu", params.tile
                net = load_model(params.model, device, tta=bool(params.tta))
            yield SegmentEvent("predict", 0, 1, messages[-1])
    timings["predict_s"] = time.perf_counter() - t1

    t2 = time.perf_counter()
    yield SegmentEvent("postprocess", 0, 1, "separating cells")
    probs = resize_probabilities(probs, hw)
    area_scale = 1.0 / (factor * factor)
    inst = instances_from_probabilities(
        probs[:3], probs[3:], class_codes=net.class_codes,
        min_cell_area=int(100 * area_scale), min_nucleus_area=int(20 * area_scale))
    timings["postprocess_s"] = time.perf_counter() - t2
    classifier = pick_classifier(params.classifier, net, device, messages, params.classes)
    head_weight = 0.0
    if classifier is not None and tuple(net.class_codes) == classifier.codes:
        from .classify import card_head_weight

        head_weight = card_head_weight(classifier, net.entry.name)
    if classifier is not None and inst.n_cells:
        t3 = time.perf_counter()
        yield SegmentEvent("classify", 0, 1, f"classifying {inst.n_cells} cells")
        head = probs[3:] if tuple(net.class_codes) == classifier.codes else None
        inst = classified(inst, original, classifier, factor, params.class_threshold, messages,
                           head, net.entry.name)
        timings["classify_s"] = time.perf_counter() - t3
    if params.classes:
        inst = in_table(inst, params.classes, classifier, net, messages)
    table = cell_table(inst.nucleus, inst.cytoplasm, inst.cell_type, confidence=inst.confidence,
                       pixel_size_um=params.pixel_size_um, **params.table_kw())
    timings["total_s"] = time.perf_counter() - t0
    yield SegmentEvent("done", 1, 1, f"{inst.n_cells} white cells")
    return Segmentation(inst.nucleus, inst.cytoplasm, inst.cell_type, table,
                        params.differential(table), net.entry.name, device, timings, messages,
                        classifier.entry.name if classifier is not None else "", head_weight,
                        params.classes or ())


def _progress(gen, device):
    """Pass ``gen``'s tile progress on as predict events; return its value."""
    while True:
        try:
            ev = next(gen)
        except StopIteration as stop:
            return stop.value
        yield SegmentEvent("predict", ev.done, ev.total, f"tile {ev.done}/{ev.total} on {device}")


def _empty(hw, net, device, timings, messages, t0, params) -> Segmentation:
    """The result for an image without cells: empty labels, table and differential."""
    from ..core.measurements import cell_table

    zeros = np.zeros(hw, np.int32)
    table = cell_table(zeros, zeros, np.zeros(hw, np.uint8), confidence={},
                       pixel_size_um=params.pixel_size_um, **params.table_kw())
    timings["total_s"] = time.perf_counter() - t0
    return Segmentation(zeros, zeros.copy(), np.zeros(hw, np.uint8), table,
                        params.differential(table), net.entry.name, device, timings, messages,
                        classes=params.classes or ())
