import numpy as np
import pytest

from napari_wbcseg.core.image import ImageFormatError, as_rgb_uint8, bit_depth


def test_conversions():
    gray = np.arange(64 * 64, dtype=np.uint16).reshape(64, 64) % 4096  # 12-bit data
    rgb = as_rgb_uint8(gray)
    assert rgb.shape == (64, 64, 3) and rgb.dtype == np.uint8 and rgb.max() == 255
    assert bit_depth(gray) == 12
    rgba = np.zeros((10, 12, 4), np.uint8)
    rgba[..., 0] = 9
    assert as_rgb_uint8(rgba).shape == (10, 12, 3) and as_rgb_uint8(rgba)[0, 0, 0] == 9


@pytest.mark.parametrize("arr, msg", [
    (np.zeros((10, 10), np.float32), "floating point"),
    (np.zeros((10, 10, 2), np.uint8), "2 channels"),
    (np.zeros((10, 10, 5), np.uint8), "5 channels"),
    (np.zeros((1, 1), np.uint8), "1x1"),
    (np.zeros((2, 10, 10, 3), np.uint8), "single 2D"),
    (np.zeros((10, 10), bool), "unsupported pixel type"),
    (-np.ones((10, 10), np.int16), "negative"),
])
def test_refusals_say_why(arr, msg):
    with pytest.raises(ImageFormatError, match=msg):
        as_rgb_uint8(arr)
