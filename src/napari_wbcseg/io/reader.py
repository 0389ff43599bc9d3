"""npe2 reader: blood-smear and marrow images (PNG, JPEG, BMP, TIFF).

``get_reader`` only looks at the file name and never raises; problems found
while reading are reported as a napari notification and no layer is added.
"""
from __future__ import annotations

from pathlib import Path

from .imread import is_supported, read_image, saved_labels_metadata
from ..core.image import ImageFormatError, bit_depth
from ..schema import kind_from_layer_name, labels_style


def get_reader(path):
    """Return a reader function for one supported image path, else None."""
    if isinstance(path, (list, tuple)):
        if len(path) != 1:
            return None
        path = path[0]
    if not is_supported(path) or Path(path).is_dir():
        return None
    return read_smear


def read_smear(path):
    """Read one image file into napari layer data; ``[(None,)]`` after a reported error."""
    if isinstance(path, (list, tuple)):
        path = path[0]
    try:
        return [layer_data_for(path)]
    except ImageFormatError as exc:
        _notify(str(exc))
        return [(None,)]  # napari's "handled, nothing to add" sentinel: no fallback reader error


def layer_data_for(path):
    """(data, kwargs, 'image') for an image file; raises ImageFormatError."""
    path = Path(path)
    data = read_image(path)
    labels_meta = saved_labels_metadata(path)
    if labels_meta is not None:
        name = labels_meta.get("name")
        name = name if isinstance(name, str) and name else path.stem
        kind = kind_from_layer_name(name)  # a saved schema layer keeps the schema's look
        style = labels_style(kind) if kind else {}
        return data, {"name": name, "metadata": {"path": str(path)}, **style}, "labels"
    rgb = data.ndim >= 3 and data.shape[-1] in (3, 4)
    kwargs = {"name": path.stem, "rgb": rgb, "metadata": {"path": str(path)}}
    if data.dtype.itemsize > 1:  # show 10/12/14-bit camera data at its real range
        kwargs["contrast_limits"] = [0, 2 ** bit_depth(data) - 1]
        if rgb:
            kwargs.pop("contrast_limits")
    return data, kwargs, "image"


def _notify(message: str) -> None:
    try:
        from napari.utils.notifications import show_error
    except ImportError:  # used outside napari
        raise ImageFormatError(message) from None
    show_error(message)
