"""The review gallery with the 16-class marrow-icsh table (synthetic marrow smear, offline).

    xvfb-run -a -s "-screen 0 1920x1080x24" .venv/bin/python docs/make_gallery_marrow_screenshot.py

Writes docs/images/gallery_marrow.png: the scheme's own keys reclassify ("0" a
metamyelocyte, "a" a proerythroblast, "u" unidentified), one update per key; the grid
as tall as the dock (floating, 1000 px tall), the controls under it scrolled out of sight.
"""
from pathlib import Path

import napari
import numpy as np
import pandas as pd

from napari_wbcseg.core.synthetic import synthetic_smear
from napari_wbcseg.schema import labels_layer_kwargs, style_labels_layer
from napari_wbcseg.schemes.builtin import load_scheme
from napari_wbcseg.schemes.tables import classes_to_json

HERE = Path(__file__).resolve().parent / "images"


def main():
    marrow = load_scheme("marrow-icsh").classes
    viewer = napari.Viewer(title="napari-wbcseg")
    viewer.window._qt_window.setGeometry(0, 0, 1600, 1000)
    codes = [c.code for c in marrow[:-1]]
    s = synthetic_smear(shape=(640, 800), n_wbc=16, seed=5, classes=codes, scheme="marrow-icsh")
    viewer.add_image(s.image, name="marrow", rgb=True)
    meta = {"classes": classes_to_json(marrow)}
    layers = {k: style_labels_layer(viewer.add_labels(
        getattr(s, k).copy(), metadata=dict(meta), **labels_layer_kwargs("marrow", k, marrow)), k)
        for k in ("nucleus", "cytoplasm", "cell_type")}
    ids = np.unique(s.nucleus[s.nucleus > 0])
    rng = np.random.default_rng(5)
    layers["nucleus"].features = pd.DataFrame({"index": ids,
                                               "confidence": rng.uniform(0.3, 1.0, ids.size)})
    _, gallery = viewer.window.add_plugin_dock_widget("napari-wbcseg", "Review cells")
    app = napari.qt.get_qapp()
    for _ in range(50):
        app.processEvents()
    dock = gallery.native.parent()
    while dock is not None and not hasattr(dock, "setFloating"):
        dock = dock.parent()
    dock.setFloating(True)
    dock.resize(560, 1000)
    for key in ("0", "a", "u"):
        gallery.on_key(key)
        app.processEvents()
    for _ in range(3):
        for _ in range(30):
            app.processEvents()
        gallery.model.pool.waitForDone(10000)
    HERE.mkdir(exist_ok=True)
    dock.grab().save(str(HERE / "gallery_marrow.png"))
    print(gallery.reviewed_label.value, "|", gallery.progress_label.value)
    print(f"-> {HERE / 'gallery_marrow.png'}")
    viewer.close()


if __name__ == "__main__":
    main()
