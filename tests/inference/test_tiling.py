import math
import subprocess
import sys
import tracemalloc

import numpy as np
import pytest

from napari_wbcseg.inference.tiling import (
    TileProgress,
    auto_tile_size,
    halve_tile,
    predict_tiled,
    run_to_end,
    tile_grid,
)

SHAPES = [(8, 8), (37, 53), (300, 301), (1100, 900)]


def pointwise(k):
    """K output channels, each a pointwise function of the C input channels."""

    def predict(batch):
        assert batch.dtype == np.float32 and batch.ndim == 4
        c = batch.shape[1]
        out = [np.tanh(batch[:, i % c] * 0.01 + 0.1 * i) for i in range(k)]
        return np.stack(out, axis=1).astype(np.float32)

    return predict


def local_filter(c, k, radius, seed=0):
    """A fixed (2r+1)^2 convolution, C -> K channels, reflect-padded at its input border.

    Computed as a fixed sequence of shifted-slice multiply-adds, so a pixel gets
    bit-identical values wherever it sits in the array, as long as it sees the
    same neighbourhood.
    """
    size = 2 * radius + 1
    weights = np.random.default_rng(seed).standard_normal((k, c, size, size)).astype(np.float32)
    weights /= size * size * c

    def predict(batch):
        n, cc, h, w = batch.shape
        assert cc == c
        p = np.pad(batch, ((0, 0), (0, 0), (radius, radius), (radius, radius)), mode="reflect")
        out = np.zeros((n, k, h, w), np.float32)
        for kk in range(k):
            for ci in range(c):
                for dy in range(size):
                    for dx in range(size):
                        out[:, kk] += weights[kk, ci, dy, dx] * p[:, ci, dy:dy + h, dx:dx + w]
        return out

    return predict


def untiled(image, predictor):
    img = image if image.ndim == 3 else image[:, :, None]
    return predictor(img.transpose(2, 0, 1)[None].astype(np.float32))[0]


def make_image(shape, dtype, c=3, seed=1):
    rng = np.random.default_rng(seed)
    if dtype == np.uint8:
        return rng.integers(0, 256, (*shape, c), dtype=np.uint8)
    return rng.random((*shape, c), dtype=np.float32)


# ---------------------------------------------------------------- tile_grid


@pytest.mark.parametrize("shape", SHAPES + [(1536, 2048), (513, 512), (1, 700), (256, 257)])
@pytest.mark.parametrize("tile,overlap", [(256, 32), (512, 64), (100, 50), (64, 0)])
def test_tile_grid_covers_every_pixel(shape, tile, overlap):
    grid = tile_grid(shape, tile, overlap)
    count = np.zeros(shape, np.int32)
    for r, c in grid:
        assert 0 <= r.start < r.stop <= shape[0] and 0 <= c.start < c.stop <= shape[1]
        assert r.stop - r.start == min(tile, shape[0])
        assert c.stop - c.start == min(tile, shape[1])
        count[r, c] += 1
    assert count.min() >= 1
    rows = sorted({(r.start, r.stop) for r, _ in grid})
    cols = sorted({(c.start, c.stop) for _, c in grid})
    assert len(grid) == len(rows) * len(cols)
    for axis in (rows, cols):
        assert axis[0][0] == 0  # first flush with the top/left border
        assert axis[-1][1] == shape[axis is cols]  # last flush with the bottom/right border
        for (a0, a1), (b0, b1) in zip(axis, axis[1:]):
            assert a1 - b0 >= overlap  # neighbours overlap at least as asked
    if shape[0] > tile:
        assert len(rows) == math.ceil((shape[0] - overlap) / (tile - overlap))


def test_tile_grid_rectangular_tiles_and_errors():
    grid = tile_grid((100, 300), (64, 128), (16, 32))
    assert {r.stop - r.start for r, _ in grid} == {64}
    assert {c.stop - c.start for _, c in grid} == {128}
    with pytest.raises(ValueError, match="overlap"):
        tile_grid((100, 100), 64, 64)
    with pytest.raises(ValueError, match="empty"):
        tile_grid((0, 100), 64, 8)


