"""Screenshot of the correction widget beside a segmented synthetic smear (run under Xvfb)."""
import sys
from pathlib import Path

import napari
import numpy as np

out = Path(sys.argv[1])
viewer = napari.Viewer(title="napari-wbcseg")
viewer.window.resize(1500, 860)
viewer.open_sample("napari-wbcseg", "synthetic_smear")
for layer in list(viewer.layers)[1:]:
    viewer.layers.remove(layer)  # the network's result, not the ground truth
import napari_wbcseg
from napari_wbcseg.schema import labels_layer_kwargs, style_labels_layer

image = viewer.layers["synthetic smear"]
res = napari_wbcseg.segment(np.asarray(image.data), device="cpu", pixel_size_um=0.2)
feats = res.table.reset_index().rename(columns={"cell_id": "index"})
diff = res.differential.reset_index().rename(columns={"class_code": "index"})
for kind, data, f in (("nucleus", res.nucleus, feats), ("cytoplasm", res.cytoplasm, feats),
                      ("cell_type", res.cell_type, diff)):
    style_labels_layer(viewer.add_labels(
        data, features=f, metadata={"model": res.model, "source_layer": image.name},
        **labels_layer_kwargs(image.name, kind)), kind)
_, w = viewer.window.add_plugin_dock_widget("napari-wbcseg", "Correct white-cell labels")
print(res.table[["class", "cell_area_px", "centroid_y", "centroid_x"]])
cid = int(sys.argv[2]) if len(sys.argv) > 2 else int(res.table.index[0])
row = res.table.loc[cid]
w.select_at((row["centroid_y"], row["centroid_x"]))
if w.selected != cid:
    w.select(cid)
w.toggle_cell_reviewed()
viewer.layers.selection.active = viewer.layers["synthetic smear cell type"]
from napari.utils.notifications import notification_manager

app = napari.qt.get_qapp()
for _ in range(30):
    app.processEvents()
viewer.reset_view()
if len(sys.argv) > 3:  # zoom on the selected cell's neighbourhood
    viewer.camera.center = (395, row["centroid_x"] + 60)
    viewer.camera.zoom *= float(sys.argv[3])
notification_manager.records.clear()
for _ in range(30):
    app.processEvents()
viewer.screenshot(path=str(out), canvas_only=False, flash=False)
print(w.info.value)
viewer.close()
