"""Reading smear images from disk (no napari): PNG, JPEG, BMP and TIFF.

Files are untrusted: the format comes from the magic bytes, the size from the header
(checked against the pixel bound before decoding), and a JPEG whose image data was cut
short is refused rather than shown with a grey lower part.

Errors come out as :class:`ImageFormatError` with one sentence naming the file
and the problem, so the reader, the CLI and scripts can report them as they are.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..core.image import MAX_PIXELS, ImageFormatError, check_image, check_pixel_count
from .raster_header import jpeg_is_cut_short, raster_header

TIFF_SUFFIXES = (".tif", ".tiff")
RASTER_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")
SUPPORTED_SUFFIXES = TIFF_SUFFIXES + RASTER_SUFFIXES
_MEMMAP_ABOVE = 1 << 30  # uncompressed TIFFs over 1 GiB are memory-mapped, not loaded


def is_supported(path) -> bool:
    return isinstance(path, (str, os.PathLike)) and Path(path).suffix.lower() in SUPPORTED_SUFFIXES


def read_image(path) -> np.ndarray:
    """Return the pixels of one image file: (H, W), (H, W, C) or a page stack (P, H, W[, C]).

    The format is taken from the file's first bytes (a PNG named ``.jpg`` is read as a
    PNG); the extension only decides which files are offered.  The image size is read
    from the header and images over :data:`~napari_wbcseg.core.image.MAX_PIXELS` pixels
    are refused before anything is decoded.  Raises ImageFormatError for missing, empty,
    truncated, corrupt, oversized or unsupported files; no decoder exception escapes.
    """
    path = Path(path)
    if not path.is_file():
        raise ImageFormatError(f"{path.name}: file not found")
    if path.stat().st_size == 0:
        raise ImageFormatError(f"{path.name}: the file is empty")
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise ImageFormatError(f"{path.name}: unsupported file type {suffix!r}")
    with open(path, "rb") as fh:
        head = fh.read(32)
    kind = sniff_format(head)
    if kind is None:
        raise ImageFormatError(f"{path.name}: not a readable {suffix.lstrip('.').upper()} image "
                               "(it does not start like a PNG, JPEG, BMP or TIFF file)")
    try:
        data = _read_tiff(path) if kind == "tiff" else _read_raster(path, kind)
        _check_planes(data, path.name)
    except ImageFormatError:
        raise
    except Exception as exc:  # a decoder's own error types (cv2.error, struct.error, ...)
        raise ImageFormatError(f"{path.name}: not a readable {kind.upper()} image "
                               f"({_short(exc)})") from None
    return data


def sniff_format(head: bytes) -> str | None:
    """``"png"``, ``"jpeg"``, ``"bmp"``, ``"tiff"`` from a file's first bytes, else None."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head.startswith(b"BM"):
        return "bmp"
    if head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return "tiff"
    return None


def _read_tiff(path: Path) -> np.ndarray:
    import tifffile

    try:
        with tifffile.TiffFile(path) as tif:
            series = tif.series[0]
            axes, shape = series.axes, tuple(series.shape)
            check_pixel_count(_pixels(shape, axes), path.name)
            if path.stat().st_size > _MEMMAP_ABOVE:
                try:
                    data = tifffile.memmap(path, mode="r")
                except ValueError:  # compressed or tiled: must be decoded into memory
                    data = series.asarray()
            else:
                data = series.asarray()
    except ImageFormatError:
        raise
    except Exception as exc:  # tifffile raises many types for broken files
        raise ImageFormatError(f"{path.name}: not a readable TIFF ({_short(exc)})") from None
    if tuple(data.shape) != shape:  # tags that lie (e.g. bits per sample) decode to nothing
        raise ImageFormatError(f"{path.name}: not a readable TIFF (its tags describe "
                               f"{'x'.join(map(str, shape))} pixels that the file does not hold)")
    return _channels_last(np.asarray(data) if not isinstance(data, np.memmap) else data, axes)


def _pixels(shape, axes: str) -> int:
    """Pixels in all planes of a TIFF series (colour samples not counted)."""
    n = 1
    for size, axis in zip(shape, axes):
        if axis not in "SC" or size > 4:
            n *= int(size)
    return n


