"""How many GC-tracked Python objects the viewer holds, and whose (run under Xvfb).

    xvfb-run -a -s "-screen 0 1920x1080x24" .venv/bin/python benchmarks/bench_gc_objects.py [--json F]

A full (generation-2) collection of CPython walks every tracked object that is not
frozen, holding the GIL, so its pause grows with the objects alive.  This script counts
them (deterministic, unlike times on a loaded machine) at the points of a session the
stall benchmark measures: napari and the plugin started, torch imported, one Segment of a
1536x2048 field with its layers, a second, one training epoch.  For each point: objects
tracked, those in the permanent (frozen) generation, the change since the previous point
by the top-level package of each object's type and by type name, and the collections the
step cost (``gc.get_stats``).  ``--policy`` applies ``napari_wbcseg.core.gc_policy``
(the freezes of the docks and workers), as the plugin does by default; ``--no-policy``
sets NAPARI_WBCSEG_GC_POLICY=0 so that nothing is frozen.
"""
from __future__ import annotations

import collections
import gc
import os
import sys
import time

sys.modules.setdefault("triton", None)


def _owner(o) -> str:
    """Top-level package of an object's type (``builtins`` for dict, list, tuple...)."""
    mod = type(o).__dict__.get("__module__") if isinstance(type(o), type) else None
    if not isinstance(mod, str):
        mod = getattr(type(o), "__module__", "?")
    if mod == "builtins" and isinstance(getattr(o, "__module__", None), str):
        mod = o.__module__  # functions, classes: where they were defined
    return mod.split(".")[0] if isinstance(mod, str) else "?"


def census(top: int = 12) -> dict:
    gc.collect()
    objs = gc.get_objects()
    by_pkg = collections.Counter(_owner(o) for o in objs)
    by_type = collections.Counter(type(o).__qualname__ for o in objs)
    del objs
    return {"tracked": sum(by_pkg.values()), "frozen": gc.get_freeze_count(),
            "ours": by_pkg.get("napari_wbcseg", 0),
            "by_package": dict(by_pkg.most_common(top)),
            "by_type": dict(by_type.most_common(top))}


def holders_by_type(type_names=("dict", "tuple", "list", "function"), top: int = 10) -> dict:
    """Who holds the objects of each builtin type: one pass over every tracked object,
    counting the type of the first holder (its module and name) of each target object
    (answers 'whose are these dicts?')."""
    objs = gc.get_objects()
    targets = {id(o): type(o).__qualname__ for o in objs
               if type(o).__qualname__ in type_names}
    seen, out = set(), {t: collections.Counter() for t in type_names}
    for h in objs:
        ht = type(h)
        for r in gc.get_referents(h):
            i = id(r)
            if i in targets and i not in seen:
                seen.add(i)
                label = ht.__qualname__
                if ht is dict or ht is tuple or ht is list:  # one more level: who holds h
                    label += "@" + _owner(h)
                else:
                    label = f"{_owner(h)}.{label}"
                out[targets[i]][label] += 1
    del objs
    return {t: dict(c.most_common(top)) for t, c in out.items()}


def attribute_new(before_ids: set, top: int = 10) -> dict:
    """New tracked objects (alive, not in ``before_ids``) by who made them: the package of
    the innermost frame of their allocation (``tracemalloc``, started before the step),
    and for those made under a call from our code, the outermost of our frames."""
    import tracemalloc

    inner, ours = collections.Counter(), collections.Counter()
    for o in gc.get_objects():
        if id(o) in before_ids:
            continue
        tb = tracemalloc.get_object_traceback(o)
        if tb is None:
            inner["(untraced)"] += 1
            continue
        frames = list(tb)  # oldest call first
        inner[_package_of(frames[-1].filename)] += 1
        for fr in frames:  # the outermost of our frames: which of our calls made it
            if "napari_wbcseg" in fr.filename:
                ours[f"{fr.filename.split('napari_wbcseg/')[-1]}:{fr.lineno}"] += 1
                break
    return {"innermost": dict(inner.most_common(top)),
            "under_our_frame": dict(ours.most_common(top))}


def _package_of(filename: str) -> str:
    parts = filename.replace("\\", "/").split("/")
    for key in ("site-packages", "lib", "src"):
        if key in parts:
            rest = parts[parts.index(key) + 1:]
            if key == "lib" and rest and rest[0].startswith("python"):
                rest = rest[1:]
            if rest:
                return rest[0].removesuffix(".py")
    return parts[-1]


def _diff(a: dict, b: dict, key: str, top: int = 8) -> dict:
    d = collections.Counter(b[key])
    d.subtract(a[key])
    return {k: v for k, v in d.most_common(top) if v}


def _wait(app, until, tail_s=1.0):
    end = float("inf")
    while time.perf_counter() < end:
        app.processEvents()
        time.sleep(0.002)
        if end == float("inf") and until():
            end = time.perf_counter() + tail_s


