"""Packaging contract: manifest, napari discovery, reader in the viewer, lazy torch."""
import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest


def test_npe2_validate():
    npe2 = pytest.importorskip("npe2")
    from npe2 import PluginManifest

    manifest = PluginManifest.from_distribution("napari-wbcseg")
    assert manifest.name == "napari-wbcseg"
    proc = subprocess.run([sys.executable, "-m", "npe2", "validate", "napari-wbcseg"],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_every_manifest_command_imports():
    from npe2 import PluginManifest

    manifest = PluginManifest.from_distribution("napari-wbcseg")
    for cmd in manifest.contributions.commands:
        module, attr = cmd.python_name.split(":")
        assert callable(getattr(__import__(module, fromlist=[attr]), attr)), cmd.id


def test_viewer_opens_files_through_plugin(make_napari_viewer, tmp_path):
    import cv2

    from napari_wbcseg.core.synthetic import synthetic_smear

    image = synthetic_smear(shape=(300, 300), n_wbc=1, seed=4).image
    path = tmp_path / "004.bmp"
    cv2.imwrite(str(path), np.ascontiguousarray(image[..., ::-1]))
    viewer = make_napari_viewer()
    layers = viewer.open(str(path), plugin="napari-wbcseg")
    assert len(layers) == 1 and layers[0].rgb and layers[0].data.shape == (300, 300, 3)
    assert np.array_equal(np.asarray(layers[0].data), image)


def test_viewer_corrupt_file_adds_nothing(make_napari_viewer, tmp_path, monkeypatch):
    import napari.utils.notifications as notifications

    shown = []
    monkeypatch.setattr(notifications, "show_error", shown.append)
    viewer = make_napari_viewer()
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n broken")
    viewer.open(str(bad), plugin="napari-wbcseg")
    assert len(viewer.layers) == 0 and "broken.png" in shown[0]


def test_synthetic_sample_through_manifest(make_napari_viewer):
    viewer = make_napari_viewer()
    viewer.open_sample("napari-wbcseg", "synthetic_smear")
    names = [l.name for l in viewer.layers]
    assert names[0] == "synthetic smear"
    assert {"synthetic smear (truth) nucleus", "synthetic smear (truth) cytoplasm",
            "synthetic smear (truth) cell type"} <= set(names)
    cell_type = viewer.layers["synthetic smear (truth) cell type"]
    # fixed schema colours: basophil (5) red, eosinophil (4) green
    assert np.allclose(cell_type.colormap.map(5)[..., :3], [1.0, 32 / 255, 32 / 255], atol=0.01)
    assert np.allclose(cell_type.colormap.map(4)[..., :3], [0.0, 200 / 255, 0.0], atol=0.01)


SCRIPT = textwrap.dedent("""
    import json, sys
    import napari
    viewer = napari.Viewer(show=False)
    viewer.window.add_plugin_dock_widget("napari-wbcseg", "AHE-Retinex colour correction")
    viewer.open_sample("napari-wbcseg", "synthetic_smear")
    import napari_wbcseg
    napari_wbcseg.ahe_retinex(viewer.layers[0].data)
    print(json.dumps({"torch": "torch" in sys.modules, "layers": len(viewer.layers)}))
    viewer.close()
""")


def test_opening_napari_with_plugin_does_not_import_torch():
    proc = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result == {"torch": False, "layers": 4}


def test_wheel_ships_the_manifest(tmp_path):
    """napari.yaml lives at the top of the repo; the wheel must carry it inside the package."""
    import zipfile
    from pathlib import Path

    repo = Path(__file__).resolve().parents[1]
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                           "-q", "-w", str(tmp_path), str(repo)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    [wheel] = tmp_path.glob("napari_wbcseg-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        shipped = zf.read("napari_wbcseg/napari.yaml")
        entry_points = zf.read(next(n for n in zf.namelist() if n.endswith("entry_points.txt")))
    assert shipped == (repo / "napari.yaml").read_bytes()
    assert b"napari-wbcseg = napari_wbcseg:napari.yaml" in entry_points


def test_widgets_keep_triton_out_of_the_napari_process():
    """torchvision imports triton, whose LLVM crashes napari on software OpenGL (Mesa);
    once the widgets package is loaded, torchvision must come without it."""
    import subprocess
    import sys

    code = ("import sys; import napari_wbcseg._widgets; import torchvision; "
            "assert sys.modules.get('triton') is None, 'triton was imported'")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-500:]
