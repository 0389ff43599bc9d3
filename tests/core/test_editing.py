"""Correction edits on the schema layers (core.editing, core.editing_split)."""
from __future__ import annotations

import numpy as np
import pytest

from napari_wbcseg.core.editing import (LAYERS, Edit, apply_edit, cell_at, delete_cell,
                                        fill_holes, merge_cells, new_cell_id, paint_part,
                                        reconcile, set_class, split_cell_by_line,
                                        split_cell_by_seeds)
from napari_wbcseg.core.synthetic import synthetic_smear
from napari_wbcseg.schema import DEFAULT_CLASSES, UNIDENTIFIED, check_labels


def _arrays(nuc, cyto, ct):
    return {"nucleus": nuc, "cytoplasm": cyto, "cell_type": ct}


@pytest.fixture
def cells():
    """Cell 1: cytoplasm box [2:12, 2:12] (100 px) with nucleus [4:8, 4:10] (24 px), class 2;
    cell 2 touching it: box [2:12, 12:18] (60 px), nucleus [5:9, 13:16] (12 px), class 4;
    cell 3: bare nucleus [20:23, 30:35] (15 px), class 1."""
    nuc = np.zeros((30, 40), np.uint16)
    cyto = np.zeros_like(nuc)
    ct = np.zeros((30, 40), np.uint8)
    cyto[2:12, 2:12], nuc[4:8, 4:10], ct[2:12, 2:12] = 1, 1, 2
    cyto[2:12, 12:18], nuc[5:9, 13:16], ct[2:12, 12:18] = 2, 2, 4
    cyto[nuc > 0] = 0
    nuc[20:23, 30:35], ct[20:23, 30:35] = 3, 1
    check_labels(nuc, cyto, ct)
    return _arrays(nuc, cyto, ct)


def _copy(arrays):
    return {k: np.array(v, copy=True) for k, v in arrays.items()}


def _check_edit(arrays, edit):
    """Apply ``edit`` after checking it changes only changed pixels; check the schema."""
    assert isinstance(edit, Edit)
    for name, (idx, values) in edit.changes.items():
        old = arrays[name]
        assert values.dtype == old.dtype and values.size > 0
        assert len(idx) == 2 and idx[0].shape == idx[1].shape == values.shape
        assert (old[idx] != values).all()
        flat = np.ravel_multi_index(idx, old.shape)
        assert np.unique(flat).size == flat.size
    out = apply_edit(arrays, edit)
    check_labels(out["nucleus"], out["cytoplasm"], out["cell_type"])
    for k in LAYERS:
        assert out[k].dtype == arrays[k].dtype
    return out


def _counts(edit):
    """Changed pixels of the nucleus, cytoplasm and cell-type layers."""
    return tuple(edit.n_pixels(k) for k in LAYERS)


def _same(a, b):
    return all(np.array_equal(a[k], b[k]) for k in LAYERS)


def _cell_px(arrays, cid):
    return int(((arrays["nucleus"] == cid) | (arrays["cytoplasm"] == cid)).sum())


# ------------------------------------------------------------------ simple edits

def test_cell_at(cells):
    nuc, cyto = cells["nucleus"], cells["cytoplasm"]
    assert cell_at(nuc, cyto, (5, 5)) == 1  # nucleus
    assert cell_at(nuc, cyto, (2, 2)) == 1  # cytoplasm
    assert cell_at(nuc, cyto, (5.4, 12.6)) == 2  # rounded to (5, 13)
    assert cell_at(nuc, cyto, (21, 31)) == 3
    assert cell_at(nuc, cyto, (0, 0)) == 0
    for outside in ((-1, 5), (30, 5), (5, 40), (-0.6, 3)):
        assert cell_at(nuc, cyto, outside) == 0
    assert cell_at(nuc, cyto, (-0.4, 2)) == 0  # rounds to row 0: background
    with pytest.raises(ValueError):
        cell_at(nuc, cyto, (1, 2, 3))
    with pytest.raises(ValueError):
        cell_at(nuc, cyto, (np.nan, 2))


