"""Screenshot of the training dock after a short run (run under Xvfb)."""
import os, sys, tempfile, time
sys.modules.setdefault("triton", None)
os.environ["NAPARI_WBCSEG_MODELS"] = tempfile.mkdtemp(prefix="shot-models-")
from pathlib import Path
import napari
import numpy as np
from napari_wbcseg.core.synthetic import synthetic_smear
from napari_wbcseg.schema import labels_layer_kwargs, style_labels_layer

OUT = Path(sys.argv[1])
viewer = napari.Viewer(title="napari-wbcseg")
viewer.window.resize(1400, 1000)
for i, seed in enumerate((3, 4, 5)):
    sm = synthetic_smear(shape=(480, 640), n_wbc=4, seed=seed)
    name = f"smear {i + 1}"
    viewer.add_image(sm.image, name=name, rgb=True, visible=(i == 0))
    for k in ("nucleus", "cytoplasm", "cell_type"):
        layer = viewer.add_labels(getattr(sm, k), metadata={"wbcseg_reviewed": True},
                                  visible=(i == 0 and k == "cell_type"),
                                  **labels_layer_kwargs(name, k))
        style_labels_layer(layer, k)
_, w = viewer.window.add_plugin_dock_widget("napari-wbcseg", "Train / fine-tune a network")
w.epochs.value, w.steps.value, w.batch.value, w.crop.value = 4, 6, 2, 128
w.val_fraction.value = 0.3
w.name.value = "my-smears-ft"
app = napari.qt.get_qapp()
w._warm_up.join()
w.train()
while w._worker is not None:
    app.processEvents(); time.sleep(0.01)
viewer.layers.selection.active = viewer.layers["smear 1"]
viewer.reset_view()
from napari.utils.notifications import notification_manager
notification_manager.records.clear()
for _ in range(30):
    app.processEvents(); time.sleep(0.02)
print("status:", w.status.value, "| loss pts", len(w.plot.loss), "score pts", len(w.plot.score))
viewer.screenshot(path=str(OUT), canvas_only=False, flash=False)
viewer.close()
