"""Bad image files: lying TIFF tags, oversized headers, truncated and mis-named files.

Every case ends in one ImageFormatError (never IndexError, cv2.error or MemoryError), and
the good-but-unusual files (trailing bytes, a PNG named .jpg) are read as they are.
"""
import struct
import zlib

import cv2
import numpy as np
import pytest
import tifffile

from napari_wbcseg.core.image import MAX_PIXELS, ImageFormatError
from napari_wbcseg.core.synthetic import synthetic_smear
from napari_wbcseg.io.imread import read_image
from napari_wbcseg.io.reader import layer_data_for, read_smear


@pytest.fixture(scope="module")
def rgb():
    return synthetic_smear((96, 128), n_wbc=1, seed=1).image


@pytest.fixture(scope="module")
def jpeg(rgb):
    return cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))[1].tobytes()


def _png_header(width, height) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = lambda kind, data: (struct.pack(">I", len(data)) + kind + data  # noqa: E731
                                + struct.pack(">I", zlib.crc32(kind + data)))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", b"") + chunk(b"IEND", b"")


def _bmp_header(width, height) -> bytes:
    return (b"BM" + struct.pack("<IHHI", 54 + 16, 0, 0, 54)
            + struct.pack("<IiiHHIIiiII", 40, width, height, 1, 24, 0, 16, 0, 0, 0, 0) + b"\0" * 16)


def _jpeg_with_size(jpeg: bytes, width, height) -> bytes:
    i = jpeg.index(b"\xff\xc0")  # baseline SOF0: length, precision, height, width
    return jpeg[:i + 5] + struct.pack(">HH", height, width) + jpeg[i + 9:]


def _tiff_with_tag(path, tag_name, value):
    """Rewrite one SHORT/LONG tag of a small TIFF in place (a file whose tags lie)."""
    tifffile.imwrite(path, np.zeros((64, 64), np.uint8), metadata=None)
    with tifffile.TiffFile(path) as tif:
        tag = tif.pages[0].tags[tag_name]
        fmt = "<H" if tag.dtype == 3 else "<I"
        offset = tag.valueoffset
    data = bytearray(path.read_bytes())
    data[offset:offset + struct.calcsize(fmt)] = struct.pack(fmt, value)
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("bits", [0, 16, 255])
def test_tiff_whose_tags_lie_about_bit_depth(tmp_path, bits):
    p = tmp_path / f"bits{bits}.tif"
    _tiff_with_tag(p, "BitsPerSample", bits)
    with pytest.raises(ImageFormatError, match="not a readable TIFF"):
        read_image(p)


@pytest.mark.parametrize("name, make", [
    ("huge.png", lambda jpeg: _png_header(50000, 50000)),
    ("huge.bmp", lambda jpeg: _bmp_header(50000, -50000)),
    ("huge.jpg", lambda jpeg: _jpeg_with_size(jpeg, 50000, 50000)),
    ("wide.png", lambda jpeg: _png_header(2**31 - 1, 1 << 9)),
])
def test_oversized_header_is_refused_before_decoding(tmp_path, monkeypatch, jpeg, name, make):
    p = tmp_path / name
    p.write_bytes(make(jpeg))

    def never(*args, **kwargs):
        raise AssertionError("the decoder must not run on an oversized image")

    monkeypatch.setattr(cv2, "imdecode", never)
    with pytest.raises(ImageFormatError, match="more than the .* napari-wbcseg accepts"):
        read_image(p)


def test_oversized_tiff_is_refused_before_decoding(tmp_path):
    p = tmp_path / "huge.tif"
    _tiff_with_tag(p, "ImageWidth", 1 << 15)
    data = bytearray(p.read_bytes())
    with tifffile.TiffFile(p) as tif:
        off = tif.pages[0].tags["ImageLength"].valueoffset
    data[off:off + 2] = struct.pack("<H", 1 << 15)  # 32768 x 32768 > MAX_PIXELS
    p.write_bytes(bytes(data))
    assert (1 << 30) > MAX_PIXELS
    with pytest.raises(ImageFormatError, match="more than"):
        read_image(p)