def test_set_class(cells):
    before = _copy(cells)
    e = set_class(cells, 1, 3)
    assert _same(cells, before)
    assert set(e.changes) == {"cell_type"} and e.n_pixels("cell_type") == 100
    assert e.n_pixels("nucleus") == 0 and e.cells_changed == (1,)
    (rr, cc), values = e.changes["cell_type"]
    assert (values == 3).all() and rr.min() == 2 and rr.max() == 11 and cc.max() == 11
    out = _check_edit(cells, e)
    assert (out["cell_type"][2:12, 2:12] == 3).all() and (out["cell_type"][2:12, 12:18] == 4).all()
    assert set_class(cells, 1, 2).empty  # already class 2
    assert set_class(cells, 3, UNIDENTIFIED, classes=DEFAULT_CLASSES).n_pixels("cell_type") == 15
    for bad in ((9, 3), (0, 3), (1, 0), (1, 256), (1, -1), (1, True), (1, 2.0), (1.0, 2)):
        with pytest.raises(ValueError):
            set_class(cells, *bad)
    with pytest.raises(ValueError, match="class table"):
        set_class(cells, 1, 9, classes=DEFAULT_CLASSES)


def test_delete_cell(cells):
    before = _copy(cells)
    e = delete_cell(cells, 1)
    assert _same(cells, before)
    assert _counts(e) == (24, 76, 100)
    assert all((v == 0).all() for _, v in e.changes.values()) and e.cells_changed == (1,)
    out = _check_edit(cells, e)
    assert _cell_px(out, 1) == 0 and _cell_px(out, 2) == 60 and _cell_px(out, 3) == 15
    with pytest.raises(ValueError, match="no cell with id 7"):
        delete_cell(cells, 7)


def test_merge_cells(cells):
    before = _copy(cells)
    e = merge_cells(cells, 2, 1)  # cell 1 (100 px, class 2) is the larger
    assert _same(cells, before)
    assert _counts(e) == (24, 76, 60)
    assert e.cells_changed == (1, 2)
    out = _check_edit(cells, e)
    assert (out["nucleus"] == 2).sum() == 36 and (out["cytoplasm"] == 2).sum() == 124
    assert _cell_px(out, 1) == 0 and (out["cell_type"][2:12, 2:18] == 2).all()
    e = merge_cells(cells, 1, 3, code=5)  # chosen class, cells far apart
    assert e.n_pixels("cell_type") == 115 and e.n_pixels("nucleus") == 15
    out = _check_edit(cells, e)
    assert (out["nucleus"][20:23, 30:35] == 1).all() and (out["cell_type"][2:12, 2:12] == 5).all()
    assert (out["cell_type"][2:12, 12:18] == 4).all()
    e = merge_cells(cells, 3, 1)
    assert (apply_edit(cells, e)["cell_type"][20:23, 30:35] == 2).all()  # class of cell 1
    for bad in ((1, 1), (1, 9), (9, 1), (1, 2, 0)):
        with pytest.raises(ValueError):
            merge_cells(cells, *bad)


def test_fill_holes(cells):
    a = _copy(cells)
    a["cytoplasm"][3, 3] = a["cell_type"][3, 3] = 0  # cytoplasm hole, 1 px
    a["nucleus"][5:7, 6] = a["cell_type"][5:7, 6] = 0  # nuclear hole, 2 px
    a["cytoplasm"][2, 5] = a["cell_type"][2, 5] = 0  # notch open to the outside
    a["cytoplasm"][7, 11] = a["cell_type"][7, 11] = 0  # gap between cells 1 and 2
    check_labels(*(a[k] for k in LAYERS))
    before = _copy(a)
    e = fill_holes(a)
    assert _same(a, before)
    assert _counts(e) == (2, 1, 3)
    assert e.cells_changed == (1,)
    out = _check_edit(a, e)
    assert out["cytoplasm"][3, 3] == 1 and (out["nucleus"][5:7, 6] == 1).all()
    assert (out["cell_type"][[3, 5, 6], [3, 6, 6]] == 2).all()
    assert out["cytoplasm"][2, 5] == 0 and out["cytoplasm"][7, 11] == 0
    assert fill_holes(a, cell_id=1).n_pixels("cell_type") == 3
    assert fill_holes(a, cell_id=2).empty
    assert fill_holes(cells).empty
    with pytest.raises(ValueError):
        fill_holes(a, cell_id=5)


