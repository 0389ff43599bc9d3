"""A synthetic 20000 x 20000 field (1.2 GB of pixels) written tile by tile as a compressed
BigTIFF, opened lazily and segmented block by block without ever holding it whole."""
import resource

import numpy as np
import tifffile

from napari_wbcseg.batching.large_field import open_lazy_field, segment_large_field
from test_large_field import BACKGROUND, draw_cells, fake_network, params_for  # noqa: F401

SIDE = 20_000
TILE = 512
BLOCK = 2048
# on a block corner, on block lines, inside a block, and cut by the field's right edge
CELLS = [(4096, 4096, 30, 14), (6144, 9000, 30, 14), (12000, 14336, 30, 14),
         (17000, 3000, 30, 14), (10000, 19990, 30, 14)]


def _write_field(path):
    blank = np.empty((TILE, TILE, 3), np.uint8)
    blank[:] = BACKGROUND

    def tiles():
        for y0 in range(0, SIDE, TILE):
            for x0 in range(0, SIDE, TILE):
                hit = [c for c in CELLS if y0 - 40 <= c[0] < y0 + TILE + 40
                       and x0 - 40 <= c[1] < x0 + TILE + 40]
                yield draw_cells(blank.copy(), y0, x0, hit) if hit else blank

    tifffile.imwrite(path, tiles(), shape=(SIDE, SIDE, 3), dtype=np.uint8, tile=(TILE, TILE),
                     photometric="rgb", compression="zlib", compressionargs={"level": 1},
                     bigtiff=True, metadata=None)


def test_a_20000_px_field_is_segmented_block_by_block(fake_network, tmp_path):
    src = tmp_path / "huge.tif"
    _write_field(src)
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    field = open_lazy_field(src)
    assert field is not None and field.shape == (SIDE, SIDE) and field.source == "tiff"
    res = segment_large_field(field, params_for(fake_network), tmp_path / "out", "huge",
                              block=BLOCK)
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0) / 1024
    # one read per block, none bigger than a block with its margins: never the whole field
    assert len(field.reads) == res.n_blocks == 100
    biggest = BLOCK + 2 * res.margin
    assert max(h * w for h, w in field.reads) <= biggest * biggest
    assert grown_mb < 800, grown_mb  # the field alone is 1144 MiB
    # every cell found where it was placed, once; the one on the right edge is cut
    found = sorted(zip(res.table.centroid_y.round(), res.table.centroid_x.round()))
    assert len(found) == len(CELLS)
    for (cy, cx, *_), (fy, fx) in zip(sorted(CELLS), found):
        assert abs(cy - fy) <= 1 and abs(cx - fx) <= 12
    assert res.table.touches_border.sum() == 1
    assert res.table.loc[res.table.centroid_x > 19000, "touches_border"].all()
    # outputs: tiled BigTIFFs of the whole field, readable region by region
    for kind in ("nucleus", "cytoplasm", "celltype"):
        with tifffile.TiffFile(tmp_path / "out" / f"huge_{kind}.tif") as tif:
            page = tif.pages[0]
            assert page.shape == (SIDE, SIDE) and page.is_tiled and tif.is_bigtiff
            assert "napari_wbcseg" in page.description
    store = tifffile.imread(tmp_path / "out" / "huge_nucleus.tif", aszarr=True)
    import zarr

    labels = zarr.open_array(store, mode="r")
    crop = labels[4096 - 40:4096 + 40, 4096 - 40:4096 + 40]
    assert np.count_nonzero(crop) == np.count_nonzero(
        draw_cells(np.zeros((80, 80, 3), np.uint8), 4056, 4056, [CELLS[0]])[..., 0] == 100)
    assert set(np.unique(crop)) == {0, int(crop.max())}  # one cell id on the corner cell
    assert (tmp_path / "out" / "huge_cells.csv").read_text().count("\n") == len(CELLS) + 1
    print(f"20000x20000: {res.timings}")