def main(argv=None) -> int:
    import argparse
    import json
    import tempfile

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--json", default=None, help="also write the counts here")
    p.add_argument("--no-policy", action="store_true",
                   help="NAPARI_WBCSEG_GC_POLICY=0: no freezes, default thresholds")
    p.add_argument("--holders", action="store_true",
                   help="also show who holds the dicts / tuples / lists at the end (slow)")
    p.add_argument("--trace", action="store_true",
                   help="attribute the objects a Segment of a new image leaves (tracemalloc)")
    args = p.parse_args(argv)
    if args.no_policy:
        os.environ["NAPARI_WBCSEG_GC_POLICY"] = "0"
    os.environ["NAPARI_WBCSEG_MODELS"] = tempfile.mkdtemp(prefix="wbcseg-gcobj-")
    import numpy as np
    import napari

    from napari_wbcseg.core.synthetic import synthetic_smear
    from napari_wbcseg.schema import labels_layer_kwargs

    points, stats = [], []

    def mark(name):
        s = census()
        s["gc_stats"] = [dict(g) for g in gc.get_stats()]
        s["rss_mb"] = _rss_mb()
        points.append((name, s))

    viewer = napari.Viewer(show=True)
    app = napari.qt.get_qapp()
    sm = synthetic_smear(seed=1)
    image = viewer.add_image(np.tile(sm.image, (2, 2, 1)), name="f", rgb=True)
    _, seg = viewer.window.add_plugin_dock_widget("napari-wbcseg", "Segment white blood cells")
    seg.image.value, seg.device.value = image, "cpu"
    _wait(app, lambda: True)
    mark("napari + Segment dock")
    import torch  # noqa: F401
    import segmentation_models_pytorch  # noqa: F401
    mark("torch + smp imported")
    for k in range(2):
        seg.run()
        _wait(app, lambda: seg._worker is None)
        mark(f"segment {k + 1} (+ layers)")
    traced = {}
    if args.trace:
        import tracemalloc

        gc.collect()
        before_ids = {id(o) for o in gc.get_objects()}
        tracemalloc.start(40)
    other = viewer.add_image(image.data, name="f2", rgb=True)
    seg.image.value = other
    seg.run()
    _wait(app, lambda: seg._worker is None)
    if args.trace:
        gc.collect()
        traced = attribute_new(before_ids)
        tracemalloc.stop()
        del before_ids
    mark("segment, new image (add)")
    for i, seed in enumerate((3, 4)):
        s = synthetic_smear(shape=(384, 512), n_wbc=4, seed=seed)
        viewer.add_image(s.image, name=f"t{i}", rgb=True)
        for k in ("nucleus", "cytoplasm", "cell_type"):
            viewer.add_labels(getattr(s, k), metadata={"wbcseg_reviewed": True},
                              **labels_layer_kwargs(f"t{i}", k))
    _, tw = viewer.window.add_plugin_dock_widget("napari-wbcseg", "Train / fine-tune a network")
    tw.epochs.value, tw.steps.value, tw.batch.value, tw.crop.value = 1, 3, 2, 128
    tw.name.value = f"gc-bench-{int(time.time())}"
    tw.worse_answer = "keep"
    tw._warm_up.join()
    tw.train()
    _wait(app, lambda: tw._worker is None, tail_s=0.5)
    mark("train, 1 epoch")
    holders = {}
    if args.holders:
        holders = holders_by_type()
    viewer.close()

    print(f"GC policy: {'off' if args.no_policy else 'on'}   (counts after gc.collect())")
    print(f"{'point':28}{'tracked':>9}{'frozen':>9}{'gen2 runs':>10}{'gen2 collected':>15}"
          f"{'RSS MB':>8}{'ours':>7}")
    prev = None
    for name, s in points:
        g2 = s["gc_stats"][2]
        print(f"{name:28}{s['tracked']:>9}{s['frozen']:>9}{g2['collections']:>10}"
              f"{g2['collected']:>15}{s['rss_mb']:>8.0f}{s['ours']:>7}")
        if prev is not None:
            s["delta_package"] = _diff(prev, s, "by_package")
            s["delta_type"] = _diff(prev, s, "by_type")
            print(f"    +pkg {s['delta_package']}")
            print(f"    +type {s['delta_type']}")
        prev = s
    print("largest packages at the end:", points[-1][1]["by_package"])
    for t, h in holders.items():
        print(f"holders of {t}: {h}")
    for k, v in traced.items():
        print(f"segment of a new image, objects left, {k}: {v}")
    if args.json:
        from napari_wbcseg.io.atomic import write_text_atomic

        write_text_atomic(args.json, json.dumps(
            {"policy": not args.no_policy, "points": dict(points), "holders": holders,
             "traced": traced},
            indent=1) + "\n")
    return 0


def _rss_mb() -> float:
    """Resident set size now, and the peak so far is in resource.getrusage."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        return float("nan")


if __name__ == "__main__":
    raise SystemExit(main())