def test_fill_holes_never_swallows_another_cell():
    nuc = np.zeros((12, 12), np.uint16)
    cyto = np.zeros_like(nuc)
    cyto[1:10, 1:10] = 1
    cyto[3:8, 3:8] = 0  # a 5x5 hole ...
    nuc[5, 5] = 2  # ... holding another cell
    ct = np.where((nuc > 0) | (cyto > 0), 3, 0).astype(np.uint8)
    assert fill_holes(_arrays(nuc, cyto, ct)).empty
    cyto[4:7, 4:7], ct[4:7, 4:7] = 2, 3  # a ring cell in the hole, its own hole at (5, 5)
    nuc[5, 5], cyto[5, 5], ct[5, 5] = 0, 0, 0
    a = _arrays(nuc, cyto, ct)
    assert fill_holes(a, cell_id=1).empty  # (5, 5) lies in cell 1's window but is cell 2's
    for e in (fill_holes(a, cell_id=2), fill_holes(a)):
        assert e.n_pixels("cytoplasm") == 1 and e.cells_changed == (2,)
        assert _check_edit(a, e)["cytoplasm"][5, 5] == 2
    cyto[4:7, 4:7], ct[4:7, 4:7] = 0, 0
    e = fill_holes(_arrays(nuc, cyto, ct))
    assert e.n_pixels("cytoplasm") == 25 and e.n_pixels("nucleus") == 0


def test_paint_nucleus(cells):
    before = _copy(cells)
    brush = np.zeros((30, 40), bool)
    brush[0:4, 2:14] = True  # 20 px of cell 1 cytoplasm, 24 background, 4 px of cell 2
    e = paint_part(cells, 1, brush, "nucleus")
    assert _same(cells, before)
    assert _counts(e) == (44, 20, 24)
    assert e.cells_changed == (1,)
    out = _check_edit(cells, e)
    assert (out["nucleus"] == 1).sum() == 68 and (out["cytoplasm"][2:4, 12:14] == 2).all()
    assert (out["cell_type"][0:2, 2:14] == 2).all()


def test_paint_cytoplasm_and_erase(cells):
    brush = np.zeros((30, 40), bool)
    brush[4:8, 0:6] = True  # 8 background, 8 own cytoplasm, 8 own nucleus
    e = paint_part(cells, 1, brush, "cytoplasm")
    assert _counts(e) == (0, 8, 8)
    _check_edit(cells, e)
    e = paint_part(cells, 1, brush, "cytoplasm", preserve_nucleus=False)
    assert _counts(e) == (8, 16, 8)
    assert (_check_edit(cells, e)["nucleus"] == 1).sum() == 16
    brush[:] = False
    brush[:, 10:13] = True  # cell 1 columns 10-11 (20 px), cell 2 column 12 spared
    e = paint_part(cells, 1, brush, "erase")
    assert _counts(e) == (0, 20, 20)
    out = _check_edit(cells, e)
    assert _cell_px(out, 1) == 80 and _cell_px(out, 2) == 60
    assert paint_part(cells, 1, np.zeros((30, 40), bool), "nucleus").empty
    brush[:] = False
    brush[20:23, 30:35] = True  # only cell 3 under the brush
    assert paint_part(cells, 1, brush, "erase").empty
    assert paint_part(cells, 1, brush, "nucleus").empty


def test_paint_new_cell(cells):
    assert new_cell_id(cells) == 4
    brush = np.zeros((30, 40), bool)
    brush[10:15, 2:5] = True  # 6 px on cell 1 (rows 10-11), 9 px free
    e = paint_part(cells, 4, brush, "nucleus")
    assert e.n_pixels("nucleus") == 9 and e.cells_changed == (4,)
    out = _check_edit(cells, e)
    assert (out["cell_type"][12:15, 2:5] == UNIDENTIFIED).all() and _cell_px(out, 1) == 100
    out = _check_edit(cells, paint_part(cells, 4, brush, "cytoplasm", code=5))
    assert (out["cytoplasm"][12:15, 2:5] == 4).all() and (out["cell_type"][12:15, 2:5] == 5).all()


