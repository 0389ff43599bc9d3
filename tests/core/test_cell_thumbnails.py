"""Cell thumbnails: centred, fixed scale, padded at image borders, class-colour outline."""
import numpy as np
import pytest

from napari_wbcseg.core.cell_thumbnails import (
    PAD_RGB, ThumbnailError, cell_boxes, cell_thumbnail, hex_to_rgb, thumbnail_scale)


def _field():
    image = np.full((120, 160, 3), 200, np.uint8)
    nucleus = np.zeros((120, 160), np.uint16)
    cytoplasm = np.zeros((120, 160), np.uint16)
    yy, xx = np.mgrid[:120, :160]
    r = np.hypot(yy - 60, xx - 80)
    cytoplasm[r < 20] = 3
    nucleus[r < 8] = 3
    image[r < 20] = (180, 120, 200)
    image[r < 8] = (80, 30, 120)
    # a cell cut by the top-left corner
    corner = np.hypot(yy, xx) < 10
    cytoplasm[corner] = 7
    image[corner] = (150, 100, 180)
    return image, nucleus, cytoplasm


def test_cell_boxes_one_pass_for_every_cell():
    _, nucleus, cytoplasm = _field()
    boxes = cell_boxes(nucleus, cytoplasm)
    assert boxes == {3: (41, 61, 80, 100), 7: (0, 0, 10, 10)}


def test_cell_boxes_sparse_huge_ids():
    nucleus = np.zeros((10, 10), np.uint32)
    nucleus[2:4, 2:4] = 4_000_000_000
    nucleus[6:9, 5:7] = 5
    assert cell_boxes(nucleus, np.zeros_like(nucleus)) == {
        5: (6, 5, 9, 7), 4_000_000_000: (2, 2, 4, 4)}


def test_cell_is_centred_and_outline_in_class_colour():
    image, nucleus, cytoplasm = _field()
    thumb = cell_thumbnail(image, nucleus, cytoplasm, 3, size=64, scale=1.0,
                           outline="#00c800")
    assert thumb.shape == (64, 64, 3) and thumb.dtype == np.uint8
    assert tuple(thumb[32, 32]) == (80, 30, 120)  # nucleus at the centre
    green = np.all(thumb == (0, 200, 0), axis=-1)
    # the outline lies on the cell boundary (radius ~20 around the centre), nowhere else
    ys, xs = np.nonzero(green)
    radius = np.hypot(ys - 31.5, xs - 31.5)
    assert green.sum() > 100 and radius.min() > 16 and radius.max() < 21
    assert tuple(thumb[32, 32 + 19]) == (0, 200, 0)


def test_no_outline_leaves_the_image():
    image, nucleus, cytoplasm = _field()
    thumb = cell_thumbnail(image, nucleus, cytoplasm, 3, size=64, outline=None)
    assert not np.all(thumb == (0, 200, 0), axis=-1).any()


def test_fixed_scale_doubles_the_cell():
    image, nucleus, cytoplasm = _field()
    boxes = cell_boxes(nucleus, cytoplasm)
    one = cell_thumbnail(image, nucleus, cytoplasm, 3, size=96, scale=1.0, bbox=boxes[3])
    two = cell_thumbnail(image, nucleus, cytoplasm, 3, size=96, scale=2.0, bbox=boxes[3])

    def nucleus_width(t):
        return int(np.all(t[48] == (80, 30, 120), axis=-1).sum())

    assert nucleus_width(one) in (15, 16, 17)
    assert abs(nucleus_width(two) - 2 * nucleus_width(one)) <= 2


def test_border_cell_is_padded_and_centred():
    image, nucleus, cytoplasm = _field()
    thumb = cell_thumbnail(image, nucleus, cytoplasm, 7, size=40, scale=1.0)
    assert tuple(thumb[2, 2]) == PAD_RGB  # up-left of the image: padding
    assert tuple(thumb[22, 22]) == (150, 100, 180)  # the cell, near the centre
    assert tuple(thumb[38, 38]) == (200, 200, 200)  # the field


def test_grayscale_and_rgba_images():
    image, nucleus, cytoplasm = _field()
    gray = cell_thumbnail(image[..., 0], nucleus, cytoplasm, 3, size=32)
    assert gray.shape == (32, 32, 3) and tuple(gray[16, 16]) == (80, 80, 80)
    rgba = np.concatenate([image, np.full(image.shape[:2] + (1,), 255, np.uint8)], -1)
    assert tuple(cell_thumbnail(rgba, nucleus, cytoplasm, 3, size=32)[16, 16]) == (80, 30, 120)


@pytest.mark.parametrize("kwargs, match", [
    ({"cell_id": 99}, "not in the labels"),
    ({"scale": 0}, "scale"),
    ({"scale": float("nan")}, "scale"),
    ({"size": 4}, "size"),
    ({"outline": "#12"}, "colour"),
])
def test_bad_arguments_one_line(kwargs, match):
    image, nucleus, cytoplasm = _field()
    args = {"cell_id": 3, **kwargs}
    cell_id = args.pop("cell_id")
    with pytest.raises(ThumbnailError, match=match):
        cell_thumbnail(image, nucleus, cytoplasm, cell_id, **args)


def test_bad_image_and_labels():
    image, nucleus, cytoplasm = _field()
    with pytest.raises(ThumbnailError, match="uint8"):
        cell_thumbnail(image.astype(np.float32), nucleus, cytoplasm, 3)
    with pytest.raises(ThumbnailError, match="disagree"):
        cell_thumbnail(image[:50], nucleus, cytoplasm, 3)


def test_scale_helpers():
    assert hex_to_rgb("#9b30ff") == (155, 48, 255)
    assert thumbnail_scale(100, cell_diameter_px=50) == pytest.approx(1.2)
    assert thumbnail_scale(100, pixel_size_um=0.24, cell_diameter_um=12) == pytest.approx(1.2)
    assert thumbnail_scale(100) == 1.0
