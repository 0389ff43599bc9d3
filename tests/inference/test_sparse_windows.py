"""The coarse pass: find the cells at 0.7x, predict at full scale only around them."""
import numpy as np

from napari_wbcseg.inference.sparse_windows import (
    CONTEXT_PX, GROW_PX, balanced_tile, candidate_boxes, predict_two_pass, tiled_pixels,
    worth_a_coarse_pass)
from napari_wbcseg.inference.tiling import predict_tiled, run_to_end


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


def test_balanced_tile_needs_no_more_windows_and_less_overlap():
    for shape in ((1118, 1490), (700, 3000), (300, 200)):
        t = balanced_tile(shape, 768, 64)
        assert all(side % 32 == 0 and side <= max(768, 32) for side in t)
        n_plain, px_plain = tiled_pixels(shape, 768, 64)
        n, px = tiled_pixels(shape, t, 64)
        assert n <= n_plain and px <= px_plain


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
