"""File > Open Sample entries: the layers of ``io.sample_data``, as napari should show them.

napari reports an exception of a sample function as an error with a traceback, and a
sample that returns no layer as an error too.  A download that fails (no network, a
damaged file) is expected, so it becomes one warning whose first words say what to do,
and the offline synthetic smear opens instead.

napari's ``add_labels`` takes no ``contour``, so the cell-type outline of
``schema.labels_display`` is set here once napari has added the layers.
"""
from __future__ import annotations

from napari.utils.notifications import show_warning

from ..io import sample_data
from ..io.fetch import DownloadError
from ..schema import kind_from_layer_name, style_labels_layer

SYNTHETIC_NAME = "synthetic smear"


def offline_message(title: str, exc: DownloadError) -> str:
    """One line for a failed sample download; the way out comes first (toasts are cut)."""
    what = "is offline" if exc.offline else "failed its check"
    return (f"Sample {what}: {exc.hint}. Opened the {SYNTHETIC_NAME} instead of the "
            f"{title} ({exc.reason}).")


def _outline_when_added(layers) -> None:
    """Give the schema's cell-type layers their outline when napari adds them."""
    import napari

    viewer = napari.current_viewer()
    wanted = {id(data): kind for data, kwargs, layer_type in layers
              if layer_type == "labels" and (kind := kind_from_layer_name(kwargs["name"]))}
    if viewer is None or not wanted:
        return
    inserted = viewer.layers.events.inserted

    def on_inserted(event):
        kind = wanted.pop(id(event.value.data), None)
        if kind is not None:
            style_labels_layer(event.value, kind)
        if not wanted:
            inserted.disconnect(on_inserted)

    inserted.connect(on_inserted)
    from qtpy.QtCore import QTimer

    # napari adds the layers right after this returns; never keep listening past that
    QTimer.singleShot(0, lambda: wanted and inserted.disconnect(on_inserted))


def _sample(make, title: str):
    def load():
        try:
            layers = make()
        except DownloadError as exc:
            show_warning(offline_message(title, exc))
            layers = sample_data.synthetic_sample()
        _outline_when_added(layers)
        return layers

    load.__name__, load.__doc__ = make.__name__, make.__doc__
    return load


synthetic_sample = _sample(sample_data.synthetic_sample, "synthetic smear")
bcisc_neutrophil_field = _sample(sample_data.bcisc_neutrophil_field, "BCISC neutrophil field")
bcisc_lymphocyte_field = _sample(sample_data.bcisc_lymphocyte_field, "BCISC lymphocyte field")
zheng_dataset1_cell = _sample(sample_data.zheng_dataset1_cell, "segmentation_WBC Dataset 1 cell")
zheng_dataset2_cell = _sample(sample_data.zheng_dataset2_cell, "segmentation_WBC Dataset 2 cell")
