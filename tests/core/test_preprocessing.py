"""Tests for napari_wbcseg.core.preprocessing (AHE-Retinex and its pieces)."""
from __future__ import annotations

import dataclasses
import importlib.util
from pathlib import Path

import cv2
import numpy as np
import pytest

from napari_wbcseg.core import preprocessing as pp
from napari_wbcseg.core.image import ImageFormatError
from napari_wbcseg.core.preprocessing import (
    METHODS,
    AheRetinexParams,
    ahe_retinex,
    apply_preprocessing,
    clahe,
    msrcr,
)

pytest.importorskip("scipy")
pytest.importorskip("skimage")

TESTS = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("reference_msrcr", TESTS / "reference_msrcr.py")
ref = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(ref)

BCISC = TESTS.parent.parent / "shared" / "data" / "BCISC" / "original-images" / "neut"

# Accuracy of the fast pyramid surround + sampled quantiles against exact
# Gaussians + exact quantiles, in uint8 levels (measured: max 1, ~3% of values off by 1).
MAX_DIFF = 2
MAX_SHARE_OFF = 0.10  # share of values that differ at all


def smear(h=300, w=400, seed=0) -> np.ndarray:
    """Synthetic blood-smear-like RGB: pink vignetted background, purple cells,
    noise and a dark one-pixel frame like the BCISC JPEGs."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    shade = 1.0 - 0.5 * (((xx - 0.3 * w) / w) ** 2 + ((yy - 0.6 * h) / h) ** 2)
    img = np.empty((h, w, 3), np.float32)
    img[...] = np.array([215, 180, 190], np.float32) * shade[..., None]
    for _ in range(12):
        cy, cx, r = rng.uniform(0, h), rng.uniform(0, w), rng.uniform(8, 30)
        inside = (yy - cy) ** 2 + (xx - cx) ** 2 < r * r
        img[inside] = rng.uniform([90, 40, 110], [150, 90, 170])
    img = cv2.GaussianBlur(img, (0, 0), 1.5) + rng.normal(0, 4, img.shape).astype(np.float32)
    img[0], img[-1], img[:, 0], img[:, -1] = 5, 5, 5, 5
    return np.clip(img, 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def rgb():
    return smear()


def assert_close(fast, exact, max_diff=MAX_DIFF, max_share=MAX_SHARE_OFF):
    assert fast.shape == exact.shape and fast.dtype == exact.dtype == np.uint8
    d = np.abs(fast.astype(np.int16) - exact.astype(np.int16))
    share = float((d > 0).mean())
    assert d.max() <= max_diff, f"max abs diff {d.max()} > {max_diff} (share off {share:.3f})"
    assert share <= max_share, f"{share:.3f} of values differ (max {d.max()})"


# ------------------------------------------------------------------ accuracy
@pytest.mark.parametrize("shape", [(300, 400), (256, 256), (301, 397), (40, 300), (8, 8), (9, 13)])
def test_msrcr_matches_exact_reference(shape):
    img = smear(*shape, seed=shape[0])
    assert_close(msrcr(img), ref.reference_msrcr(img))


def test_ahe_retinex_matches_exact_reference(rgb):
    assert_close(ahe_retinex(rgb), ref.reference_ahe_retinex(rgb))


def test_retinex_first_matches_exact_reference():
    # CLAHE last: its mapping has slope up to about clip_limit and is built from
    # the histogram, so the rare 1-level MSRCR differences can grow to a few levels.
    img = smear(256, 256, seed=3)
    assert_close(ahe_retinex(img, order="retinex-first"),
                 ref.reference_ahe_retinex(img, order="retinex-first"), max_diff=5)


def test_non_default_parameters_match_reference():
    img = smear(200, 260, seed=5)
    kw = dict(sigmas=(5, 40), offset=60.0, low_clip=0.0, high_clip=0.95)
    assert_close(msrcr(img, **kw), ref.reference_msrcr(img, **kw))


def test_clahe_matches_float_hsv_round_trip_exactly(rgb):
    assert np.array_equal(clahe(rgb), ref.reference_clahe(rgb))
    assert np.array_equal(clahe(rgb, 0.0, (3, 5)), ref.reference_clahe(rgb, 0.0, (3, 5)))


@pytest.mark.skipif(not BCISC.is_dir(), reason="BCISC sample data not available")
@pytest.mark.parametrize("corner", [(0, 0), (600, 800)])
def test_real_crop_matches_exact_reference(corner):
    path = sorted(BCISC.glob("*.jpg"))[0]
    field = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
    crop = field[corner[0]:corner[0] + 300, corner[1]:corner[1] + 400]
    assert_close(ahe_retinex(crop), ref.reference_ahe_retinex(crop))


def test_sampled_quantiles_close_to_exact():
    x = np.random.default_rng(1).gamma(2.0, 1.0, (1024, 1536, 3)).astype(np.float32)
    q = pp._quantiles(x, 0.01, 0.99)
    exact = np.quantile(x.reshape(-1, 3), [0.01, 0.99], axis=0)
    assert np.abs(q - exact).max() < 0.005 * (exact[1] - exact[0]).min()
    q = pp._quantiles(x, 0.0, 1.0)
    assert np.array_equal(q, np.stack([x.reshape(-1, 3).min(0), x.reshape(-1, 3).max(0)]))


# -------------------------------------------------------------- behaviour
@pytest.mark.parametrize("fn", [clahe, msrcr, ahe_retinex])
def test_shape_dtype_and_input_untouched(fn, rgb):
    before = rgb.copy()
    out = fn(rgb)
    assert out.shape == rgb.shape and out.dtype == np.uint8
    assert np.array_equal(rgb, before)
    assert np.array_equal(fn(rgb), out)  # deterministic


@pytest.mark.parametrize("method", METHODS)
def test_apply_preprocessing_dispatches(method, rgb):
    params = AheRetinexParams(method=method, order="retinex-first")
    direct = {"clahe": lambda: clahe(rgb), "msrcr": lambda: msrcr(rgb),
              "ahe-retinex": lambda: ahe_retinex(rgb, order="retinex-first")}[method]()
    assert np.array_equal(apply_preprocessing(rgb, params), direct)
    if method == "ahe-retinex":
        assert np.array_equal(apply_preprocessing(rgb), ahe_retinex(rgb))


def test_orders_compose_the_pieces_and_differ(rgb):
    first = ahe_retinex(rgb)
    second = ahe_retinex(rgb, order="retinex-first")
    assert np.array_equal(first, msrcr(clahe(rgb)))
    assert np.array_equal(second, clahe(msrcr(rgb)))
    assert np.abs(first.astype(int) - second).mean() > 1.0


@pytest.mark.parametrize("fn", [clahe, msrcr, ahe_retinex])
def test_grayscale_rgba_and_uint16_accepted(fn, rgb):
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    out = fn(gray)
    assert out.shape == rgb.shape and out.dtype == np.uint8
    rgba = np.dstack([rgb, np.full(rgb.shape[:2], 255, np.uint8)])
    assert np.array_equal(fn(rgba), fn(rgb))
    twelve_bit = rgb.astype(np.uint16) * 16  # a 12-bit camera in a 16-bit file
    out16 = fn(twelve_bit)
    assert out16.shape == rgb.shape and out16.dtype == np.uint8


@pytest.mark.parametrize("fn", [clahe, msrcr, ahe_retinex, apply_preprocessing])
@pytest.mark.parametrize("bad", [
    np.zeros((32, 32, 3), np.float32),
    np.zeros((32, 32, 2), np.uint8),
    np.zeros((32, 32, 5), np.uint8),
    np.zeros((1, 1, 3), np.uint8),
    np.zeros((4, 32, 32, 3), np.uint8),
], ids=["float", "2ch", "5ch", "1x1", "stack"])
def test_bad_images_raise_one_line_error(fn, bad):
    with pytest.raises(ImageFormatError) as info:
        fn(bad)
    assert "\n" not in str(info.value) and str(info.value)


def test_clahe_changes_value_only(rgb):
    out = clahe(rgb)
    v_in = rgb.max(axis=2)
    v_expected = cv2.createCLAHE(clipLimit=2.0, tileGridSize=(8, 8)).apply(v_in)
    assert np.array_equal(out.max(axis=2), v_expected)  # V' is exactly CLAHE(V)
    assert not np.array_equal(out, rgb)
    hsv_in = cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV_FULL).astype(int)
    hsv_out = cv2.cvtColor(out, cv2.COLOR_RGB2HSV_FULL).astype(int)
    coloured = (hsv_in[..., 1] > 50) & (hsv_in[..., 2] > 60) & (hsv_out[..., 2] > 60)
    dh = np.abs(hsv_in[..., 0] - hsv_out[..., 0])[coloured]
    dh = np.minimum(dh, 256 - dh)  # hue is circular
    assert coloured.mean() > 0.2
    assert np.median(dh) <= 1 and np.percentile(dh, 99) <= 4


def test_clahe_limit_zero_is_plain_ahe(rgb):
    plain, limited = clahe(rgb, clip_limit=0), clahe(rgb, clip_limit=2.0)
    assert not np.array_equal(plain, limited)
    def spread(a):
        return np.percentile(a.max(axis=2), 95) - np.percentile(a.max(axis=2), 5)

    assert spread(plain) > spread(limited)


def test_tile_grid_is_rows_then_columns():
    img = smear(64, 256, seed=2)
    v = img.max(axis=2)
    expected = cv2.createCLAHE(2.0, (8, 2)).apply(v)  # OpenCV takes (cols, rows)
    assert np.array_equal(clahe(img, tile_grid=(2, 8)).max(axis=2), expected)


def test_black_pixels_become_grey():
    img = smear(64, 64, seed=4)
    img[10:20, 10:20] = 0
    out = clahe(img)
    block = out[10:20, 10:20]
    assert np.all(block[..., 0] == block[..., 1]) and np.all(block[..., 1] == block[..., 2])


def test_flat_image_gives_mid_grey():
    flat = np.full((64, 64, 3), 120, np.uint8)
    assert np.all(msrcr(flat) == 128)
    assert np.all(ahe_retinex(flat) == 128)


def test_stretch_falls_back_to_min_max_when_quantiles_coincide():
    x = np.zeros((100, 100, 3), np.float32)
    x[0, 0] = (-2.0, 3.0, 0.0)  # one pixel: the 1% / 99% quantiles are both 0
    x[0, 1] = (4.0, -1.0, 0.0)
    out = pp._stretch(x.copy(), 0.01, 0.99, 1e-3)
    assert out[0, 0].tolist() == [0, 255, 128] and out[0, 1].tolist() == [255, 0, 128]
    assert out[5, 5].tolist() == [85, 64, 128]


def test_gain_cancels_and_offset_matters(rgb):
    base = msrcr(rgb)
    assert np.abs(msrcr(rgb, gain=5.0).astype(int) - base).max() <= 1
    assert np.abs(msrcr(rgb, offset=5.0).astype(int) - base).mean() > 1.0


# ------------------------------------------------------------ validation
@pytest.mark.parametrize("kwargs, message", [
    (dict(sigmas=(15, -1)), "sigmas must be one or more positive"),
    (dict(sigmas=()), "sigmas must be one or more positive"),
    (dict(sigmas="abc"), "sigma"),
    (dict(sigmas=(15, float("nan"))), "must be finite"),
    (dict(sigmas=(15, 1e6)), "up to 10000 pixels"),
    (dict(gain=0), "gain .* must be > 0"),
    (dict(offset=-1), "offset .* must be > 0"),
    (dict(low_clip=0.5, high_clip=0.4), "0 <= low_clip < high_clip <= 1"),
    (dict(low_clip=-0.1), "0 <= low_clip < high_clip <= 1"),
    (dict(high_clip=1.5), "0 <= low_clip < high_clip <= 1"),
    (dict(low_clip="a"), "low_clip must be a number"),
])
def test_msrcr_parameter_validation(kwargs, message, rgb):
    for fn in (msrcr, ahe_retinex):
        with pytest.raises(ValueError, match=message):
            fn(rgb, **kwargs)


@pytest.mark.parametrize("kwargs, message", [
    (dict(clip_limit=-1), "clip_limit must be >= 0"),
    (dict(clip_limit=True), "clip_limit must be a number"),
    (dict(tile_grid=(0, 8)), "tile_grid must be two integers"),
    (dict(tile_grid=(8,)), "tile_grid must be two integers"),
    (dict(tile_grid=8), "tile_grid must be two integers"),
    (dict(tile_grid=(8, 2.5)), "tile_grid must be two integers"),
])
def test_clahe_parameter_validation(kwargs, message, rgb):
    for fn in (clahe, ahe_retinex):
        with pytest.raises(ValueError, match=message):
            fn(rgb, **kwargs)


def test_unknown_order_lists_valid_ones(rgb):
    with pytest.raises(ValueError, match="unknown order 'both'.*ahe-first, retinex-first"):
        ahe_retinex(rgb, order="both")


def test_params_dataclass():
    p = AheRetinexParams(sigmas=[10, 20], tile_grid=[4, 6])
    assert p.sigmas == (10.0, 20.0) and p.tile_grid == (4, 6)
    assert hash(p) == hash(AheRetinexParams(sigmas=(10, 20), tile_grid=(4, 6)))
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.gain = 3.0
    with pytest.raises(ValueError, match="unknown method 'gamma'.*ahe-retinex, clahe, msrcr"):
        AheRetinexParams(method="gamma")
    with pytest.raises(ValueError, match="unknown order"):
        AheRetinexParams(order="sideways")
    with pytest.raises(ValueError, match="low_clip"):
        AheRetinexParams(low_clip=1.0)
    with pytest.raises(TypeError, match="AheRetinexParams"):
        apply_preprocessing(smear(16, 16), {"method": "clahe"})
    assert dataclasses.replace(p, method="clahe").method == "clahe"
