"""Reader round trips on synthetic smears written as BMP / PNG / JPEG (and on real files
from ../shared/data where present), and bad input."""
import numpy as np
import pytest
import tifffile

from napari_wbcseg.core.image import ImageFormatError
from napari_wbcseg.io import imread
from napari_wbcseg.io.imread import read_image
from napari_wbcseg.io.reader import get_reader, read_smear


def _zheng(shared, n="004", ds="Dataset 2"):
    return shared / "segmentation_WBC" / ds / f"{n}"


@pytest.fixture
def smear_files(tmp_path):
    """A 300x300 synthetic smear as ``004.bmp`` + its ``004.png`` mask (0 / 128 / 255, the
    segmentation_WBC encoding) + ``field.jpg``, in ``tmp_path / "in"``; and its RGB array."""
    import cv2

    from napari_wbcseg.core.synthetic import synthetic_smear

    folder = tmp_path / "in"
    folder.mkdir()
    sm = synthetic_smear(shape=(300, 300), n_wbc=1, seed=4)
    mask = np.where(sm.nucleus > 0, 255, np.where(sm.cytoplasm > 0, 128, 0)).astype(np.uint8)
    bgr = np.ascontiguousarray(sm.image[..., ::-1])
    cv2.imwrite(str(folder / "004.bmp"), bgr)
    cv2.imwrite(str(folder / "004.png"), mask)
    cv2.imwrite(str(folder / "field.jpg"), bgr, [cv2.IMWRITE_JPEG_QUALITY, 90])
    return {"bmp": folder / "004.bmp", "png": folder / "004.png", "jpg": folder / "field.jpg",
            "rgb": sm.image, "mask": mask}


def test_bmp_png_and_jpeg_come_back_as_written(smear_files):
    img = read_image(smear_files["bmp"])
    assert img.dtype == np.uint8 and np.array_equal(img, smear_files["rgb"])  # BGR -> RGB
    mask = read_image(smear_files["png"])
    assert mask.shape == (300, 300) and np.array_equal(mask, smear_files["mask"])
    assert set(np.unique(mask).tolist()) == {0, 128, 255}
    jpg = read_image(smear_files["jpg"])
    assert jpg.shape == (300, 300, 3)
    assert np.abs(jpg.astype(int) - smear_files["rgb"]).mean() < 4  # lossy, same channels


def test_reads_real_bmp_and_png_mask(shared_data):
    img = read_image(_zheng(shared_data).with_suffix(".bmp"))
    mask = read_image(_zheng(shared_data).with_suffix(".png"))
    assert img.shape == (300, 300, 3) and img.dtype == np.uint8
    assert mask.shape == (300, 300) and set(np.unique(mask)) >= {0, 128, 255}
    # BMP is stored BGR on disk; the reader must give RGB: smear background is not blue-dominant
    # in red, i.e. the CellaVision purple background has R > G
    bg = img[mask == 0].mean(axis=0)
    assert bg[0] > bg[1]


def test_reads_real_jpeg_field(shared_data):
    field = read_image(shared_data / "BCISC" / "original-images" / "neut" / "1-1.jpg")
    assert field.shape == (1536, 2048, 3)


def test_reader_contribution_returns_layer_data(smear_files):
    path = str(smear_files["bmp"])
    reader = get_reader(path)
    assert reader is not None
    [(data, kwargs, kind)] = reader(path)
    assert kind == "image" and kwargs["rgb"] and kwargs["name"] == "004"
    assert np.array_equal(data, smear_files["rgb"])


@pytest.mark.parametrize("name", ["notes.txt", "table.csv", "model.safetensors", "noext"])
def test_get_reader_declines_other_files(tmp_path, name):
    p = tmp_path / name
    p.write_text("hello")
    assert get_reader(str(p)) is None
    assert get_reader(str(tmp_path)) is None
    assert get_reader([str(p), str(p)]) is None