def test_paint_errors(cells):
    brush = np.ones((30, 40), bool)
    with pytest.raises(ValueError, match="part"):
        paint_part(cells, 1, brush, "membrane")
    with pytest.raises(ValueError, match="shape"):
        paint_part(cells, 1, brush[:-1], "nucleus")
    with pytest.raises(ValueError, match="no cell"):
        paint_part(cells, 9, brush, "erase")
    with pytest.raises(ValueError, match="set_class"):
        paint_part(cells, 1, brush, "nucleus", code=3)
    with pytest.raises(ValueError):
        paint_part(cells, 0, brush, "nucleus")
    with pytest.raises(ValueError, match="does not fit"):
        paint_part(cells, 70000, brush, "nucleus")
    with pytest.raises(ValueError):
        paint_part(cells, 9, brush, "nucleus", code=0)
    paint_part(cells, 1, brush, "nucleus", code=2)  # its own class is fine


def test_reconcile(cells):
    assert reconcile(cells).empty
    a = _copy(cells)
    a["nucleus"][2, 2] = 1  # nucleus painted over own cytoplasm
    a["nucleus"][2, 12] = 1  # ... and over cell 2's cytoplasm: that pixel joins cell 1
    a["cell_type"][0, 0] = 3  # class on background
    a["cytoplasm"][25:27, 10:14] = 5  # new cytoplasm without class
    a["cell_type"][20, 30] = 2  # one stray class pixel on cell 3 (class 1)
    a["cytoplasm"][15:17, 2:6] = 6  # new cell, half class 3 half class 2: tie -> 2
    a["cell_type"][15:17, 2:4], a["cell_type"][15:17, 4:6] = 3, 2
    before = _copy(a)
    e = reconcile(a)
    assert _same(a, before)
    assert _counts(e) == (0, 2, 15)
    assert e.cells_changed == (1, 2, 3, 5, 6)
    out = _check_edit(a, e)
    assert out["cytoplasm"][2, 2] == 0 and out["nucleus"][2, 12] == 1
    assert out["cell_type"][2, 12] == 2 and out["cell_type"][0, 0] == 0
    assert (out["cell_type"][25:27, 10:14] == UNIDENTIFIED).all()
    assert out["cell_type"][20, 30] == 1 and (out["cell_type"][15:17, 2:6] == 2).all()
    assert reconcile(out).empty


def test_bad_arrays(cells):
    with pytest.raises(ValueError, match="lacks"):
        set_class({"nucleus": cells["nucleus"]}, 1, 2)
    with pytest.raises(ValueError, match="integers"):
        delete_cell({**cells, "cell_type": cells["cell_type"].astype(float)}, 1)
    with pytest.raises(ValueError, match="shapes"):
        delete_cell({**cells, "cell_type": cells["cell_type"][:-1]}, 1)
    with pytest.raises(TypeError):
        delete_cell([cells[k] for k in LAYERS], 1)


# ------------------------------------------------------------------ splitting

@pytest.fixture
def bar():
    """Cell 1: cytoplasm [2:12, 2:22] (200 px) with nuclei [5:9, 4:8] and [5:9, 15:19],
    class 3, and a detached 2x2 cytoplasm fragment at [14:16, 2:4]; cell 7 elsewhere."""
    nuc = np.zeros((20, 30), np.uint16)
    cyto = np.zeros_like(nuc)
    ct = np.zeros((20, 30), np.uint8)
    cyto[2:12, 2:22] = 1
    nuc[5:9, 4:8] = nuc[5:9, 15:19] = 1
    cyto[nuc > 0] = 0
    cyto[14:16, 2:4] = 1
    nuc[17:19, 25:28] = 7
    ct[(nuc > 0) | (cyto > 0)] = 3
    ct[nuc == 7] = 1
    return _arrays(nuc, cyto, ct)


