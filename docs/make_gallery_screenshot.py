"""The review gallery on a synthetic smear (offline, ground-truth labels, made-up confidences).

    xvfb-run -a -s "-screen 0 1920x1080x24" .venv/bin/python docs/make_gallery_screenshot.py

Writes docs/images/gallery.png: the dock, floating at 560x900, one cell accepted and one
reclassified.  The grid is as tall as the dock (review_gallery_dock), so the threshold,
the keys and the case panel are under it, scrolled out of the picture
(docs/make_case_panel_screenshot.py shows the panel).
"""
from pathlib import Path

import napari
import numpy as np
import pandas as pd

from napari_wbcseg.core.synthetic import synthetic_smear
from napari_wbcseg.schema import labels_layer_kwargs, style_labels_layer

HERE = Path(__file__).resolve().parent / "images"


def main():
    viewer = napari.Viewer(title="napari-wbcseg")
    viewer.window._qt_window.setGeometry(0, 0, 1600, 1000)
    for i, seed in enumerate((3, 4)):
        s = synthetic_smear(shape=(512, 640), n_wbc=9, seed=seed, classes=[1, 2, 3, 4, 5])
        name = f"field {i + 1}"
        viewer.add_image(s.image, name=name, rgb=True)
        layers = {k: style_labels_layer(viewer.add_labels(getattr(s, k).copy(),
                                                          **labels_layer_kwargs(name, k)), k)
                  for k in ("nucleus", "cytoplasm", "cell_type")}
        ids = np.unique(s.nucleus[s.nucleus > 0])
        rng = np.random.default_rng(seed)
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
    dock.resize(560, 900)
    gallery.on_key("enter")  # one cell accepted, one reclassified: the header counts
    gallery.on_key("3")
    for _ in range(20):
        app.processEvents()
    gallery.model.pool.waitForDone(10000)
    for _ in range(50):
        app.processEvents()
    gallery.model.pool.waitForDone(10000)
    for _ in range(20):
        app.processEvents()
    HERE.mkdir(exist_ok=True)
    dock.grab().save(str(HERE / "gallery.png"))
    print(gallery.reviewed_label.value, "|", gallery.progress_label.value)
    print(f"-> {HERE / 'gallery.png'}")
    viewer.close()


if __name__ == "__main__":
    main()
