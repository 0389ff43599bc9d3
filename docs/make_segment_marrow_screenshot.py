"""The Segment dock on an image of a loaded bone-marrow project (offline, synthetic).

    xvfb-run -a -s "-screen 0 1920x1080x24" .venv/bin/python docs/make_segment_marrow_screenshot.py

Saves one synthetic marrow field as a "marrow-icsh" project in a temporary folder, opens
it, segments the field with the default model and writes docs/images/segment_marrow.png:
the result layers carry the project's table, so the counts list the marrow classes (the
five blood classes of the installed classifier mapped onto them by name).
"""
import tempfile
import time
from pathlib import Path

import napari
import numpy as np

from napari_wbcseg._widgets.project_panel import add_project_to_viewer
from napari_wbcseg.core.synthetic import synthetic_smear
from napari_wbcseg.io.project import create_project, save_image_entry

OUT = Path(__file__).resolve().parent / "images" / "segment_marrow.png"


def _settle(app, until=lambda: True, seconds=120.0):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        app.processEvents()
        if until():
            break
        time.sleep(0.02)
    for _ in range(20):
        app.processEvents()


def main():
    viewer = napari.Viewer(title="napari-wbcseg")
    viewer.window._qt_window.setGeometry(0, 0, 1600, 1000)
    app = napari.qt.get_qapp()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "marrow-case"
        create_project(folder, "marrow-icsh", pixel_size_um=0.5)
        s = synthetic_smear((360, 480), n_wbc=10, seed=2, scheme="marrow-icsh",
                            pixel_size_um=0.5, rbc_density=0.15)
        empty = np.zeros(s.image.shape[:2], np.uint16)
        save_image_entry(folder, "field-1", s.image, empty, empty, empty.astype(np.uint8))
        add_project_to_viewer(viewer, folder)
    _, dock = viewer.window.add_plugin_dock_widget("napari-wbcseg", "Segment white blood cells")
    dock.image.value = viewer.layers["field-1"]
    dock.device.value = "cpu"
    dock.confirm_replace = lambda name: "replace"
    dock.run()
    _settle(app, lambda: dock._worker is None)
    viewer.layers.selection.active = viewer.layers["field-1 cell type"]
    viewer.reset_view()
    _settle(app, seconds=1)
    viewer.window._qt_window.grab().save(str(OUT))
    print(f"wrote {OUT}: {dock.status.value}")
    viewer.close()


if __name__ == "__main__":
    main()
