"""Event-loop gaps of the review gallery with 1,000 cells (run under Xvfb).

    xvfb-run -a -s "-screen 0 1920x1080x24" .venv/bin/python benchmarks/bench_gallery.py

Opens the gallery on one image of 1,000 cells (a 25 x 40 grid, made-up confidences),
then scrolls it from top to bottom and back in steps of one row, every 20 ms, while a
10 ms QTimer records its ticks (the method of bench_gui_stall.py): every gap between
ticks is a stall the user feels.  Then 20 reclassifications by key (each a Correct-dock
edit, a recount and a gallery refresh).  Prints the gap percentiles per phase and how
many thumbnails were made (only those scrolled past are).
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "widgets"))


def main():
    import napari
    import pandas as pd

    from bench_gui_stall import _ticking, distribution, settle
    from napari_wbcseg.schema import labels_layer_kwargs
    from test_review_gallery_load import grid_of_cells

    import napari_wbcseg

    print(f"napari_wbcseg from {Path(napari_wbcseg.__file__).parent}")
    viewer = napari.Viewer()
    viewer.window._qt_window.setGeometry(0, 0, 1920, 1080)
    app = napari.qt.get_qapp()
    image, nucleus, cytoplasm, cell_type = grid_of_cells()
    viewer.add_image(image, name="grid", rgb=True)
    layers = {k: viewer.add_labels(a, **labels_layer_kwargs("grid", k)) for k, a in
              (("nucleus", nucleus), ("cytoplasm", cytoplasm), ("cell_type", cell_type))}
    ids = np.arange(1, 1001)
    layers["nucleus"].features = pd.DataFrame({"index": ids, "confidence": (ids % 100) / 100})
    settle(app)
    t0 = time.perf_counter()
    state = {}

    def opened():
        if "g" not in state:
            _, state["g"] = viewer.window.add_plugin_dock_widget("napari-wbcseg", "Review cells")
        return len(state["g"].model.rows.cells) == 1000

    report = {"open": _ticking(app, opened, tail_s=1.0)}
    g = state["g"]
    print(f"open: 1,000 cells listed in {time.perf_counter() - t0:.2f} s")
    settle(app)
    bar = g.view.verticalScrollBar()
    steps = list(range(0, bar.maximum() + 1, 40)) + list(range(bar.maximum(), -1, -40))
    state["i"], state["next"] = 0, 0.0

    def scrolled():
        now = time.perf_counter()
        if now >= state["next"] and state["i"] < len(steps):
            bar.setValue(steps[state["i"]])
            state["i"] += 1
            state["next"] = now + 0.02
        return state["i"] >= len(steps)

    report["scroll"] = _ticking(app, scrolled, tail_s=1.0)
    made = len(g.model._cache)
    g.set_current_row(1)

    def reclassifying(every_s):
        state["k"], state["next"] = 0, 0.0

        def press():
            now = time.perf_counter()
            if state["k"] < 20 and now >= state["next"]:
                g.on_key(str(state["k"] % 5 + 1))
                state["k"] += 1
                state["next"] = now + every_s
            return state["k"] >= 20
        return press

    report["reclassify x20"] = _ticking(app, reclassifying(0.0), tail_s=1.0)
    settle(app)
    report["reclassify /150 ms"] = _ticking(app, reclassifying(0.15), tail_s=1.0)
    print(f"thumbnails made: {made} of 1000 after scrolling top to bottom and back "
          f"({len(steps)} steps, maximum {bar.maximum()} px)")
    for phase, gaps in report.items():
        d = distribution(gaps)
        print(f"{phase:>18}: " + ", ".join(f"{k} {v:.0f}" for k, v in d.items()))
    viewer.close()


if __name__ == "__main__":
    main()
