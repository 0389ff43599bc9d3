"""Opening large fields: level 0 of pyramids and OME-Zarr, small fields left to the normal
reader, and headers that declare absurd sizes refused in one line before any allocation."""
import struct
import tracemalloc

import numpy as np
import pytest
import tifffile

from napari_wbcseg.batching import lazy_field
from napari_wbcseg.batching.lazy_field import LargeFieldError, open_lazy_field


@pytest.fixture
def small_limit(monkeypatch):
    """Fields above 0.01 MP count as large, so small files exercise the lazy path."""
    monkeypatch.setattr(lazy_field, "LARGE_FIELD_MEGAPIXELS", 0.01)


def _rgb(h, w, seed=0):
    return np.random.default_rng(seed).integers(0, 255, (h, w, 3), dtype=np.uint8)


def _absurd_tiff(path, side=1_000_000):
    """A little-endian TIFF whose one IFD declares side x side RGB in one zlib strip."""
    tags = [(256, 4, side), (257, 4, side), (258, 3, 8), (259, 3, 8), (262, 3, 2),
            (273, 4, 200), (277, 3, 3), (278, 4, side), (279, 4, 16), (284, 3, 1)]
    ifd = struct.pack("<H", len(tags))
    for tag, typ, value in tags:
        ifd += struct.pack("<HHI", tag, typ, 1) + (struct.pack("<HH", value, 0) if typ == 3
                                                   else struct.pack("<I", value))
    ifd += struct.pack("<I", 0)
    data = b"II*\x00" + struct.pack("<I", 8) + ifd
    path.write_bytes(data + b"\x00" * (216 - len(data)))


def test_an_absurd_declared_size_is_one_line_and_allocates_nothing(tmp_path):
    path = tmp_path / "absurd.tif"
    _absurd_tiff(path)
    tracemalloc.start()
    with pytest.raises(LargeFieldError) as err:
        open_lazy_field(path)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith("absurd.tif: declares 1000000x1000000 px")
    assert peak < 20 * 2**20  # a few MB of parsing, never the 3 TB declared


def test_a_small_tiff_is_left_to_the_normal_reader(tmp_path):
    tifffile.imwrite(tmp_path / "small.tif", _rgb(64, 80), photometric="rgb")
    assert open_lazy_field(tmp_path / "small.tif") is None
    assert open_lazy_field(tmp_path / "photo.png") is None
    (tmp_path / "broken.tif").write_bytes(b"II*\x00" + b"\xff" * 12)  # read_image says why
    assert open_lazy_field(tmp_path / "broken.tif") is None


def test_a_pyramid_tiff_gives_level_0(tmp_path, small_limit):
    base = _rgb(256, 320)
    with tifffile.TiffWriter(tmp_path / "pyr.ome.tif", bigtiff=True) as tw:
        tw.write(base, subifds=2, tile=(128, 128), photometric="rgb", compression="zlib")
        tw.write(base[::2, ::2], subfiletype=1, tile=(128, 128), photometric="rgb")
        tw.write(base[::4, ::4], subfiletype=1, tile=(128, 128), photometric="rgb")
    field = open_lazy_field(tmp_path / "pyr.ome.tif")
    assert field.source == "tiff level 0 of 3" and field.shape == (256, 320)
    assert np.array_equal(field.region(10, 90, 20, 300).compute(scheduler="synchronous"), base[10:90, 20:300])


def test_a_16_bit_field_is_refused(tmp_path, small_limit):
    tifffile.imwrite(tmp_path / "deep.tif", np.zeros((200, 200), np.uint16))
    with pytest.raises(LargeFieldError, match="deep.tif: uint16 pixels"):
        open_lazy_field(tmp_path / "deep.tif")


@pytest.mark.parametrize("fmt", [2, 3])
def test_ome_zarr_gives_level_0_channels_last(tmp_path, fmt):
    import zarr

    base = _rgb(120, 150, seed=1)
    root = zarr.open_group(str(tmp_path / "f.zarr"), mode="w", zarr_format=fmt)
    for i, level in enumerate((base, base[::2, ::2])):
        arr = root.create_array(str(i), shape=(3, *level.shape[:2]), dtype=np.uint8,
                                chunks=(3, 64, 64))
        arr[:] = np.moveaxis(level, -1, 0)
    ms = [{"axes": [{"name": "c", "type": "channel"}, {"name": "y", "type": "space"},
                    {"name": "x", "type": "space"}],
           "datasets": [{"path": "0"}, {"path": "1"}]}]
    root.attrs.update({"multiscales": ms} if fmt == 2 else {"ome": {"version": "0.5",
                                                                     "multiscales": ms}})
    field = open_lazy_field(tmp_path / "f.zarr")  # zarr is always lazy: read_image cannot read it
    assert field.source == "ome-zarr level 0" and field.shape == (120, 150)
    assert np.array_equal(field.array.compute(scheduler="synchronous"), base)


def test_a_plain_zarr_array_and_a_level_path_that_leaves_the_folder(tmp_path):
    import zarr

    base = _rgb(90, 70, seed=2)
    zarr.save_array(str(tmp_path / "plain.zarr"), base)
    field = open_lazy_field(tmp_path / "plain.zarr")
    assert field.source == "zarr" and np.array_equal(field.array.compute(scheduler="synchronous"), base)
    root = zarr.open_group(str(tmp_path / "evil.zarr"), mode="w")
    root.attrs["multiscales"] = [{"datasets": [{"path": "../plain.zarr"}]}]
    with pytest.raises(LargeFieldError, match="leaves the folder"):
        open_lazy_field(tmp_path / "evil.zarr")