def test_split_by_line(bar):
    before = _copy(bar)
    e = split_cell_by_line(bar, 1, [(0, 12.2), (14, 11.8)])  # cuts column 12
    assert _same(bar, before)
    assert e.cells_changed == (1, 8)  # max id 7 + 1
    out = _check_edit(bar, e)
    ids = np.where(out["nucleus"] > 0, out["nucleus"], out["cytoplasm"])
    assert (ids[2:12, 2:12] == 1).all() and (ids[2:12, 13:22] == 8).all()
    assert (ids[14:16, 2:4] == 1).all()  # the fragment goes to the nearest part
    assert set(np.unique(ids[2:12, 12])) <= {1, 8}
    assert (out["nucleus"] == 1).sum() == 16 and (out["nucleus"] == 8).sum() == 16
    assert ((out["nucleus"] > 0) == (bar["nucleus"] > 0)).all()  # nucleus stays nucleus
    assert (out["cell_type"][ids == 8] == 3).all()
    assert e.n_pixels("cell_type") == 0 and e.n_pixels("nucleus") == 16
    assert e.n_pixels("cytoplasm") == int((ids[2:12, 12:22] == 8).sum()) - 16


def test_split_by_line_polyline_and_width(bar):
    e = split_cell_by_line(bar, 1, [(0, 9), (6, 11), (13, 9)], width=3)
    out = _check_edit(bar, e)
    ids = np.where(out["nucleus"] > 0, out["nucleus"], out["cytoplasm"])
    assert (ids[2:12, 2:7] == 8).all() and (ids[2:12, 13:22] == 1).all()  # largest keeps 1
    assert (ids[14:16, 2:4] == 8).all()
    assert _cell_px(out, 1) + _cell_px(out, 8) == 204


def test_split_by_line_three_parts(bar):
    e = split_cell_by_line(bar, 1, [(0, 8), (14, 8), (14, 15), (0, 15)])
    out = _check_edit(bar, e)
    assert e.cells_changed == (1, 8, 9)
    assert {_cell_px(out, i) for i in (1, 8, 9)} == {204 - _cell_px(out, 8) - _cell_px(out, 9),
                                                     _cell_px(out, 8), _cell_px(out, 9)}
    assert min(_cell_px(out, i) for i in (1, 8, 9)) >= 50


def test_split_by_line_errors(bar):
    with pytest.raises(ValueError, match="does not cut cell 1"):
        split_cell_by_line(bar, 1, [(0, 12), (6, 12)])  # stops inside the cell
    with pytest.raises(ValueError, match="does not cut"):
        split_cell_by_line(bar, 1, [(0, 25), (19, 25)])  # misses the cell
    with pytest.raises(ValueError, match="does not cut"):
        split_cell_by_line(bar, 1, [(1, 4), (5, 0)])  # clips a corner smaller than 16 px
    e = split_cell_by_line(bar, 1, [(1, 4), (5, 0)], min_part_px=1)  # ... unless allowed
    assert _cell_px(apply_edit(bar, e), 8) < 16
    for pts in ([(0, 12)], [(0, 12, 1), (3, 4, 1)], [(0, np.nan), (14, 12)], "ab"):
        with pytest.raises(ValueError):
            split_cell_by_line(bar, 1, pts)
    for width in (0, 1.5, True):
        with pytest.raises(ValueError, match="width"):
            split_cell_by_line(bar, 1, [(0, 12), (14, 12)], width=width)
    with pytest.raises(ValueError, match="no cell"):
        split_cell_by_line(bar, 2, [(0, 12), (14, 12)])
    small = {**bar, "nucleus": bar["nucleus"].astype(np.uint8)}
    small["nucleus"][17, 25] = 255
    small["cell_type"][17, 25] = 1
    with pytest.raises(ValueError, match="does not fit"):
        split_cell_by_line(small, 1, [(0, 12), (14, 12)])


def test_split_by_line_leaves_whole_pieces_whole(bar):
    a = _copy(bar)
    a["cytoplasm"][14:19, 2:7] = 1  # a detached 25 px piece of cell 1
    a["cell_type"][14:19, 2:7] = 3
    with pytest.raises(ValueError, match="does not cut"):
        split_cell_by_line(a, 1, [(13, 0), (13, 10)])  # runs between body and piece
    e = split_cell_by_line(a, 1, [(0, 12), (14, 12)])
    assert e.cells_changed == (1, 8)  # two parts, the piece joins the nearer one
    out = _check_edit(a, e)
    ids = np.where(out["nucleus"] > 0, out["nucleus"], out["cytoplasm"])
    assert (ids[14:19, 2:7] == 1).all() and (ids[2:12, 2:12] == 1).all()
    assert (ids[2:12, 13:22] == 8).all()