def saved_labels_metadata(path) -> dict | None:
    """The plugin's own label TIFFs carry a JSON tag; return it, or None for other files.

    Only ``{"napari_wbcseg": {...}}`` counts: a description that is not JSON, is nested
    too deeply, or holds the key with another type (a string, a list) is not ours.
    """
    from .safe_json import loads_bounded
    from .writer import LABELS_TAG

    if Path(path).suffix.lower() not in TIFF_SUFFIXES:
        return None
    try:
        import tifffile

        with tifffile.TiffFile(path) as tif:
            info = loads_bounded(tif.pages[0].description or "{}", max_bytes=1 << 20)
    except Exception:  # not ours (or unreadable, which read_image reports)
        return None
    meta = info.get(LABELS_TAG) if isinstance(info, dict) else None
    return meta if isinstance(meta, dict) else None


def _channels_last(data: np.ndarray, axes: str) -> np.ndarray:
    """Move a leading colour axis ('C' or 'S' of size 3/4 before Y) to the end."""
    axes = axes[-data.ndim:] if len(axes) >= data.ndim else axes
    for name in ("S", "C"):
        if name in axes and "Y" in axes and axes.index(name) < axes.index("Y"):
            i = axes.index(name)
            if data.shape[i] in (3, 4) and i == data.ndim - 3:
                return np.moveaxis(data, i, -1)
    return data


def _read_raster(path: Path, kind: str) -> np.ndarray:
    import cv2

    if path.stat().st_size > 4 * MAX_PIXELS:  # more bytes than any image we accept holds
        raise ImageFormatError(f"{path.name}: {path.stat().st_size:,} bytes is too large for "
                               "an image napari-wbcseg accepts; crop or downscale it first")
    raw = np.fromfile(path, dtype=np.uint8)
    header = raster_header(raw.tobytes() if kind == "jpeg" else raw[:64].tobytes(), kind)
    if header is None:
        raise ImageFormatError(f"{path.name}: not a readable {kind.upper()} image "
                               "(corrupt or truncated header)")
    check_pixel_count(header[0] * header[1], path.name)
    if kind == "jpeg" and header[2] is None:
        raise ImageFormatError(f"{path.name}: the JPEG file is truncated (no end-of-image marker)")
    # before OpenCV: its libjpeg prints "Corrupt JPEG data" to stderr, a second line
    if kind == "jpeg" and jpeg_is_cut_short(raw, header[2]):
        raise ImageFormatError(f"{path.name}: the JPEG file is truncated (its image data ends "
                               "early; the missing part would show grey)")
    img = cv2.imdecode(raw, cv2.IMREAD_UNCHANGED)
    if img is None:
        raise ImageFormatError(f"{path.name}: not a readable {kind.upper()} image "
                               "(corrupt, truncated or of another format)")
    if img.ndim == 3 and img.shape[2] == 3:
        img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    elif img.ndim == 3 and img.shape[2] == 4:
        img = cv2.cvtColor(img, cv2.COLOR_BGRA2RGBA)
    return img


def _check_planes(data: np.ndarray, name: str) -> None:
    """A file may hold one image or a stack of pages; each plane must be usable."""
    if data.ndim < 2 or data.size == 0:
        raise ImageFormatError(f"{name}: no image data (shape {tuple(data.shape)})")
    if data.ndim == 3 and data.shape[-1] <= 8 and data.shape[-1] not in (3, 4) and data.shape[0] > 8:
        # (H, W, C) with an unsupported channel count, e.g. 2 or 5
        raise ImageFormatError(
            f"{name}: image has {data.shape[-1]} channels; expected grayscale, RGB or RGBA"
        )
    colour = data.ndim >= 3 and data.shape[-1] in (3, 4)
    plane_ndim = 3 if colour else 2
    if data.ndim not in (plane_ndim, plane_ndim + 1):
        raise ImageFormatError(f"{name}: unsupported layout, shape {tuple(data.shape)}")
    check_image(data if data.ndim == plane_ndim else data[0], what=name)


def _short(exc: Exception) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:120]
