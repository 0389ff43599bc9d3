"""Correction edits on the schema layers, for the human-in-the-loop widget.

Pure functions on the three label arrays of ``DESIGN.md`` ("Label schema"): the
nucleus ids, the cytoplasm ids (the same cell id) and the cell-type class codes on
the whole cell.  ``arrays`` is any mapping with the keys ``"nucleus"``,
``"cytoplasm"`` and ``"cell_type"`` (2-D integer arrays of one shape).  No function
modifies its inputs; each returns an :class:`Edit`:

* ``changes[layer] = ((rows, cols), values)`` for each layer that changes, only the
  pixels whose value really changes, ``values`` in the layer's dtype.  A widget
  applies one layer's change as one undoable step with napari's
  ``Labels.data_setitem(indices, values)``; :func:`apply_edit` applies it to arrays.
* ``cells_changed``: sorted ids of every cell that gained or lost pixels or changed
  class (ids that vanished included), to update those rows of the per-cell table.

If the input follows the schema, so does the result (``schema.check_labels``).
After free-hand painting with napari's own brushes run :func:`reconcile`, which
repairs the schema.  Splitting cells lives in :mod:`.editing_split`
(``split_cell_by_line``, ``split_cell_by_seeds``; also importable from here).
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage as ndi

from ..schema import UNIDENTIFIED

LAYERS = ("nucleus", "cytoplasm", "cell_type")
PARTS = ("nucleus", "cytoplasm", "erase")

__all__ = ["Edit", "LAYERS", "apply_edit", "cell_at", "new_cell_id", "set_class",
           "delete_cell", "merge_cells", "fill_holes", "paint_part", "reconcile",
           "split_cell_by_line", "split_cell_by_seeds"]


@dataclass(frozen=True, eq=False)
class Edit:
    """The pixels an operation changes, per layer name (see the module docstring)."""

    changes: dict = field(default_factory=dict)  # layer -> ((rows, cols), values)
    cells_changed: tuple = ()
    description: str = ""

    @property
    def empty(self) -> bool:
        return not self.changes

    def n_pixels(self, layer: str) -> int:
        """Number of changed pixels of one layer (0 if it does not change)."""
        return int(self.changes[layer][1].size) if layer in self.changes else 0


# ---------------------------------------------------------------- helpers

def _layers(arrays) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if not isinstance(arrays, Mapping):
        raise TypeError(f"arrays must be a mapping with keys {LAYERS}, "
                        f"got {type(arrays).__name__}")
    missing = [k for k in LAYERS if k not in arrays]
    if missing:
        raise ValueError(f"arrays lacks the layer(s) {missing}; need {LAYERS}")
    out = tuple(np.asarray(arrays[k]) for k in LAYERS)
    for name, a in zip(LAYERS, out):
        if not np.issubdtype(a.dtype, np.integer):
            raise ValueError(f"{name} labels must be integers, got {a.dtype}")
        if a.ndim != 2:
            raise ValueError(f"{name} labels must be 2-D, got shape {a.shape}")
    if not out[0].shape == out[1].shape == out[2].shape:
        raise ValueError(f"label shapes differ: {[a.shape for a in out]}")
    return out


def _ids(nuc: np.ndarray, cyto: np.ndarray) -> np.ndarray:
    """Cell id per pixel (nucleus wins where both are set)."""
    return np.where(nuc > 0, nuc, cyto).astype(np.int64)


def _as_int(value, what: str) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{what} must be an integer, got {value!r}")
    return int(value)


def _window(mask: np.ndarray, pad: int = 1) -> tuple[slice, slice]:
    """Bounding box of ``mask`` grown by ``pad`` pixels, clipped to the image."""
    rows, cols = np.any(mask, axis=1), np.any(mask, axis=0)
    r, c = np.flatnonzero(rows), np.flatnonzero(cols)
    return (slice(max(int(r[0]) - pad, 0), min(int(r[-1]) + 1 + pad, mask.shape[0])),
            slice(max(int(c[0]) - pad, 0), min(int(c[-1]) + 1 + pad, mask.shape[1])))


def _cell(nuc, cyto, cell_id, what: str = "cell") -> tuple[int, np.ndarray, tuple]:
    """(id, full-image mask, padded window) of an existing cell; ValueError if absent."""
    cid = _as_int(cell_id, f"{what} id")
    mask = (nuc == cid) | (cyto == cid) if cid > 0 else np.zeros(nuc.shape, bool)
    if not mask.any():
        raise ValueError(f"there is no cell with id {cid}")
    return cid, mask, _window(mask)


def _class_of(ct: np.ndarray, mask: np.ndarray) -> int:
    """Class of a cell: majority of its non-zero cell-type pixels, UNIDENTIFIED if none."""
    codes = ct[mask]
    codes = codes[codes > 0]
    if codes.size == 0:
        return UNIDENTIFIED
    vals, counts = np.unique(codes, return_counts=True)
    return int(vals[np.argmax(counts)])


def _check_code(code, dtype, classes=None) -> int:
    code = _as_int(code, "class code")
    if code == 0:
        raise ValueError("class code 0 is background; use delete_cell to remove a cell")
    hi = int(np.iinfo(dtype).max)
    if not 1 <= code <= hi:
        raise ValueError(f"class code {code} is outside 1..{hi} of the cell-type layer ({dtype})")
    if classes is not None:
        known = {int(getattr(c, "code", c)) for c in classes}
        if code not in known:
            raise ValueError(f"class code {code} is not in the class table {sorted(known)}")
    return code


def _check_id_fits(new_id: int, *arrays: np.ndarray) -> None:
    for a in arrays:
        if new_id > int(np.iinfo(a.dtype).max):
            raise ValueError(f"cell id {new_id} does not fit the {a.dtype} label layer")


def _make_edit(old: tuple, new: tuple, window: tuple, description: str) -> Edit:
    """Edit from old and new crops of the three layers inside ``window``."""
    changes, changed = {}, np.zeros(old[0].shape, bool)
    for name, o, n in zip(LAYERS, old, new):
        diff = o != n
        if diff.any():
            rr, cc = np.nonzero(diff)
            changes[name] = ((rr + window[0].start, cc + window[1].start),
                             n[diff].astype(o.dtype, copy=False))
            changed |= diff
    cells = np.unique(np.concatenate([a[changed] for a in (*old[:2], *new[:2])]))
    return Edit(changes, tuple(int(i) for i in cells if i > 0), description)


def _crops(layers, window) -> tuple[tuple, tuple]:
    """Read-only views and writable copies of the three layers inside ``window``."""
    old = tuple(a[window] for a in layers)
    return old, tuple(o.copy() for o in old)


# ---------------------------------------------------------------- public API

def apply_edit(arrays, edit: Edit) -> dict:
    """New arrays (copies) with ``edit`` applied; ``arrays`` is left untouched."""
    out = {k: a.copy() for k, a in zip(LAYERS, _layers(arrays))}
    for name, (idx, values) in edit.changes.items():
        if name not in out:
            raise ValueError(f"edit changes an unknown layer {name!r}")
        out[name][idx] = values
    return out


def cell_at(nucleus, cytoplasm, yx) -> int:
    """Id of the cell under the (row, column) point ``yx`` (floats rounded), 0 if none."""
    nucleus, cytoplasm = np.asarray(nucleus), np.asarray(cytoplasm)
    yx = np.asarray(yx, float).ravel()
    if yx.size != nucleus.ndim or not np.isfinite(yx).all():
        raise ValueError(f"need {nucleus.ndim} finite coordinates, got {yx.tolist()}")
    idx = tuple(int(v) for v in np.floor(yx + 0.5))
    if any(i < 0 or i >= s for i, s in zip(idx, nucleus.shape)):
        return 0
    return int(nucleus[idx]) or int(cytoplasm[idx])


def new_cell_id(arrays) -> int:
    """The next free cell id: max id of the nucleus and cytoplasm layers + 1."""
    nuc, cyto, _ = _layers(arrays)
    return max(int(nuc.max(initial=0)), int(cyto.max(initial=0))) + 1


def set_class(arrays, cell_id, code, classes=None) -> Edit:
    """Give cell ``cell_id`` class ``code`` (1..max of the layer, e.g. UNIDENTIFIED).

    ``classes``: optional class table (CellClass items or codes) ``code`` must be in.
    """
    nuc, cyto, ct = _layers(arrays)
    cid, _, win = _cell(nuc, cyto, cell_id)
    code = _check_code(code, ct.dtype, classes)
    old, new = _crops((nuc, cyto, ct), win)
    new[2][(old[0] == cid) | (old[1] == cid)] = code
    return _make_edit(old, new, win, f"set class of cell {cid} to {code}")


def delete_cell(arrays, cell_id) -> Edit:
    """Remove cell ``cell_id`` from all three layers."""
    nuc, cyto, ct = _layers(arrays)
    cid, _, win = _cell(nuc, cyto, cell_id)
    old, new = _crops((nuc, cyto, ct), win)
    cell = (old[0] == cid) | (old[1] == cid)
    for a in new:
        a[cell] = 0
    return _make_edit(old, new, win, f"delete cell {cid}")


def merge_cells(arrays, a, b, code=None, classes=None) -> Edit:
    """Cell ``b`` becomes part of cell ``a`` (nucleus stays nucleus, cytoplasm cytoplasm).

    The merged cell gets ``code`` if given, else the class of the larger cell
    (pixel area; ``a``'s class on a tie).  The cells need not touch.
    """
    nuc, cyto, ct = _layers(arrays)
    ida, mask_a, _ = _cell(nuc, cyto, a)
    idb, mask_b, _ = _cell(nuc, cyto, b)
    if ida == idb:
        raise ValueError(f"cannot merge cell {ida} with itself")
    if code is None:
        code = _class_of(ct, mask_a if mask_a.sum() >= mask_b.sum() else mask_b)
    else:
        code = _check_code(code, ct.dtype, classes)
    win = _window(mask_a | mask_b)
    old, new = _crops((nuc, cyto, ct), win)
    for o, n in zip(old[:2], new[:2]):
        n[o == idb] = ida
    new[2][(new[0] == ida) | (new[1] == ida)] = code
    return _make_edit(old, new, win, f"merge cell {idb} into cell {ida}")


def fill_holes(arrays, cell_id=None) -> Edit:
    """Fill the holes of one cell (``cell_id``) or of every cell (None).

    A hole is a 4-connected background region enclosed by one cell only (not
    touching the image border nor any other cell).  It becomes nucleus of that cell
    if all the pixels around it are nucleus, cytoplasm otherwise.
    """
    nuc, cyto, ct = _layers(arrays)
    if cell_id is None:
        win = (slice(0, nuc.shape[0]), slice(0, nuc.shape[1]))
        cid = None
    else:
        cid, _, win = _cell(nuc, cyto, cell_id)
    old, new = _crops((nuc, cyto, ct), win)
    ids = _ids(old[0], old[1])
    lab, n = ndi.label(ids == 0)
    if n == 0:
        return _make_edit(old, new, win, "fill holes")
    lo = np.full(n + 1, np.iinfo(np.int64).max)
    hi = np.zeros(n + 1, np.int64)
    all_nuc = np.ones(n + 1, bool)
    isnuc = old[0] > 0
    for sa, sb in (((slice(None), slice(0, -1)), (slice(None), slice(1, None))),
                   ((slice(0, -1), slice(None)), (slice(1, None), slice(None)))):
        for s_bg, s_cell in ((sa, sb), (sb, sa)):  # background pixel next to a cell pixel
            sel = (lab[s_bg] > 0) & (ids[s_cell] > 0)
            hole_lab, owner = lab[s_bg][sel], ids[s_cell][sel]
            np.minimum.at(lo, hole_lab, owner)
            np.maximum.at(hi, hole_lab, owner)
            all_nuc[hole_lab[~isnuc[s_cell][sel]]] = False
    hole = (hi > 0) & (lo == hi)
    hole[np.unique(np.concatenate([lab[0], lab[-1], lab[:, 0], lab[:, -1]]))] = False
    hole[0] = False
    if cid is not None:
        hole &= lo == cid
    if hole.any():
        fill = hole[lab]
        owner = np.where(hole, lo, 0)[lab]
        code = np.zeros(int(ids.max()) + 1, np.int64)
        code[ids] = old[2]  # one class per cell (schema)
        to_nuc = fill & all_nuc[lab]
        new[0][to_nuc] = owner[to_nuc]
        new[1][fill & ~to_nuc] = owner[fill & ~to_nuc]
        new[2][fill] = code[owner[fill]]
    what = "all cells" if cid is None else f"cell {cid}"
    return _make_edit(old, new, win, f"fill holes of {what}")


def paint_part(arrays, cell_id, mask, part, code=None, preserve_nucleus=True,
               classes=None) -> Edit:
    """Paint the boolean brush ``mask`` onto cell ``cell_id`` as ``part``.

    * ``"nucleus"``: masked background and own-cytoplasm pixels become nucleus of the
      cell (the cell grows where the brush leaves it).
    * ``"cytoplasm"``: masked background pixels become cytoplasm; the cell's own
      nucleus pixels too if ``preserve_nucleus`` is False.
    * ``"erase"``: masked pixels of the cell are removed from all three layers.

    Pixels of other cells are never overwritten, so painting cannot merge cells.  The
    cell-type layer follows the cell's class.  An id not in the layers (see
    :func:`new_cell_id`) creates a new cell of class ``code`` (default UNIDENTIFIED);
    for an existing cell ``code`` must be None or its class (use :func:`set_class`).
    """
    nuc, cyto, ct = _layers(arrays)
    if part not in PARTS:
        raise ValueError(f"part must be one of {PARTS}, got {part!r}")
    cid = _as_int(cell_id, "cell id")
    if cid <= 0:
        raise ValueError(f"cell id must be positive, got {cid}")
    mask = np.asarray(mask)
    if mask.shape != nuc.shape:
        raise ValueError(f"brush mask shape {mask.shape} differs from the labels {nuc.shape}")
    mask = mask.astype(bool, copy=False)
    cell = (nuc == cid) | (cyto == cid)
    exists = bool(cell.any())
    if exists:
        cls = _class_of(ct, cell)
        if code is not None and _check_code(code, ct.dtype, classes) != cls:
            raise ValueError(f"cell {cid} has class {cls}, not {code}; use set_class")
    elif part == "erase":
        raise ValueError(f"there is no cell with id {cid}")
    else:
        _check_id_fits(cid, nuc, cyto)
        cls = _check_code(UNIDENTIFIED if code is None else code, ct.dtype, classes)
    if not mask.any():
        return Edit(description=f"paint {part} of cell {cid}")
    win = _window(mask, pad=0)
    old, new = _crops((nuc, cyto, ct), win)
    brush = mask[win]
    own_nuc, own_cyto = old[0] == cid, old[1] == cid
    free = (old[0] == 0) & (old[1] == 0)
    if part == "erase":
        target = brush & (own_nuc | own_cyto)
        for a in new:
            a[target] = 0
    elif part == "nucleus":
        target = brush & (free | own_cyto)
        new[0][target], new[1][target], new[2][target] = cid, 0, cls
    else:
        target = brush & (free | (own_nuc if not preserve_nucleus else False))
        new[0][target], new[1][target], new[2][target] = 0, cid, cls
    return _make_edit(old, new, win, f"paint {part} of cell {cid}")


def reconcile(arrays) -> Edit:
    """Repair the schema after free-hand painting on the layers.

    A pixel set in both nucleus and cytoplasm keeps its nucleus (cytoplasm cleared);
    cell type is cleared on background; each cell gets one class, the majority of its
    non-zero cell-type pixels (lowest code on a tie, UNIDENTIFIED if it has none),
    written over the whole cell.  A valid input gives an empty edit.  Its
    ``cells_changed`` lists the cells it repairs, not every cell painted before, so
    recompute the per-cell table after free-hand painting.
    """
    nuc, cyto, ct = _layers(arrays)
    win = (slice(0, nuc.shape[0]), slice(0, nuc.shape[1]))
    old, new = _crops((nuc, cyto, ct), win)
    new[1][old[0] > 0] = 0
    ids = _ids(old[0], old[1])
    cell = ids > 0
    new[2][~cell] = 0
    if cell.any():
        n = int(ids.max()) + 1
        has = cell & (old[2] > 0)
        pair_id, pair_code = ids[has], old[2][has].astype(np.int64)
        code = np.full(n, UNIDENTIFIED, np.int64)
        if pair_id.size:
            key, counts = np.unique(pair_id * (int(pair_code.max()) + 1) + pair_code,
                                    return_counts=True)
            kid, kcode = np.divmod(key, int(pair_code.max()) + 1)
            order = np.lexsort((kcode, -counts, kid))  # by id, most pixels, lowest code
            first = order[np.r_[True, kid[order][1:] != kid[order][:-1]]]
            code[kid[first]] = kcode[first]
        new[2][cell] = code[ids[cell]]
    return _make_edit(old, new, win, "reconcile layers")


def __getattr__(name):  # split_cell_by_* live in .editing_split (imported lazily)
    if name in ("split_cell_by_line", "split_cell_by_seeds"):
        from . import editing_split

        return getattr(editing_split, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
