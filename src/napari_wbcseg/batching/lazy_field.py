"""Fields too large to read at once, opened lazily as a dask array (no pixels read here).

:func:`open_lazy_field` looks only at the header (TIFF IFDs, zarr metadata), so a file
that declares an absurd size is refused with one line before anything is allocated:

* TIFF / BigTIFF / OME-TIFF: level 0 of the first series (a pyramid's full resolution),
  through ``tifffile``'s zarr store;
* ``.zarr`` folders: a zarr v2/v3 array, or an OME-Zarr multiscale group (level 0, its
  path checked to stay inside the folder).

Pixels must be 8-bit grey, RGB or RGBA (alpha dropped); axes are read from the TIFF
series or the OME-Zarr ``axes`` (t/z of size 1 dropped), a plain zarr array is taken as
``(H, W)``, ``(H, W, C)`` or ``(C, H, W)``.  dask and zarr are imported lazily.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

# Fields above this are read lazily and segmented block by block; smaller ones are read
# whole (segment's own limit is 30 MP of working copy, so 40 MP of input stays below
# what a worker of ~6 GB handles in one piece at the usual scales).
LARGE_FIELD_MEGAPIXELS = 40.0
# The most a lazy field may declare: a 40x whole slide is ~100000 x 100000 = 10^4 MP.
MAX_FIELD_MEGAPIXELS = 20_000.0
MAX_FIELD_SIDE = 400_000

__all__ = ["LARGE_FIELD_MEGAPIXELS", "MAX_FIELD_MEGAPIXELS", "LargeFieldError", "LazyField",
           "open_lazy_field", "is_zarr_folder"]


class LargeFieldError(ValueError):
    """A large field that cannot be read lazily (one line: the file and why)."""


@dataclass
class LazyField:
    """A field's level 0 as a lazy ``(H, W, 3)`` uint8 dask array; ``source`` says how it was
    found ("tiff level 0 of 3", "ome-zarr level 0", ...).  ``read(y0, y1, x0, x1)`` gives one
    region as numpy and counts it in ``reads`` (the shapes read, for tests and logs)."""

    path: Path
    array: object  # dask.array.Array (H, W, 3) uint8
    source: str
    reads: list

    @property
    def shape(self) -> tuple:
        return tuple(int(n) for n in self.array.shape[:2])

    @property
    def name(self) -> str:
        return self.path.name

    def region(self, y0: int, y1: int, x0: int, x1: int):
        """The lazy region (a dask array slice); nothing is read."""
        return self.array[y0:y1, x0:x1]

    def note_read(self, shape) -> None:
        self.reads.append(tuple(int(n) for n in shape[:2]))


def is_zarr_folder(path) -> bool:
    path = Path(path)
    return path.is_dir() and (path.suffix.lower() == ".zarr" or any(
        (path / n).is_file() for n in ("zarr.json", ".zarray", ".zgroup")))


def open_lazy_field(path) -> LazyField | None:
    """A :class:`LazyField` for a field above ``LARGE_FIELD_MEGAPIXELS`` (any ``.zarr``
    folder, which the ordinary reader cannot read), None for a TIFF small enough to read
    whole, or for another format.  Raises :class:`LargeFieldError` (one line) for a field
    whose header declares more than ``MAX_FIELD_MEGAPIXELS``, a pixel type other than
    8-bit, or that cannot be parsed."""
    path = Path(path)
    if is_zarr_folder(path):
        return _open_zarr(path)
    if not path.is_file() or path.suffix.lower() not in (".tif", ".tiff", ".btf", ".tf8"):
        return None
    with open(path, "rb") as fh:
        if fh.read(4) not in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
            return None  # not a TIFF: the ordinary reader says what it is
    return _open_tiff(path)


def _open_tiff(path: Path) -> LazyField | None:
    import tifffile

    try:
        # _multifile=False: an OME-TIFF's references to other files are not followed
        with tifffile.TiffFile(path, _multifile=False) as tif:
            series = tif.series[0]
            levels = len(series.levels)
            level0 = series.levels[0]
            shape, axes, dtype = tuple(level0.shape), level0.axes, level0.dtype
    except Exception:  # tifffile raises many types for broken headers
        return None  # the ordinary reader reports a broken TIFF in its own words
    axes = str(axes).upper()
    if "Y" not in axes or "X" not in axes or len(axes) != len(shape) or (
            int(shape[axes.index("Y")]) * int(shape[axes.index("X")])
            <= LARGE_FIELD_MEGAPIXELS * 1e6):
        return None  # small (or not a plane): read whole, as segment does
    hw, channel_axis = _layout(path.name, shape, axes)
    _check_dtype(path.name, dtype)
    import dask.array as da
    import zarr

    try:
        store = tifffile.imread(path, aszarr=True, level=0, series=0, _multifile=False)
        arr = da.from_zarr(zarr.open_array(store, mode="r"))
    except Exception as exc:
        raise LargeFieldError(f"{path.name}: not a readable TIFF ({_short(exc)})") from None
    source = f"tiff level 0 of {levels}" if levels > 1 else "tiff"
    return LazyField(path, _as_hwc(arr, axes, channel_axis), source, [])


def _open_zarr(path: Path) -> LazyField:
    import zarr

    try:
        node = zarr.open(str(path), mode="r")
    except Exception as exc:
        raise LargeFieldError(f"{path.name}: not a readable zarr folder ({_short(exc)})") from None
    source, axes = "zarr", None
    if not hasattr(node, "shape"):  # a group: OME-Zarr multiscales
        node, axes = _ome_level0(path, node)
        source = "ome-zarr level 0"
    shape = tuple(int(n) for n in node.shape)
    if axes is None:
        axes = _plain_axes(path.name, shape)
    hw, channel_axis = _layout(path.name, shape, axes)
    _check_dtype(path.name, node.dtype)
    import dask.array as da

    return LazyField(path, _as_hwc(da.from_zarr(node), axes, channel_axis), source, [])


def _ome_level0(path: Path, group):
    """Level 0 of an OME-Zarr group (v0.4 ``multiscales`` or v0.5 ``ome.multiscales``)."""
    attrs = dict(group.attrs)
    ms = attrs.get("multiscales") or (attrs.get("ome") or {}).get("multiscales")
    try:
        first = ms[0]
        rel = str(first["datasets"][0]["path"])
        axes = "".join(str(a["name"] if isinstance(a, dict) else a)[0].lower()
                       for a in first.get("axes", []))
    except (TypeError, KeyError, IndexError) as exc:
        raise LargeFieldError(f"{path.name}: a zarr group without an OME multiscales "
                              f"level 0 ({_short(exc)})") from None
    root = path.resolve()
    target = (root / rel).resolve()
    if target == root or root not in target.parents:  # a path read from a file stays inside
        raise LargeFieldError(f"{path.name}: its multiscales level 0 path {rel!r} leaves the folder")
    try:
        level = group[rel]
    except Exception as exc:
        raise LargeFieldError(f"{path.name}: level 0 {rel!r} cannot be opened ({_short(exc)})") from None
    if not hasattr(level, "shape"):
        raise LargeFieldError(f"{path.name}: level 0 {rel!r} is not an array")
    return level, (axes.upper() if axes and len(axes) == len(level.shape) else None)


def _plain_axes(name: str, shape) -> str:
    if len(shape) == 2:
        return "YX"
    if len(shape) == 3 and shape[-1] in (1, 3, 4):
        return "YXS"
    if len(shape) == 3 and shape[0] in (1, 3, 4):
        return "CYX"
    raise LargeFieldError(f"{name}: zarr array of shape {shape} is not (H, W), (H, W, C) or "
                          "(C, H, W) with 1, 3 or 4 channels")


def _layout(name: str, shape, axes: str):
    """``((H, W), colour axis or None)``, size-bounded; one line for anything else."""
    shape, axes = tuple(int(n) for n in shape), str(axes).upper()
    if len(axes) != len(shape) or "Y" not in axes or "X" not in axes:
        raise LargeFieldError(f"{name}: unsupported layout (axes {axes!r}, shape {shape})")
    h, w = shape[axes.index("Y")], shape[axes.index("X")]
    if h > MAX_FIELD_SIDE or w > MAX_FIELD_SIDE or h * w > MAX_FIELD_MEGAPIXELS * 1e6:
        raise LargeFieldError(f"{name}: declares {w}x{h} px ({h * w / 1e6:.3g} megapixels), above "
                              f"the limit of {MAX_FIELD_MEGAPIXELS:g} megapixels for one field")
    if h < 1 or w < 1:
        raise LargeFieldError(f"{name}: no image data (shape {shape})")
    channel = None
    for i, (a, n) in enumerate(zip(axes, shape)):
        if a in "YX":
            continue
        if a in "SC" and channel is None and n in (1, 3, 4):
            channel = i
        elif n != 1:
            raise LargeFieldError(f"{name}: unsupported layout (axes {axes!r}, shape {shape}): "
                                  "one 2-D grey or colour plane expected")
    return (h, w), channel


def _check_dtype(name: str, dtype) -> None:
    import numpy as np

    if np.dtype(dtype) != np.uint8:
        raise LargeFieldError(f"{name}: {np.dtype(dtype)} pixels; large fields must be 8-bit "
                              "grey, RGB or RGBA")


def _as_hwc(arr, axes: str, channel):
    """The dask array reordered to ``(H, W, 3)``: singleton axes dropped, grey tripled,
    alpha dropped (all lazy)."""
    import dask.array as da

    axes = str(axes).upper()
    keep = [i for i, a in enumerate(axes) if a in "YX" or i == channel]
    index = tuple(slice(None) if i in keep else 0 for i in range(len(axes)))
    arr = arr[index]
    kept_axes = [axes[i] if i != channel else "C" for i in keep]
    order = [kept_axes.index("Y"), kept_axes.index("X")] + (
        [kept_axes.index("C")] if "C" in kept_axes else [])
    arr = arr.transpose(order)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.shape[2] == 1:
        arr = da.concatenate([arr] * 3, axis=2)
    return arr[:, :, :3]


def _short(exc: Exception) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:120]