def test_tiff_16bit_multipage_rgb_planar(tmp_path, smear_files):
    rgb = smear_files["rgb"]
    sixteen = rgb.astype(np.uint16) * 16  # a 12-bit camera in a 16-bit file
    p16 = tmp_path / "cam12.tif"
    tifffile.imwrite(p16, sixteen, photometric="rgb")
    out = read_image(p16)
    assert out.dtype == np.uint16 and np.array_equal(out, sixteen)
    [(data, kwargs, kind)] = read_smear(str(p16))
    assert kind == "image" and kwargs["rgb"]

    planar = tmp_path / "planar.tif"
    tifffile.imwrite(planar, np.moveaxis(rgb, -1, 0), photometric="rgb", planarconfig="separate")
    assert np.array_equal(read_image(planar), rgb)

    pages = tmp_path / "pages.tif"
    tifffile.imwrite(pages, np.stack([rgb, rgb[::-1]]), photometric="rgb")
    stack = read_image(pages)
    assert stack.shape == (2, 300, 300, 3) and np.array_equal(stack[1], rgb[::-1])

    gray = tmp_path / "gray16.tif"
    tifffile.imwrite(gray, sixteen[..., 1])
    [(data, kwargs, kind)] = read_smear(str(gray))
    assert not kwargs["rgb"] and kwargs["contrast_limits"] == [0, 4095]


def test_large_uncompressed_tiff_is_memory_mapped(tmp_path, monkeypatch, smear_files):
    rgb = smear_files["rgb"]
    p = tmp_path / "big.tif"
    tifffile.imwrite(p, rgb, photometric="rgb")
    monkeypatch.setattr(imread, "_MEMMAP_ABOVE", 0)
    out = read_image(p)
    assert isinstance(out, np.memmap) and np.array_equal(out, rgb)


def test_png_grayscale_and_rgba(tmp_path, smear_files):
    import cv2

    rgb = smear_files["rgb"]
    rgba = np.dstack([rgb, np.full(rgb.shape[:2], 200, np.uint8)])
    cv2.imwrite(str(tmp_path / "rgba.png"), cv2.cvtColor(rgba, cv2.COLOR_RGBA2BGRA))
    assert np.array_equal(read_image(tmp_path / "rgba.png"), rgba)
    cv2.imwrite(str(tmp_path / "g16.png"), (rgb[..., 0].astype(np.uint16) * 257))
    assert read_image(tmp_path / "g16.png").dtype == np.uint16


def _bad_files(tmp_path, smear_files):
    jpg = smear_files["jpg"].read_bytes()
    png = smear_files["png"].read_bytes()
    files = {
        "text.png": b"this is not an image\n",
        "empty.jpg": b"",
        "truncated.jpg": jpg[: len(jpg) // 2],
        "truncated.png": png[: len(png) // 3],
        "garbage.tif": b"II*\x00" + b"\x13" * 50,
    }
    for name, content in files.items():
        (tmp_path / name).write_bytes(content)
    tifffile.imwrite(tmp_path / "two.tif", np.zeros((40, 40, 2), np.uint8), photometric="minisblack",
                     planarconfig="contig")
    tifffile.imwrite(tmp_path / "five.tif", np.zeros((40, 40, 5), np.uint8), photometric="minisblack",
                     planarconfig="contig")
    tifffile.imwrite(tmp_path / "float.tif", np.random.rand(40, 40).astype(np.float32))
    import cv2

    cv2.imwrite(str(tmp_path / "tiny.png"), np.zeros((1, 1, 3), np.uint8))
    return {
        "text.png": "not a readable PNG", "empty.jpg": "empty", "truncated.jpg": "truncated",
        "truncated.png": "not a readable PNG", "garbage.tif": "not a readable TIFF",
        "two.tif": "2 channels", "five.tif": "5 channels", "float.tif": "floating point",
        "tiny.png": "1x1",
    }


def test_bad_files_give_one_line_errors(tmp_path, smear_files):
    for name, expected in _bad_files(tmp_path, smear_files).items():
        with pytest.raises(ImageFormatError) as info:
            read_image(tmp_path / name)
        msg = str(info.value)
        assert expected in msg and name in msg and "\n" not in msg, (name, msg)


def test_reader_reports_bad_files_without_raising(tmp_path, smear_files, monkeypatch):
    import napari.utils.notifications as notifications

    shown = []
    monkeypatch.setattr(notifications, "show_error", shown.append)
    cases = _bad_files(tmp_path, smear_files)
    for name in cases:
        reader = get_reader(str(tmp_path / name))
        assert reader is not None, name
        assert reader(str(tmp_path / name)) == [(None,)]
    assert len(shown) == len(cases)
    assert all(cases[n] in msg for n, msg in zip(cases, shown))
