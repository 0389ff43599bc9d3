"""Block-by-block segmentation of a large field gives the cells of the whole-image path.

The network is replaced by a pixel-local colour rule (``fake_network``), so the whole
image and its blocks get the very same probabilities and any difference comes from the
stitching: cells on block borders, kept once, relabelled, with the field's own border.
(The real network across block borders: benchmarks/bench_large_field.py.)
"""
from pathlib import Path

import numpy as np
import pytest
import tifffile

from napari_wbcseg.batching.large_field import LazyField, block_grid, segment_large_field
from napari_wbcseg.core.batch import run_to_end
from napari_wbcseg.inference.segment import SegmentParams, segment_steps

BACKGROUND = (236, 226, 222)
CYTOPLASM = (190, 160, 210)
NUCLEUS = (100, 50, 140)


def draw_cells(tile, y0, x0, cells):
    """Paint discs (cy, cx, r_cell, r_nucleus) in field coordinates onto ``tile`` (its
    top-left at y0, x0), in place."""
    h, w = tile.shape[:2]
    for cy, cx, rc, rn in cells:
        if cy + rc < y0 or cy - rc >= y0 + h or cx + rc < x0 or cx - rc >= x0 + w:
            continue
        yy, xx = np.ogrid[y0:y0 + h, x0:x0 + w]
        d2 = (yy - cy) ** 2 + (xx - cx) ** 2
        tile[d2 <= rc * rc] = CYTOPLASM
        tile[d2 <= rn * rn] = NUCLEUS
    return tile


def field_image(hw, cells):
    img = np.empty((*hw, 3), np.uint8)
    img[:] = BACKGROUND
    return draw_cells(img, 0, 0, cells)


@pytest.fixture
def fake_network(tiny_model, monkeypatch):
    """The tiled network replaced by a colour rule: nucleus dark, cytoplasm mid, class 1."""
    from napari_wbcseg.inference import tiling

    def predict(work, net, **kw):
        red = work[..., 0]
        nuc = red < 140
        cyto = (red < 215) & ~nuc
        k = len(net.class_codes)
        probs = np.zeros((3 + k, *red.shape), np.float32)
        probs[0], probs[1], probs[2] = ~(nuc | cyto), cyto, nuc
        probs[3] = 1.0
        yield tiling.TileProgress(1, 1)
        return probs

    monkeypatch.setattr(tiling, "predict_tiled", predict)
    return tiny_model


def params_for(model):
    # cell diameter = the model's 80 px: no resizing, so blocks and whole image agree exactly
    return SegmentParams(model=model, device="cpu", cell_diameter=80.0, classifier="none")


def lazy(img):
    import dask.array as da

    return LazyField(Path("memory.tif"), da.from_array(img, chunks=(512, 512, 3)), "memory", [])


def _cells_of(nucleus, cytoplasm):
    return np.where(nucleus > 0, nucleus, cytoplasm)


def match_iou(ref, got):
    """Best IoU of each reference cell with any cell of ``got`` (label images)."""
    from scipy import ndimage as ndi

    out = {}
    for i, slc in enumerate(ndi.find_objects(ref), 1):
        if slc is None:
            continue
        a = ref[slc] == i
        ids, n = np.unique(got[slc][a], return_counts=True)
        ids, n = ids[ids > 0], n[ids > 0]
        if not len(ids):
            out[i] = 0.0
            continue
        j = ids[np.argmax(n)]
        union = a.sum() + (got == j).sum() - n.max()
        out[i] = n.max() / union
    return out


# on the 1024 px block lines (1024, 2048), on their crossings, a touching pair across a
# line, cut by the field's border, plus a few inside the blocks
BORDER_CELLS = [(1024, 500, 30, 14), (1024, 1024, 30, 14), (2048, 2048, 32, 15),
                (700, 2048, 28, 13), (1500, 1010, 30, 14), (1500, 1066, 30, 14),
                (2048, 300, 30, 14), (5, 800, 30, 14), (2995, 1500, 30, 14),
                (1700, 2496, 30, 14), (400, 400, 30, 14), (2600, 1800, 30, 14),
                (1030, 2040, 26, 12)]


