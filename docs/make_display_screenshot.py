"""How result layers look: nucleus, cytoplasm and cell type all shown (docs/display.md).

    xvfb-run -s "-screen 0 1920x1080x24" .venv/bin/python docs/make_display_screenshot.py

Writes docs/images/display_layers.png: a synthetic smear with touching white cells and its
three schema layers in the plugin's style (``schema.labels_layer_kwargs``), the whole field
on the left and a close-up of two touching cells on the right.  ``--before`` renders
the old style instead (napari's random colours, cell type filled at opacity 0.7) for
comparison, ``--out PATH`` writes elsewhere.
"""
import sys
from pathlib import Path

import napari
import numpy as np

from napari_wbcseg.core.synthetic import synthetic_smear
from napari_wbcseg.io.atomic import atomic_path
from napari_wbcseg.schema import (class_colors, labels_layer_kwargs, layer_names,
                                  style_labels_layer)

OUT = Path(__file__).resolve().parent / "images" / "display_layers.png"


def _old_kwargs(name, kind):
    """The style before issue 14: napari's random colours, its default opacity 0.7."""
    kwargs = {"name": layer_names(name)[kind]}
    if kind == "cell_type":
        kwargs["colormap"] = class_colors()
    return kwargs


def canvas(smear, before: bool, zoom_on=None):
    viewer = napari.Viewer(title="napari-wbcseg", show=True)
    viewer.window.resize(1100, 900)
    name = "synthetic smear"
    viewer.add_image(smear.image, name=name, rgb=True)
    for kind in ("nucleus", "cytoplasm", "cell_type"):
        kwargs = _old_kwargs(name, kind) if before else labels_layer_kwargs(name, kind)
        layer = viewer.add_labels(getattr(smear, kind), **kwargs)
        if not before:
            style_labels_layer(layer, kind)  # the cell type's outline
    viewer.reset_view()
    if zoom_on is not None:
        (r0, c0), (r1, c1) = zoom_on
        viewer.camera.center = ((r0 + r1) / 2, (c0 + c1) / 2)
        viewer.camera.zoom = 0.9 * min(viewer.window._qt_viewer.canvas.size[1] / (r1 - r0),
                                       viewer.window._qt_viewer.canvas.size[0] / (c1 - c0))
    app = napari.qt.get_qapp()
    for _ in range(20):
        app.processEvents()
    shot = viewer.screenshot(canvas_only=True, flash=False)
    viewer.close()
    return shot[..., :3]


def touching_pair_box(smear, margin=12):
    """Bounding box of cells 1 and 2 (placed against each other by ``touching=True``)."""
    rows, cols = np.nonzero(np.isin(smear.nucleus, (1, 2)) | np.isin(smear.cytoplasm, (1, 2)))
    return ((rows.min() - margin, cols.min() - margin), (rows.max() + margin, cols.max() + margin))


def main():
    before = "--before" in sys.argv
    out = Path(sys.argv[sys.argv.index("--out") + 1]) if "--out" in sys.argv else OUT
    smear = synthetic_smear(shape=(600, 800), n_wbc=6, seed=3, touching=True)
    whole = canvas(smear, before)
    close = canvas(smear, before, zoom_on=touching_pair_box(smear))
    height = min(whole.shape[0], close.shape[0])
    gap = np.full((height, 8, 3), 255, np.uint8)
    picture = np.concatenate([whole[:height], gap, close[:height]], axis=1)
    import imageio.v3 as iio

    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out, suffix=".png") as tmp:
        iio.imwrite(tmp, picture)
    print(f"-> {out} {picture.shape[1]}x{picture.shape[0]}")


if __name__ == "__main__":
    main()