# ---------------------------------------------------------------- predict_tiled: correctness


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
@pytest.mark.parametrize("batch_size", [1, 3])
def test_pointwise_predictor_is_exactly_untiled(shape, dtype, batch_size):
    image = make_image(shape, dtype)
    predictor = pointwise(k=5)  # K != C
    gen = predict_tiled(image, predictor, tile=256, overlap=32, batch_size=batch_size)
    out = run_to_end(gen)
    assert out.dtype == np.float32 and out.shape == (5, *shape)
    np.testing.assert_array_equal(out, untiled(image, predictor))


@pytest.mark.parametrize("blend", ["gaussian", "linear", "constant"])
@pytest.mark.parametrize("margin", [None, 0, 16])
def test_pointwise_exact_for_every_blend(blend, margin):
    image = make_image((300, 301), np.float32)
    out = run_to_end(predict_tiled(image, pointwise(2), tile=128, overlap=32, blend=blend, margin=margin))
    np.testing.assert_array_equal(out, untiled(image, pointwise(2)))


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("blend", ["gaussian", "linear", "constant"])
def test_local_filter_matches_untiled(shape, blend):
    """Receptive radius r = 2; overlap 32 -> default margin 8 >= r: seams are invisible.

    Near the image border the tile may be reflect-padded to a multiple of 32
    before the filter pads again, so only pixels >= r from the border are held
    to the untiled result; when no padding happens the whole image must match.
    """
    r = 2
    image = make_image(shape, np.float32)
    predictor = local_filter(c=3, k=2, radius=r)
    out = run_to_end(predict_tiled(image, predictor, tile=256, overlap=32, blend=blend, batch_size=3))
    ref = untiled(image, predictor)
    assert np.abs(out - ref)[:, r:-r, r:-r].max() < 1e-5
    if all(s % 32 == 0 or s >= 256 for s in shape):  # no padding anywhere
        assert np.abs(out - ref).max() < 1e-5


def test_local_filter_with_overlap_twice_the_radius():
    """overlap == 2r with margin == r: a hard seam in the middle of each overlap, still exact."""
    r = 3
    image = make_image((1100, 900), np.uint8)
    predictor = local_filter(c=3, k=4, radius=r, seed=3)
    out = run_to_end(predict_tiled(image, predictor, tile=256, overlap=2 * r, margin=r, blend="linear"))
    assert np.abs(out - untiled(image, predictor)).max() < 1e-5


def test_margin_too_small_shows_seams_only_at_tile_edges():
    """The honest counter-check: with margin 0 < r, errors appear, and only within r of an inner tile edge."""
    r = 2
    image = make_image((600, 600), np.float32)
    predictor = local_filter(c=3, k=1, radius=r)
    out = run_to_end(predict_tiled(image, predictor, tile=256, overlap=32, margin=0))
    err = np.abs(out - untiled(image, predictor))[0] > 1e-5
    assert err.any()
    near_edge = np.zeros(image.shape[:2], bool)
    for rows, cols in tile_grid(image.shape[:2], 256, 32):
        for sl in (rows.start, rows.stop):
            if 0 < sl < image.shape[0]:
                near_edge[max(sl - r, 0):sl + r, cols] = True
        for sl in (cols.start, cols.stop):
            if 0 < sl < image.shape[1]:
                near_edge[rows, max(sl - r, 0):sl + r] = True
    assert not (err & ~near_edge).any()


def test_blend_weights_never_zero_and_mix_between_tiles():
    """Each tile predicts a different constant: every pixel gets a finite value within their range."""
    image = make_image((700, 650), np.uint8)
    calls = []

    def per_tile_constant(batch):
        vals = [len(calls) * 10 + i for i in range(batch.shape[0])]
        calls.append(vals)
        return np.array(vals, np.float32)[:, None, None, None] * np.ones((1, 1, *batch.shape[2:]), np.float32)

    for blend in ("gaussian", "linear", "constant"):
        calls.clear()
        out = run_to_end(predict_tiled(image, per_tile_constant, tile=256, overlap=64, blend=blend,
                                       margin=32, batch_size=2))
        seen = [v for vals in calls for v in vals]
        assert np.isfinite(out).all()
        assert out.min() >= min(seen) and out.max() <= max(seen)
        if blend != "constant":
            assert len(np.unique(out)) > len(seen)  # some pixels really are blends


def test_grayscale_2d_input():
    image = make_image((90, 70), np.uint8, c=1)[:, :, 0]
    out = run_to_end(predict_tiled(image, pointwise(3), tile=64, overlap=16))
    np.testing.assert_array_equal(out, untiled(image, pointwise(3)))


