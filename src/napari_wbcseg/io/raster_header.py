"""Image sizes from PNG / JPEG / BMP headers, and a check for JPEG data cut short.

Reading the size from the header lets :mod:`.imread` refuse an oversized image before
a decoder allocates it.  A JPEG cut short and then closed with an end-of-image marker
decodes without an error in libjpeg (which fills the missing part with grey and only
prints a warning), so :func:`jpeg_is_cut_short` decodes it again with extra
entropy-coded bytes before that marker: a complete image ignores them, a truncated one
changes.
"""
from __future__ import annotations

import numpy as np

__all__ = ["jpeg_is_cut_short", "raster_header"]

_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
# bytes without 0xFF (so no byte stuffing is needed) that decode to non-zero coefficients
_PROBE = bytes((i * 97 + 13) % 255 for i in range(512))


def raster_header(data: bytes, kind: str):
    """``(width, height, end)`` from the start of a PNG/BMP or a whole JPEG file.

    ``end`` is the offset of a JPEG's end-of-image marker (None when the file stops
    before it; always None for PNG and BMP).  None when the header cannot be parsed.
    """
    try:
        if kind == "png":
            if data[12:16] != b"IHDR":
                return None
            return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big"), None
        if kind == "bmp":
            dib = int.from_bytes(data[14:18], "little")
            if dib == 12:  # OS/2 BITMAPCOREHEADER: 16-bit sizes
                return int.from_bytes(data[18:20], "little"), int.from_bytes(data[20:22], "little"), None
            w = int.from_bytes(data[18:22], "little", signed=True)
            h = int.from_bytes(data[22:26], "little", signed=True)
            return abs(w), abs(h), None  # a negative height means top-down rows
        if kind == "jpeg":
            return _jpeg_walk(data)
    except (IndexError, ValueError):
        return None
    return None


def _jpeg_walk(data: bytes):
    """Walk the JPEG's marker segments (lengths, scans) to its size and end marker."""
    n, i, size = len(data), 2, None
    while i < n:
        if data[i] != 0xFF:
            return None  # not at a marker: corrupt
        while i < n and data[i] == 0xFF:  # fill bytes
            i += 1
        if i >= n:
            break
        marker = data[i]
        i += 1
        if marker == 0xD9:
            return (size[1], size[0], i - 2) if size else None
        if marker == 0x01 or 0xD0 <= marker <= 0xD7:
            continue  # stand-alone markers
        if i + 2 > n:
            break
        end = i + int.from_bytes(data[i:i + 2], "big")
        if end < i + 2:
            return None
        if marker in _SOF:
            if end < i + 7 or end > n:
                break
            size = (int.from_bytes(data[i + 3:i + 5], "big"), int.from_bytes(data[i + 5:i + 7], "big"))
        i = end
        if marker == 0xDA:  # entropy-coded data runs to the next marker that is not RSTn
            while True:
                i = data.find(b"\xff", i)
                if i < 0 or i + 1 >= n:
                    i = n
                    break
                nxt = data[i + 1]
                if nxt == 0x00 or nxt == 0xFF or 0xD0 <= nxt <= 0xD7:
                    i += 1
                    continue
                break
    return (size[1], size[0], None) if size else None


def jpeg_is_cut_short(raw: np.ndarray, end: int) -> bool:
    """True if the JPEG ``raw`` ran out of image data before its end marker at ``end``.

    Bytes put before the end marker are skipped by a decoder that has every block, but
    decoded as blocks by one that was still missing some, which changes the pixels.  Both
    decodes run in Pillow, at 1/8 scale unless progressive (every block is still
    entropy-decoded; Pillow keeps libjpeg's warnings off stderr, where OpenCV prints them).
    Not caught: a cut exactly at a restart-interval boundary, and a progressive file that
    lost whole refinement scans (it shows all its pixels, at lower quality).
    """
    probe = np.concatenate([raw[:end], np.frombuffer(_PROBE, np.uint8), raw[end:]])
    try:
        return not np.array_equal(_small_decode(raw), _small_decode(probe))
    except ImportError:  # pragma: no cover - Pillow comes with scikit-image and napari
        return False
    except Exception:  # noqa: BLE001 - what Pillow cannot decode here, OpenCV already did
        return False


def _small_decode(data: np.ndarray) -> np.ndarray:
    import io

    from PIL import Image

    with Image.open(io.BytesIO(data.tobytes())) as im:
        if not im.info.get("progressive"):  # at 1/8 scale a progressive file uses DC scans only
            im.draft(im.mode, (max(1, im.width // 8), max(1, im.height // 8)))
        return np.asarray(im)
