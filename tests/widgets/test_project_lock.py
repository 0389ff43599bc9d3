"""One writer per project: two napari windows each with a Correct dock on the same project;
the second one's saves are refused (one notification, files unchanged) until the first
dock closes.  Also: a project opened in the second window warns, and the project's class
table (group, hotkey) reaches the layers whole."""
from __future__ import annotations

import numpy as np
import pytest

from napari_wbcseg._widgets import correction_widget as cw_module
from napari_wbcseg._widgets import project_panel as pp_module
from napari_wbcseg.review.lock import LOCK_FILE
from napari_wbcseg.schema import labels_layer_kwargs

CORRECT = "Correct white-cell labels"
KINDS = ("nucleus", "cytoplasm", "cell_type")


@pytest.fixture(scope="module")
def smear():
    from napari_wbcseg.core.synthetic import synthetic_smear

    return synthetic_smear(shape=(128, 160), n_wbc=2, seed=3, classes=[1, 2])


@pytest.fixture
def notes(monkeypatch):
    shown = {"info": [], "warning": [], "error": []}
    for kind in shown:
        for module in (cw_module, pp_module):
            if hasattr(module, f"show_{kind}"):
                monkeypatch.setattr(module, f"show_{kind}", shown[kind].append)
    return shown


def _window(make_napari_viewer, smear, name="field"):
    viewer = make_napari_viewer()
    viewer.add_image(smear.image, name=name, rgb=True)
    for k in KINDS:
        viewer.add_labels(getattr(smear, k).copy(), **labels_layer_kwargs(name, k))
    dock, widget = viewer.window.add_plugin_dock_widget("napari-wbcseg", CORRECT)
    return viewer, dock, widget


def _files(folder):
    return {p.relative_to(folder): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file()}


def test_the_second_window_cannot_save_until_the_first_closes(make_napari_viewer, smear, notes,
                                                              tmp_path, qtbot):
    proj = tmp_path / "proj"
    viewer1, dock1, w1 = _window(make_napari_viewer, smear)
    viewer2, _, w2 = _window(make_napari_viewer, smear)
    assert w1.save_project(proj) == ["field"] and (proj / LOCK_FILE).is_file()
    before = _files(proj)
    w2.current.layers["cell_type"].data = np.where(smear.cell_type > 0, 3, 0).astype(
        smear.cell_type.dtype)  # a change the refused saves must not write
    assert w2.save_project(proj) == []
    assert len(notes["error"]) == 1 and "another napari window" in notes["error"][0]
    assert w2.save_project_in_background(proj) is None  # the button's path too
    assert len(notes["error"]) == 2
    assert _files(proj) == before

    viewer1.window.remove_dock_widget(dock1)  # its lock goes with it
    assert not (proj / LOCK_FILE).exists()
    worker = w2.save_project_in_background(proj)
    assert worker is not None
    qtbot.waitUntil(lambda: w2.project_worker is None, timeout=30000)
    assert len(notes["error"]) == 2 and (proj / LOCK_FILE).is_file()
    assert _files(proj) != before  # the second window's labels were written


def test_opening_a_project_held_elsewhere_warns(make_napari_viewer, smear, notes, tmp_path):
    proj = tmp_path / "proj"
    _, _, w1 = _window(make_napari_viewer, smear)
    assert w1.save_project(proj) == ["field"]
    viewer2 = make_napari_viewer()
    _, w2 = viewer2.window.add_plugin_dock_widget("napari-wbcseg", CORRECT)
    assert w2.open_project(proj) == ["field"]
    assert len(notes["warning"]) == 1 and "another napari window" in notes["warning"][0]
    assert "refused" in notes["warning"][0]
    assert not w2._lock_project(proj) and len(notes["error"]) == 1


def test_saving_elsewhere_moves_the_lock(make_napari_viewer, smear, notes, tmp_path):
    _, _, w = _window(make_napari_viewer, smear)
    assert w.save_project(tmp_path / "a") == ["field"]
    assert w.save_project(tmp_path / "a") == ["field"]  # the same lock kept
    assert w.save_project(tmp_path / "b") == ["field"]
    assert not (tmp_path / "a" / LOCK_FILE).exists() and (tmp_path / "b" / LOCK_FILE).is_file()
    assert not notes["error"]


def test_the_class_table_reaches_the_layers_whole(make_napari_viewer, smear, notes, tmp_path):
    from napari_wbcseg.io.project import create_project, read_project
    from napari_wbcseg.schemes.tables import classes_to_json

    proj = tmp_path / "marrow"
    create_project(proj, "marrow-icsh")
    codes = [c.code for c in read_project(proj).classes]
    cell_type = np.where(smear.cell_type > 0, codes[0], 0).astype(smear.cell_type.dtype)
    from napari_wbcseg.io.project import save_image_entry

    save_image_entry(proj, "field", smear.image, smear.nucleus, smear.cytoplasm, cell_type)
    viewer = make_napari_viewer()
    _, w = viewer.window.add_plugin_dock_widget("napari-wbcseg", CORRECT)
    assert w.open_project(proj) == ["field"]
    table = viewer.layers["field cell type"].metadata["classes"]
    assert table == classes_to_json(read_project(proj).classes)
    assert any(row.get("hotkey") for row in table) and any(row.get("group") for row in table)