def _dumbbell():
    """Two discs of radius 8 (centres (15, 12) and (15, 34)) joined by a 5 px neck."""
    yy, xx = np.mgrid[:30, :48]
    cell = ((yy - 15) ** 2 + (xx - 12) ** 2 <= 64) | ((yy - 15) ** 2 + (xx - 34) ** 2 <= 64)
    cell[13:18, 12:34] = True
    nucleus = ((yy - 15) ** 2 + (xx - 12) ** 2 <= 9) | ((yy - 15) ** 2 + (xx - 34) ** 2 <= 9)
    nuc = np.where(nucleus, 1, 0).astype(np.uint32)
    cyto = np.where(cell & ~nucleus, 1, 0).astype(np.uint32)
    ct = np.where(cell, 5, 0).astype(np.uint8)
    return _arrays(nuc, cyto, ct), cell


def test_split_by_seeds():
    a, cell = _dumbbell()
    before = _copy(a)
    e = split_cell_by_seeds(a, 1, [(14, 30), (15.3, 12.4)])  # one seed in each disc
    assert _same(a, before) and e.cells_changed == (1, 2)
    out = _check_edit(a, e)
    ids = np.where(out["nucleus"] > 0, out["nucleus"], out["cytoplasm"])
    left, right = ids[:, :21][cell[:, :21]], ids[:, 26:][cell[:, 26:]]
    assert np.unique(left).size == 1 and np.unique(right).size == 1 and left[0] != right[0]
    assert (out["nucleus"] == 1).sum() == (out["nucleus"] == 2).sum() == 29
    assert _cell_px(out, 1) + _cell_px(out, 2) == int(cell.sum())
    assert (out["cell_type"][cell] == 5).all()


def test_split_by_seeds_compactness():
    yy, xx = np.mgrid[:30, :30]
    disc = (yy - 15) ** 2 + (xx - 15) ** 2 <= 100
    a = _arrays(np.zeros((30, 30), np.uint16), disc.astype(np.uint16), (disc * 2).astype(np.uint8))
    out = _check_edit(a, split_cell_by_seeds(a, 1, [(15, 8), (15, 22)], compactness=1.0))
    ids = out["cytoplasm"]
    assert (ids[:, :14][disc[:, :14]] == ids[15, 8]).all()
    assert (ids[:, 17:][disc[:, 17:]] == ids[15, 22]).all()
    assert abs(_cell_px(out, 1) - _cell_px(out, 2)) <= 21  # about half each


def test_split_by_seeds_errors(bar):
    a, _ = _dumbbell()
    with pytest.raises(ValueError, match="2 or more"):
        split_cell_by_seeds(a, 1, [(15, 12)])
    with pytest.raises(ValueError, match="not on cell 1"):
        split_cell_by_seeds(a, 1, [(15, 12), (0, 0)])
    with pytest.raises(ValueError, match="not on cell 1"):
        split_cell_by_seeds(a, 1, [(15, 12), (-3, 60)])
    with pytest.raises(ValueError, match="same pixel"):
        split_cell_by_seeds(a, 1, [(15, 12), (15.2, 11.9), (15, 34)])
    with pytest.raises(ValueError, match="not on cell 1"):
        split_cell_by_seeds(bar, 1, [(5, 5), (17, 25)])  # second seed on cell 7
    with pytest.raises(ValueError, match="compactness"):
        split_cell_by_seeds(a, 1, [(15, 12), (15, 34)], compactness=-1)


# ------------------------------------------------------------------ napari, random edits

def test_edit_applies_with_napari_undo(cells):
    napari_layers = pytest.importorskip("napari.layers")
    brush = np.zeros((30, 40), bool)
    brush[0:4, 2:14] = True
    e = paint_part(cells, 1, brush, "nucleus")
    layers = {k: napari_layers.Labels(np.array(cells[k], copy=True)) for k in LAYERS}
    for name, (idx, values) in e.changes.items():
        layers[name].data_setitem(idx, values)
    expected = apply_edit(cells, e)
    assert all(np.array_equal(layers[k].data, expected[k]) for k in LAYERS)
    for name in e.changes:
        layers[name].undo()
    assert all(np.array_equal(layers[k].data, cells[k]) for k in LAYERS)


