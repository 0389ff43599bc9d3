"""The coarse pass: find the cells at 0.7x, predict at full scale only around them."""
import numpy as np

from napari_wbcseg.inference.sparse_windows import (
    CONTEXT_PX, GROW_PX, WINDOW_COST_PX, balanced_tile, candidate_boxes, network_cost,
    predict_two_pass, sparse_plan, worth_a_coarse_pass)
from napari_wbcseg.inference.tiling import predict_tiled, run_to_end, tile_grid


class DiscFinder:
    """A pointwise 'network': dark pixels are nucleus, the rest background.  Counts the
    pixels it is shown, as the network's cost."""

    def __init__(self):
        self.pixels = 0

    def __call__(self, batch):
        self.pixels += batch.shape[0] * batch.shape[2] * batch.shape[3]
        dark = (batch[:, 0] < 100).astype(np.float32)
        return np.stack([1 - dark, np.zeros_like(dark), dark, dark, 1 - dark], axis=1)


def _image_with_discs(h, w, centres, r=30):
    img = np.full((h, w, 3), 220, np.uint8)
    yy, xx = np.mgrid[:h, :w]
    for cy, cx in centres:
        img[(yy - cy) ** 2 + (xx - cx) ** 2 <= r * r] = 40
    return img


def test_boxes_cover_each_region_with_context_and_drop_specks():
    prob = np.zeros((100, 150), np.float32)
    prob[40:50, 40:50] = 0.9  # a cell
    prob[80:82, 140:142] = 0.9  # a 4-pixel speck: below MIN_BLOB_PX
    boxes = candidate_boxes(prob, (200, 300))
    assert len(boxes) == 1
    (r, c), (ir, ic) = boxes[0].outer, boxes[0].inner
    assert ir.start <= 80 - GROW_PX and ir.stop >= 100 + GROW_PX  # the region at 2x, grown
    assert ic.start <= 80 - GROW_PX and ic.stop >= 100 + GROW_PX
    assert r.start == max(0, ir.start - CONTEXT_PX) and r.stop == ir.stop + CONTEXT_PX
    assert c.start == max(0, ic.start - CONTEXT_PX)


def test_near_boxes_merge_and_far_ones_do_not():
    prob = np.zeros((400, 400), np.float32)
    prob[100:120, 100:120] = prob[100:120, 130:150] = 0.9  # neighbours: one window
    prob[350:370, 350:370] = 0.9  # far away: its own
    boxes = candidate_boxes(prob, (400, 400))
    assert len(boxes) == 2
    assert sorted(b.inner[1].start for b in boxes) == [100 - GROW_PX, 350 - GROW_PX]


def test_two_passes_give_the_cells_of_every_window_for_fewer_pixels():
    img = _image_with_discs(900, 1300, [(150, 200), (700, 1100), (450, 640)])
    plain_net, two_net = DiscFinder(), DiscFinder()
    plain = run_to_end(predict_tiled(img, plain_net, tile=256, overlap=64))
    assert worth_a_coarse_pass(img.shape[:2], 256, 64)
    probs, boxes = run_to_end(predict_two_pass(img, two_net, tile=256, overlap=64,
                                               batch_size=1, pad_multiple=32))
    assert probs is not None and len(boxes) == 3
    np.testing.assert_array_equal(probs[2] > 0.5, plain[2] > 0.5)
    assert two_net.pixels < 0.6 * plain_net.pixels
    inner = np.zeros(img.shape[:2], bool)
    for b in boxes:
        inner[b.inner] = True
    np.testing.assert_array_equal(probs[:, inner], plain[:, inner])  # full scale there


def test_cells_everywhere_fall_back_to_every_window():
    centres = [(y, x) for y in range(40, 900, 90) for x in range(40, 1300, 90)]
    img = _image_with_discs(900, 1300, centres, r=25)
    probs, boxes = run_to_end(predict_two_pass(img, DiscFinder(), tile=256, overlap=64,
                                               batch_size=1, pad_multiple=32))
    assert probs is None and boxes


def test_balanced_tile_needs_no_more_windows_and_costs_less():
    for shape in ((1118, 1490), (700, 3000), (300, 200)):
        t = balanced_tile(shape, 768, 64)
        assert all(side % 32 == 0 and side <= max(768, 32) for side in t)
        assert len(tile_grid(shape, t, 64)) <= len(tile_grid(shape, 768, 64))
        assert network_cost(shape, t, 64) <= network_cost(shape, 768, 64)


def test_network_cost_counts_padded_overlapping_windows():
    # 600 px at 256 px windows, overlap 64: 3 windows an axis; a 100 px axis is one, padded to 128
    assert network_cost((600, 600), 256, 64) == 9 * (256 * 256 + WINDOW_COST_PX)
    assert network_cost((100, 600), 256, 64) == 3 * (128 * 256 + WINDOW_COST_PX)


def test_the_coarse_pass_is_skipped_where_it_cannot_pay():
    assert worth_a_coarse_pass((2980, 2235), 512, 64)  # a smear at the model's scale
    assert worth_a_coarse_pass((640, 800), 256, 64)  # 12 windows; 6 at 0.7x: half the cost
    # 2 x 2 windows of 256 px, and still 2 x 2 (of 192 px) at 0.7x: 69 % of the cost
    assert not worth_a_coarse_pass((400, 400), 256, 64)


def test_boxes_run_while_they_cost_less_than_every_window():
    from napari_wbcseg.inference.sparse_windows import Box

    def box(n):  # a square box of n px at the image's corner
        return Box((slice(0, n), slice(0, n)), (slice(0, n), slice(0, n)))

    assert sparse_plan([box(256)], (1400, 1800), 256, 64)
    assert not sparse_plan([box(1400)] * 2, (1400, 1800), 256, 64)


def test_segment_finds_the_same_cells_with_and_without_the_coarse_pass():
    from napari_wbcseg.core.synthetic import synthetic_smear
    from napari_wbcseg.inference.segment import segment

    smear = synthetic_smear(shape=(640, 800), n_wbc=3, seed=5)
    kw = dict(cell_diameter=None, tile=256, classifier="none")
    on = segment(smear.image, coarse_pass=True, **kw)
    off = segment(smear.image, coarse_pass=False, **kw)
    assert on.timings["coarse_pass_boxes"] is not None
    assert "coarse_pass_boxes" not in off.timings
    cell_on, cell_off = on.nucleus + on.cytoplasm > 0, off.nucleus + off.cytoplasm > 0
    assert len(on.table) == len(off.table) >= 2
    assert (cell_on & cell_off).sum() / (cell_on | cell_off).sum() > 0.95