def test_decoder_exception_becomes_image_format_error(tmp_path, monkeypatch, jpeg):
    p = tmp_path / "ok.jpg"
    p.write_bytes(jpeg)

    def explode(*args, **kwargs):
        raise cv2.error("OpenCV(4) imgcodecs: CV_IO_MAX_IMAGE_PIXELS exceeded")

    monkeypatch.setattr(cv2, "imdecode", explode)
    with pytest.raises(ImageFormatError, match="ok.jpg: not a readable JPEG"):
        read_image(p)


@pytest.mark.parametrize("fraction", [0.3, 0.5, 0.8, 0.95])
@pytest.mark.parametrize("end_marker", [True, False])
def test_truncated_jpeg_is_refused(tmp_path, jpeg, fraction, end_marker):
    scan = jpeg.index(b"\xff\xda") + 20  # cut inside the image data, after the tables
    cut = jpeg[:scan + int((len(jpeg) - scan) * fraction)] + (b"\xff\xd9" if end_marker else b"")
    p = tmp_path / "cut.jpg"
    p.write_bytes(cut)
    if end_marker:  # OpenCV opens it, with a grey lower part
        assert cv2.imdecode(np.frombuffer(cut, np.uint8), cv2.IMREAD_COLOR) is not None
    with pytest.raises(ImageFormatError, match="truncated"):
        read_image(p)


@pytest.mark.parametrize("trailer", [b"\0" * 5000, b"junk\xff\xd9 more", b"\xff\xd8\xff" * 400])
def test_complete_jpeg_with_trailing_bytes_is_read(tmp_path, jpeg, trailer):
    (tmp_path / "plain.jpg").write_bytes(jpeg)
    (tmp_path / "trail.jpg").write_bytes(jpeg + trailer)
    assert np.array_equal(read_image(tmp_path / "trail.jpg"), read_image(tmp_path / "plain.jpg"))


def test_format_is_sniffed_from_magic_bytes_not_extension(tmp_path, rgb, jpeg):
    png = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))[1].tobytes()
    (tmp_path / "really_png.jpg").write_bytes(png)
    assert np.array_equal(read_image(tmp_path / "really_png.jpg"), rgb)
    (tmp_path / "really_jpeg.png").write_bytes(jpeg)
    assert read_image(tmp_path / "really_jpeg.png").shape == rgb.shape
    (tmp_path / "really_tiff.bmp").write_bytes(b"")
    tifffile.imwrite(tmp_path / "really_tiff.bmp", rgb, photometric="rgb")
    assert np.array_equal(read_image(tmp_path / "really_tiff.bmp"), rgb)
    (tmp_path / "text.jpg").write_bytes(b"hello, not an image")
    with pytest.raises(ImageFormatError, match="not a readable JPG image"):
        read_image(tmp_path / "text.jpg")


@pytest.mark.parametrize("description", [
    '{"napari_wbcseg": "labels"}', '{"napari_wbcseg": ["labels"]}', '["napari_wbcseg"]',
    "[" * 100000, '{"napari_wbcseg": {"name": 7}}', "not json at all",
])
def test_label_tiff_with_foreign_description_never_raises(tmp_path, description):
    p = tmp_path / "labels.tif"
    tifffile.imwrite(p, np.ones((32, 32), np.uint16), description=description, metadata=None)
    data, kwargs, kind = layer_data_for(p)
    assert data.shape == (32, 32) and kwargs["name"] == "labels"
    assert kind == ("labels" if "{\"name\"" in description else "image")
    [(data, kwargs, kind)] = read_smear(str(p))
    assert isinstance(kwargs["name"], str)


def test_oversized_raster_file_is_refused_before_reading(tmp_path, monkeypatch):
    p = tmp_path / "huge.png"
    with open(p, "wb") as fh:
        fh.write(_png_header(100, 100))
        fh.truncate(4 * MAX_PIXELS + 1)  # sparse: costs no disk
    monkeypatch.setattr(np, "fromfile", lambda *a, **k: pytest.fail("the file was read"))
    with pytest.raises(ImageFormatError, match="too large"):
        read_image(p)