def _random_edit(arrays, rng):
    nuc, cyto = arrays["nucleus"], arrays["cytoplasm"]
    ids = np.unique(np.where(nuc > 0, nuc, cyto))
    ids = ids[ids > 0]
    op = rng.choice(["class", "delete", "merge", "line", "seeds", "holes", "paint",
                     "scribble"])
    if ids.size == 0 or (op == "merge" and ids.size < 2):
        op = "paint"
    cid = int(rng.choice(ids)) if ids.size else 1
    rr, cc = np.nonzero((nuc == cid) | (cyto == cid))
    if op == "class":
        return set_class(arrays, cid, int(rng.choice([1, 2, 3, 4, 5, UNIDENTIFIED])))
    if op == "seeds" and rr.size < 2:
        op = "delete"
    if op == "delete":
        return delete_cell(arrays, cid)
    if op == "merge":
        a, b = rng.choice(ids, 2, replace=False)
        return merge_cells(arrays, int(a), int(b))
    if op == "line":
        cy, cx, ang = rr.mean(), cc.mean(), rng.uniform(0, np.pi)
        d = max(np.ptp(rr), np.ptp(cc)) + 5
        dy, dx = d * np.sin(ang), d * np.cos(ang)
        line = [(cy - dy, cx - dx), (cy + dy, cx + dx)]
        return split_cell_by_line(arrays, cid, line, width=int(rng.integers(1, 4)))
    if op == "seeds":
        k = rng.choice(rr.size, size=min(int(rng.integers(2, 4)), rr.size), replace=False)
        return split_cell_by_seeds(arrays, cid, np.c_[rr[k], cc[k]])
    if op == "holes":
        return fill_holes(arrays, None if rng.random() < 0.5 else cid)
    yy, xx = np.mgrid[:nuc.shape[0], :nuc.shape[1]]
    centre = (rr[0], cc[0]) if ids.size else (50, 50)
    centre = np.add(centre, rng.integers(-15, 16, 2))
    brush = (yy - centre[0]) ** 2 + (xx - centre[1]) ** 2 <= rng.integers(2, 12) ** 2
    if op == "paint":
        cid = cid if rng.random() < 0.8 else new_cell_id(arrays)
        return paint_part(arrays, cid, brush, str(rng.choice(["nucleus", "cytoplasm", "erase"]))
                          if cid in ids else "nucleus")
    # scribble: paint like napari's own brush on one layer, then reconcile
    scribbled = _copy(arrays)
    layer = str(rng.choice(LAYERS))
    scribbled[layer][brush] = int(rng.choice([0, cid, new_cell_id(arrays), 3]))
    out = _check_edit(scribbled, reconcile(scribbled))
    assert reconcile(out).empty
    return Edit()


def test_random_edits_keep_the_schema():
    s = synthetic_smear((200, 260), n_wbc=4, seed=1, touching=True)
    arrays = _arrays(s.nucleus, s.cytoplasm, s.cell_type)
    rng = np.random.default_rng(7)
    done = 0
    for _ in range(150):
        before = _copy(arrays)
        try:
            e = _random_edit(arrays, rng)
        except ValueError as err:  # a random line can miss a thin cell
            assert "does not cut" in str(err)
            continue
        assert _same(arrays, before)
        new = _check_edit(arrays, e)
        old_ids = np.where(before["nucleus"] > 0, before["nucleus"], before["cytoplasm"])
        new_ids = np.where(new["nucleus"] > 0, new["nucleus"], new["cytoplasm"])
        for i in set(np.unique(old_ids)) | set(np.unique(new_ids)) - {0}:
            if i and i not in e.cells_changed:  # untouched cells keep pixels and class
                assert np.array_equal(old_ids == i, new_ids == i)
                assert np.array_equal(before["cell_type"][old_ids == i],
                                      new["cell_type"][new_ids == i])
        arrays, done = new, done + (not e.empty)
    assert done >= 70
