"""Regenerate the README/docs screenshots (needs a display; run under Xvfb).

    xvfb-run -s "-screen 0 1920x1080x24" .venv/bin/python docs/make_screenshots.py
"""
from pathlib import Path

import napari
import numpy as np

HERE = Path(__file__).resolve().parent / "images"


def main():
    HERE.mkdir(exist_ok=True)
    viewer = napari.Viewer(title="napari-wbcseg")
    viewer.window.resize(1800, 1000)
    viewer.open_sample("napari-wbcseg", "synthetic_smear")
    _, widget = viewer.window.add_plugin_dock_widget("napari-wbcseg", "AHE-Retinex colour correction")
    widget.image.value = viewer.layers["synthetic smear"]
    for name in ("nucleus", "cytoplasm"):
        viewer.layers[f"synthetic smear (truth) {name}"].visible = False
    widget.apply()
    app = napari.qt.get_qapp()
    while "synthetic smear AHE-Retinex" not in viewer.layers:
        app.processEvents()
    corrected = viewer.layers["synthetic smear AHE-Retinex"]
    corrected.translate = (0, viewer.layers["synthetic smear"].data.shape[1] + 20)
    viewer.reset_view()
    viewer.camera.zoom *= 1.15
    from napari.utils.notifications import notification_manager

    notification_manager.records.clear()
    for _ in range(20):
        app.processEvents()
    viewer.screenshot(path=str(HERE / "ahe_retinex_widget.png"), canvas_only=False, flash=False)
    viewer.close()


def segment_screenshot(model=None, filename="segment_widget.png"):
    viewer = napari.Viewer(title="napari-wbcseg")
    viewer.window.resize(1800, 1000)
    viewer.open_sample("napari-wbcseg", "synthetic_smear")
    for layer in list(viewer.layers)[1:]:
        viewer.layers.remove(layer)  # show the network's result, not the ground truth
    _, widget = viewer.window.add_plugin_dock_widget("napari-wbcseg", "Segment white blood cells")
    widget.image.value = viewer.layers["synthetic smear"]
    widget.device.value = "cpu"
    if model:
        widget.model.value = model
    widget.run()
    app = napari.qt.get_qapp()
    while widget._worker is not None:
        app.processEvents()
    # all three result layers in the plugin's own style (docs/display.md)
    viewer.layers.selection.active = viewer.layers["synthetic smear cell type"]
    viewer.reset_view()
    from napari.utils.notifications import notification_manager

    notification_manager.records.clear()
    for _ in range(20):
        app.processEvents()
    viewer.screenshot(path=str(HERE / filename), canvas_only=False, flash=False)
    viewer.close()


if __name__ == "__main__":
    import sys

    if "--zoo" not in sys.argv:
        main()
        segment_screenshot()
    segment_screenshot("leukocytemask-compact", "model_zoo_leukocytemask.png")
