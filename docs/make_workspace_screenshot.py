"""Every dock of the plugin open at once, at a laptop and a desktop screen size.

    xvfb-run -s "-screen 0 1920x1080x24" .venv/bin/python docs/make_workspace_screenshot.py

Writes docs/images/workspace_1366x768.png and workspace_1920x1080.png (the window
at that size, the docks opened one after the other as from the Plugins menu, the
synthetic smear segmented by the default model), and prints each dock's size and the
rows of cells the review gallery shows, so that overflow shows in numbers too.
"""
import sys
from pathlib import Path

import napari

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "widgets"))
from test_workspace_fit import visible_cell_rows  # noqa: E402 (the test's own count)

HERE = Path(__file__).resolve().parent / "images"
DOCKS = ("AHE-Retinex colour correction", "Segment white blood cells",
         "Correct white-cell labels", "Train / fine-tune a network", "Review cells")


def shot(width, height):
    viewer = napari.Viewer(title="napari-wbcseg")
    viewer.window._qt_window.setGeometry(0, 0, width, height)
    viewer.open_sample("napari-wbcseg", "synthetic_smear")
    for layer in list(viewer.layers)[1:]:
        viewer.layers.remove(layer)
    widgets = {}
    app = napari.qt.get_qapp()
    for name in DOCKS:
        _, widgets[name] = viewer.window.add_plugin_dock_widget("napari-wbcseg", name)
        for _ in range(20):
            app.processEvents()
    seg = widgets["Segment white blood cells"]
    seg.image.value = viewer.layers["synthetic smear"]
    seg.device.value = "cpu"
    seg.run()
    while seg._worker is not None:
        app.processEvents()
    viewer.reset_view()
    for _ in range(3):
        for _ in range(30):
            app.processEvents()
        widgets["Review cells"].model.pool.waitForDone(10000)  # the thumbnails
    window = viewer.window._qt_window
    print(f"{width}x{height}: window {window.width()}x{window.height()}")
    for name, w in widgets.items():
        native = getattr(w, "native", w)
        print(f"  {name}: {native.width()}x{native.height()} "
              f"(minimum {native.minimumSizeHint().width()}x{native.minimumSizeHint().height()})")
    gallery = widgets["Review cells"]
    print(f"  gallery grid {gallery.view.width()}x{gallery.view.height()}: "
          f"{visible_cell_rows(gallery)} rows of cells in sight")
    path = HERE / f"workspace_{width}x{height}.png"
    viewer.screenshot(path=str(path), canvas_only=False, flash=False)
    print(f"  -> {path}")
    viewer.close()


if __name__ == "__main__":
    HERE.mkdir(exist_ok=True)
    for size in ((1366, 768), (1920, 1080)):
        shot(*size)
