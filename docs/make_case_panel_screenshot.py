"""The review gallery's case panel after "Save case", on synthetic smears (offline).

    xvfb-run -a -s "-screen 0 1920x1080x24" .venv/bin/python docs/make_case_panel_screenshot.py

Saves two synthetic fields as a project in a temporary folder, fills in a case, saves it
and writes docs/images/case_panel.png (the panel at the width of a narrow dock).
"""
import tempfile
import time
from pathlib import Path

import napari

from napari_wbcseg._widgets.case_panel import add_case_panel
from napari_wbcseg.core.synthetic import synthetic_smear
from napari_wbcseg.schema import labels_layer_kwargs, style_labels_layer

HERE = Path(__file__).resolve().parent / "images"
DOCK_WIDTH = 380


def _settle(app, until=lambda: True, seconds=30.0):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        app.processEvents()
        if until():
            break
        time.sleep(0.01)
    for _ in range(20):
        app.processEvents()


def main():
    viewer = napari.Viewer(title="napari-wbcseg")
    viewer.window._qt_window.setGeometry(0, 0, 1600, 1000)
    for i, seed in enumerate((3, 4)):
        s = synthetic_smear(shape=(384, 480), n_wbc=6, seed=seed, classes=[1, 2, 3, 4, 5])
        name = f"field {i + 1}"
        viewer.add_image(s.image, name=name, rgb=True)
        for k in ("nucleus", "cytoplasm", "cell_type"):
            style_labels_layer(viewer.add_labels(getattr(s, k).copy(),
                                                 **labels_layer_kwargs(name, k)), k)
    _, correct = viewer.window.add_plugin_dock_widget("napari-wbcseg",
                                                      "Correct white-cell labels")
    _, gallery = viewer.window.add_plugin_dock_widget("napari-wbcseg", "Review cells")
    panel = getattr(gallery, "case_panel", None) or add_case_panel(gallery)
    app = napari.qt.get_qapp()
    _settle(app, seconds=1)
    with tempfile.TemporaryDirectory() as tmp:
        correct.save_project(Path(tmp) / "S-17-2024")
        panel.case_id.value, panel.slide_id.value = "C-001", "S 17/2024"
        panel.case_target.value, panel.wbc_count.value = 200, 7.2
        panel.reviewer.value = "Dr A. Smith"
        panel.save_case()
        _settle(app, lambda: panel.worker is None)
        panel.status.value = panel.status.value.replace(tmp, "/data/projects")
        native = panel.native
        native.setMinimumWidth(DOCK_WIDTH)
        native.resize(DOCK_WIDTH, native.sizeHint().height())
        _settle(app, seconds=0.5)
        HERE.mkdir(exist_ok=True)
        native.grab().save(str(HERE / "case_panel.png"))
        if len(__import__("sys").argv) > 1:  # the whole dock, to check the panel fits
            gallery.native.grab().save(__import__("sys").argv[1])
        print(panel.status.value)
    print(f"-> {HERE / 'case_panel.png'}")
    viewer.close()


if __name__ == "__main__":
    main()