# ---------------------------------------------------------------- padding


def test_tiny_image_is_padded_to_a_multiple_and_cropped_back():
    image = make_image((8, 8), np.uint8)
    shapes = []

    def predictor(batch):
        shapes.append(batch.shape)
        return pointwise(2)(batch)

    out = run_to_end(predict_tiled(image, predictor, tile=512, overlap=64))
    assert shapes == [(1, 3, 32, 32)]
    assert out.shape == (2, 8, 8)
    np.testing.assert_array_equal(out, untiled(image, pointwise(2)))


@pytest.mark.parametrize("shape", [(1, 40), (2, 3), (1, 1)])
@pytest.mark.parametrize("pad_mode", ["reflect", "edge", "constant"])
def test_degenerate_images_fall_back_from_reflect(shape, pad_mode):
    image = make_image(shape, np.float32)
    out = run_to_end(predict_tiled(image, pointwise(1), tile=64, overlap=8, pad_mode=pad_mode))
    np.testing.assert_array_equal(out, untiled(image, pointwise(1)))


def test_tiles_are_multiples_of_pad_multiple():
    shapes = []

    def predictor(batch):
        shapes.append(batch.shape[2:])
        return batch[:, :1]

    image = make_image((700, 310), np.float32)
    run_to_end(predict_tiled(image, predictor, tile=300, overlap=40, pad_multiple=32, batch_size=2))
    assert shapes and all(h % 32 == 0 and w % 32 == 0 for h, w in shapes)
    assert set(shapes) == {(320, 320)}  # tile 300 rounded up to 320 (real context), 310 padded to 320
    shapes.clear()
    run_to_end(predict_tiled(image, predictor, tile=300, overlap=40, pad_multiple=1))
    assert set(shapes) == {(300, 300)}


# ---------------------------------------------------------------- generator protocol


@pytest.mark.parametrize("batch_size", [1, 3, 100])
def test_progress_events_one_per_batch(batch_size):
    image = make_image((1100, 900), np.uint8)
    n_tiles = len(tile_grid(image.shape[:2], 256, 32))
    calls = []

    def predictor(batch):
        calls.append(batch.shape[0])
        return batch[:, :2]

    gen = predict_tiled(image, predictor, tile=256, overlap=32, batch_size=batch_size)
    events = []
    while True:
        try:
            events.append(next(gen))
        except StopIteration as stop:
            result = stop.value
            break
    assert len(events) == len(calls) == math.ceil(n_tiles / batch_size)
    assert all(isinstance(e, TileProgress) and e.total == n_tiles for e in events)
    assert [e.done for e in events] == list(np.cumsum(calls))
    assert events[-1].done == n_tiles
    assert max(calls) <= batch_size
    assert result.shape == (2, 1100, 900)


def test_close_between_batches_stops_early():
    image = make_image((1100, 900), np.uint8)
    calls = []

    def predictor(batch):
        calls.append(1)
        return batch[:, :1]

    gen = predict_tiled(image, predictor, tile=256, overlap=32, batch_size=2)
    first = next(gen)
    assert first == TileProgress(2, 20)
    gen.close()  # no error
    assert len(calls) == 1
    with pytest.raises(StopIteration):
        next(gen)


def test_nothing_runs_before_the_first_next():
    calls = []
    gen = predict_tiled(make_image((64, 64), np.uint8), lambda b: calls.append(1) or b, tile=32, overlap=8)
    assert calls == []
    gen.close()


# ---------------------------------------------------------------- errors


def test_bad_predictor_output_and_arguments():
    image = make_image((100, 100), np.float32)
    with pytest.raises(ValueError, match="expected"):
        run_to_end(predict_tiled(image, lambda b: b[:, :, :10], tile=64, overlap=8))
    with pytest.raises(ValueError, match="out_channels=4"):
        run_to_end(predict_tiled(image, pointwise(2), tile=64, overlap=8, out_channels=4))
    with pytest.raises(ValueError, match="gaussian, linear, constant"):
        run_to_end(predict_tiled(image, pointwise(2), blend="cosine"))
    with pytest.raises(ValueError, match="margin"):
        run_to_end(predict_tiled(image, pointwise(2), tile=64, overlap=8, margin=5))
    with pytest.raises(ValueError, match="image"):
        run_to_end(predict_tiled(np.zeros((2, 8, 8, 3)), pointwise(2)))
    with pytest.raises(ValueError, match="batch_size"):
        run_to_end(predict_tiled(image, pointwise(2), batch_size=0))