def test_tiled_cells_match_the_whole_image(fake_network, tmp_path):
    hw = (3000, 2500)
    img = field_image(hw, BORDER_CELLS)
    params = params_for(fake_network)
    whole = run_to_end(segment_steps(img, params))
    field = lazy(img)
    res = segment_large_field(field, params, tmp_path, "big", block=1024)
    nuc = tifffile.imread(tmp_path / "big_nucleus.tif")
    cyto = tifffile.imread(tmp_path / "big_cytoplasm.tif")
    ctype = tifffile.imread(tmp_path / "big_celltype.tif")
    assert nuc.shape == hw and res.n_blocks == 9 and len(field.reads) == 9
    got = _cells_of(nuc, cyto)
    ref = _cells_of(whole.nucleus, whole.cytoplasm)
    assert len(whole.table) == len(BORDER_CELLS) == len(res.table)
    ious = match_iou(ref, got)
    assert min(ious.values()) > 0.95, ious  # seen: 1.0 for all 13
    assert min(match_iou(got, ref).values()) > 0.95  # and no extra cell in the blocks
    assert sorted(np.unique(got)[1:]) == list(range(1, len(BORDER_CELLS) + 1))  # no gaps/dups
    assert list(res.table.index) == list(range(1, len(BORDER_CELLS) + 1))
    assert ((ctype > 0) == (got > 0)).all()
    # the table: field coordinates, touches_border for the field's own border only
    on_edge = res.table[res.table.touches_border]
    assert sorted(round(y) for y in on_edge.centroid_y) == [
        round(y) for y in sorted(whole.table[whole.table.touches_border].centroid_y)]
    assert len(on_edge) == 3  # rows 5 and 2995, column 2496
    cols = [c for c in whole.table.columns if c != "confidence"]
    a = whole.table[cols].sort_values(["centroid_y", "centroid_x"]).reset_index(drop=True)
    b = res.table[cols].sort_values(["centroid_y", "centroid_x"]).reset_index(drop=True)
    assert (a["cell_area_px"] == b["cell_area_px"]).all()
    assert np.allclose(a[["centroid_y", "centroid_x"]], b[["centroid_y", "centroid_x"]])
    assert (a["touches_border"] == b["touches_border"]).all()
    # the CSV as segment writes it: same header, same rows but for the cell ids
    from napari_wbcseg.batching.field_outputs import write_field_files

    write_field_files(whole, "big", tmp_path / "whole")
    ours, theirs = ((d / "big_cells.csv").read_text().splitlines() for d in (tmp_path, tmp_path / "whole"))
    assert ours[0] == theirs[0] and ours[0].startswith("cell_id,image,class_code")
    def rows(lines):
        return sorted(line.split(",", 1)[1] for line in lines[1:])
    assert rows(ours) == rows(theirs) and len(ours) == len(BORDER_CELLS) + 1


def test_a_cell_seen_by_two_blocks_is_kept_once():
    """Blocks that put the centroid of one cell on both sides of the core line."""
    from napari_wbcseg.batching.large_field_cells import BlockCell, resolve_cells

    mask = np.ones((20, 20), bool)

    def cell(block, in_core, y0=100, x0=1014):
        return BlockCell(y0, x0, y0 + 20, x0 + 20, mask, mask, 1, None, in_core, False, block)

    kept, counts = resolve_cells([cell(0, True), cell(1, True, x0=1015)])
    assert len(kept) == 1 and counts["duplicates"] == 1
    kept, counts = resolve_cells([cell(0, False), cell(1, False, x0=1015)])
    assert len(kept) == 1 and counts["rescued"] == 1  # nobody owned it: kept once
    kept, _ = resolve_cells([cell(0, True), cell(1, True, x0=1100)])
    assert len(kept) == 2  # two cells side by side stay two


def test_block_grid_cores_tile_the_field():
    grid = block_grid((2500, 3000), 1024, 100)
    cover = np.zeros((2500, 3000), int)
    for (y0, y1, x0, x1), (ry0, ry1, rx0, rx1) in grid:
        cover[y0:y1, x0:x1] += 1
        assert (ry0, ry1) == (max(0, y0 - 100), min(2500, y1 + 100))
        assert (rx0, rx1) == (max(0, x0 - 100), min(3000, x1 + 100))
    assert (cover == 1).all() and len(grid) == 9


def test_a_cell_bigger_than_the_margin_is_reported(fake_network, tmp_path):
    img = field_image((1400, 1400), [(1024, 700, 150, 60)])  # 300 px across, margin 64
    res = segment_large_field(lazy(img), params_for(fake_network), tmp_path, "f", block=1024,
                              margin=64)
    assert len(res.table) == 1 and not res.table.touches_border.any()  # cut by a block only
    assert any("larger than the block margin" in m for m in res.messages)


def test_auto_cell_size_is_estimated_once_for_every_block(fake_network, tmp_path, monkeypatch):
    from dataclasses import replace

    from napari_wbcseg.core import scale
    from napari_wbcseg.inference import segment

    estimates, seen = [], []
    monkeypatch.setattr(scale, "estimate_cell_diameter", lambda rgb: estimates.append(rgb.shape) or 80.0)
    real = segment.segment_steps
    monkeypatch.setattr(segment, "segment_steps",
                        lambda rgb, p: seen.append(p.cell_diameter) or (yield from real(rgb, p)))
    img = field_image((1500, 1500), [(300, 300, 30, 14), (1100, 1100, 30, 14)])
    events = []
    res = segment_large_field(lazy(img), replace(params_for(fake_network), cell_diameter="auto"),
                              tmp_path, "f", block=1024, on_progress=events.append)
    assert len(estimates) == 1 and seen == [80.0] * 4 and res.timings["cell_diameter_px"] == 80.0
    assert [(e.stage, e.done, e.total) for e in events] == [("block", i, 4) for i in range(1, 5)]
    assert len(res.table) == 2


def test_the_block_shrinks_to_fit_a_workers_memory(fake_network, tmp_path):
    """block=4096 at the model's scale would be 19.5 MP a block: halved to 2048 (5.6 MP)."""
    import dask.array as da

    from napari_wbcseg.batching import large_field

    field = LazyField(Path("flat.zarr"), da.full((9000, 9000, 3), 200, np.uint8,
                                                 chunks=(1024, 1024, 3)), "memory", [])
    res = segment_large_field(field, params_for(fake_network), tmp_path, "flat", block=4096)
    side = 2048 + 2 * res.margin
    assert res.timings["block_px"] == 2048 and res.n_blocks == 25 and len(res.table) == 0
    assert max(h * w for h, w in field.reads) == side * side
    assert side * side <= large_field.BLOCK_WORK_MEGAPIXELS * 1e6