def test_predictor_errors_propagate():
    def boom(batch):
        raise RuntimeError("CUDA out of memory. Tried to allocate 2 GiB")

    with pytest.raises(RuntimeError, match="out of memory"):
        run_to_end(predict_tiled(make_image((64, 64), np.uint8), boom, tile=32, overlap=8))


# ---------------------------------------------------------------- memory


def test_memory_is_output_plus_weights_plus_one_batch():
    h, w, k, tile, batch_size = 1024, 1280, 3, 256, 2
    image = make_image((h, w), np.uint8)
    n_tiles = len(tile_grid((h, w), tile, 32))
    assert n_tiles >= 20

    def predictor(batch):
        return np.repeat(batch[:, :1], k, axis=1)

    tracemalloc.start()
    try:
        out = run_to_end(predict_tiled(image, predictor, tile=tile, overlap=32, batch_size=batch_size))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert out.dtype == np.float32 and out.shape == (k, h, w)
    stitched = (k + 1) * h * w * 4  # result + summed weights
    per_batch = batch_size * (3 + k) * tile * tile * 4  # input batch + prediction
    per_tile = (k + 3) * tile * tile * 4  # weight, fraction, difference temporaries
    assert peak < stitched + 2 * per_batch + 2 * per_tile + 1_000_000
    # a full-image float copy per tile would be n_tiles * 3 * h * w * 4 bytes
    assert peak < stitched + 3 * h * w * 4


# ---------------------------------------------------------------- tile size helpers


def test_auto_tile_size():
    assert auto_tile_size((1536, 2048), 4_000_000) == 2048  # one clipped window fits
    assert auto_tile_size((1536, 2048), 512 * 512) == 512
    assert auto_tile_size((1536, 2048), 600 * 600) == 576
    assert auto_tile_size((100, 90), 10**9) == 128  # never below the minimum
    assert auto_tile_size((300, 5000), 320 * 1000) == 992  # 300 rows -> 320-row windows
    assert auto_tile_size((4096, 4096), 10) == 128
    for t in (auto_tile_size((777, 999), m) for m in (1e5, 3e5, 1e6)):
        assert t % 32 == 0 and t >= 128


def test_halve_tile():
    assert halve_tile(512) == 256
    assert halve_tile(256) == 128
    assert halve_tile(200) == 128  # not below the minimum
    with pytest.raises(ValueError, match="smallest tile"):
        halve_tile(128)
    assert halve_tile(64, minimum=32) == 32


def test_oom_fallback_loop_with_halve_tile():
    """The intended caller pattern: restart with a smaller tile after an out-of-memory error."""
    image = make_image((600, 700), np.uint8)

    def predictor(batch):
        if batch.shape[2] * batch.shape[3] > 256 * 256:
            raise RuntimeError("CUDA out of memory")
        return pointwise(2)(batch)

    tile, tried = 1024, []
    while True:
        tried.append(tile)
        try:
            out = run_to_end(predict_tiled(image, predictor, tile=tile, overlap=32))
            break
        except RuntimeError:
            tile = halve_tile(tile)
    assert tried == [1024, 512, 256]
    np.testing.assert_array_equal(out, untiled(image, pointwise(2)))


# ---------------------------------------------------------------- light import


def test_importing_inference_does_not_import_torch():
    code = (
        "import sys, napari_wbcseg.inference, napari_wbcseg.inference.tiling, "
        "napari_wbcseg.inference.device; assert 'torch' not in sys.modules, 'torch imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_window_side_predicts_an_image_whole_when_it_fits_one_window_of_1_5_tiles():
    from napari_wbcseg.inference.tiling import window_side

    # the default field at the default scale: 703x527 padded to 704x544, one window
    assert window_side((527, 703), 512, 32) == 704
    assert len(tile_grid((527, 703), window_side((527, 703), 512, 32), 64)) == 1
    assert window_side((300, 400), 512, 32) == 512  # already one tile
    assert window_side((1536, 2048), 512, 32) == 512  # too big: tiled as asked
    assert window_side((800, 700), 512, 32) == 800  # 800x704 <= 768^2 px: whole
    assert window_side((900, 700), 512, 32) == 512  # 928x704 > 768^2 px: tiled
