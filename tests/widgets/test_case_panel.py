"""The review gallery's case panel: save a case with the open images, restore it on
reopening, a draft report (PDF parsed back), signing (read-only v1), and refusals (an
empty case, no project, a project locked by another window) as one notification."""
from __future__ import annotations

import io
import json
import stat
from types import SimpleNamespace

import numpy as np
import pytest

from napari_wbcseg._widgets import case_panel as cp_module
from napari_wbcseg._widgets import case_panel_actions as actions_module
from napari_wbcseg._widgets import project_panel as pp_module
from napari_wbcseg._widgets import review_gallery_actions as ga_module
from napari_wbcseg._widgets.case_panel import add_case_panel
from napari_wbcseg.schema import labels_layer_kwargs

GALLERY, CORRECT = "Review cells", "Correct white-cell labels"
KINDS = ("nucleus", "cytoplasm", "cell_type")
FIELDS = ("field 1", "field 2")


@pytest.fixture(scope="module")
def smears():
    from napari_wbcseg.core.synthetic import synthetic_smear

    return [synthetic_smear(shape=(192, 224), n_wbc=2, seed=seed, classes=[1, 2])
            for seed in (1, 2)]


@pytest.fixture
def notes(monkeypatch):
    shown = {"info": [], "warning": [], "error": []}
    for kind in shown:
        for module in (cp_module, actions_module, pp_module, ga_module):
            if hasattr(module, f"show_{kind}"):
                monkeypatch.setattr(module, f"show_{kind}", shown[kind].append)
    return shown


def _add_field(viewer, smear, name, empty=False):
    viewer.add_image(smear.image, name=name, rgb=True)
    for k in KINDS:
        data = np.zeros_like(getattr(smear, k)) if empty else getattr(smear, k).copy()
        viewer.add_labels(data, **labels_layer_kwargs(name, k))


def _panel(viewer):
    _, gallery = viewer.window.add_plugin_dock_widget("napari-wbcseg", GALLERY)
    # the gallery adds its own panel once helper E wires it in; else add it here
    panel = getattr(gallery, "case_panel", None) or add_case_panel(gallery)
    return gallery, panel


@pytest.fixture
def setup(make_napari_viewer, smears, notes, tmp_path):
    viewer = make_napari_viewer()
    for smear, name in zip(smears, FIELDS):
        _add_field(viewer, smear, name)
    _, correct = viewer.window.add_plugin_dock_widget("napari-wbcseg", CORRECT)
    gallery, panel = _panel(viewer)
    return SimpleNamespace(viewer=viewer, cw=correct, g=gallery, p=panel, notes=notes,
                           proj=tmp_path / "proj", make=make_napari_viewer)


def _wait(qtbot, panel):
    qtbot.waitUntil(lambda: panel.worker is None, timeout=60000)


def _fill(p, case_id="C-001", slide="S 17/2024", kind="blood", target=200, wbc=7.2):
    p.case_id.value, p.slide_id.value, p.kind.value = case_id, slide, kind
    p.case_target.value, p.wbc_count.value = target, wbc


def _saved_project(s, qtbot):
    errors = len(s.notes["error"])
    assert s.cw.save_project(s.proj) == list(FIELDS)
    _fill(s.p)
    assert s.p.save_case() is not None
    assert not s.p.report_button.enabled  # busy while the worker writes
    _wait(qtbot, s.p)
    assert s.p.report_button.enabled and len(s.notes["error"]) == errors


def _cases(folder):
    return json.loads((folder / "cases.json").read_text())["cases"]


def test_save_case_records_the_open_images(setup, qtbot):
    s = setup
    _saved_project(s, qtbot)
    (case,) = _cases(s.proj)
    assert (case["case_id"], case["slide_id"], case["images"]) == ("C-001", "S 17/2024",
                                                                   list(FIELDS))
    assert (case["kind"], case["target"], case["wbc_count"]) == ("blood", 200, 7.2)
    assert "Saved case C-001 (2 fields)" in s.notes["info"][-1]


def test_reopening_the_project_restores_the_case_and_review(setup, qtbot):
    s = setup
    s.cw.layer_set.value = FIELDS[0]
    s.cw.select(1)
    assert s.cw.toggle_cell_reviewed()
    _saved_project(s, qtbot)

    viewer2 = s.make()
    _, cw2 = viewer2.window.add_plugin_dock_widget("napari-wbcseg", CORRECT)
    g2, p2 = _panel(viewer2)
    assert p2.case_id.value == ""
    s.cw.release_project_lock()  # as if the first window had closed
    assert cw2.open_project(s.proj) == list(FIELDS)
    assert (p2.case_id.value, p2.slide_id.value, p2.kind.value) == ("C-001", "S 17/2024",
                                                                    "blood")
    assert (p2.case_target.value, p2.wbc_count.value) == (200, pytest.approx(7.2))
    assert g2.target.value == 200  # the gallery counts towards the case's target
    qtbot.waitUntil(lambda: g2.reviewed_label.value == "1 of 4 reviewed", timeout=5000)
    qtbot.waitUntil(lambda: "of 200 cells counted" in g2.progress_label.value, timeout=10000)


def test_report_writes_a_pdf_with_the_case(setup, qtbot, monkeypatch, tmp_path):
    from pypdf import PdfReader

    s = setup
    _saved_project(s, qtbot)
    out = tmp_path / "out" / "C-001.pdf"
    out.parent.mkdir()
    monkeypatch.setattr(cp_module.CasePanel, "_ask_report_path", lambda self: str(out))
    s.p.report_button.native.click()
    _wait(qtbot, s.p)
    assert not s.notes["error"]
    text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(out.read_bytes())).pages)
    assert "C-001" in text and "S 17/2024" in text and "DRAFT" in text
    assert str(out) in s.notes["info"][-1]


def test_sign_asks_then_writes_a_read_only_version(setup, qtbot, monkeypatch):
    from napari_wbcseg.report import signed_versions

    s = setup
    _saved_project(s, qtbot)
    s.p.reviewer.value = "Dr A. Smith"
    questions = []
    monkeypatch.setattr(cp_module.CasePanel, "_confirm",
                        lambda self, q: questions.append(q) and False)
    s.p.sign_button.native.click()
    _wait(qtbot, s.p)
    assert "C-001" in questions[0] and "Dr A. Smith" in questions[0]
    assert signed_versions(s.proj, "C-001") == []  # declined: nothing signed
    monkeypatch.setattr(cp_module.CasePanel, "_confirm", lambda self, q: True)
    s.p.sign_button.native.click()
    _wait(qtbot, s.p)
    (v1,) = signed_versions(s.proj, "C-001")
    assert v1.version == 1 and not s.notes["error"]
    for path in (v1.pdf_path, v1.html_path, v1.json_path):
        assert not path.stat().st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)
    assert "version 1" in s.notes["info"][-1] and str(v1.pdf_path) in s.notes["info"][-1]


def test_an_empty_case_is_one_notification_and_no_file(make_napari_viewer, smears, notes,
                                                       qtbot, tmp_path, monkeypatch):
    viewer = make_napari_viewer()
    _add_field(viewer, smears[0], "blank", empty=True)
    _, cw = viewer.window.add_plugin_dock_widget("napari-wbcseg", CORRECT)
    _, p = _panel(viewer)
    assert cw.save_project(tmp_path / "proj") == ["blank"]
    _fill(p)
    out = tmp_path / "empty.pdf"
    monkeypatch.setattr(cp_module.CasePanel, "_ask_report_path", lambda self: str(out))
    p.make_report()
    _wait(qtbot, p)
    assert len(notes["error"]) == 1 and "no counted cells" in notes["error"][0]
    assert not out.exists() and not (tmp_path / "proj" / "cases.json").exists()


def test_no_project_yet_and_a_locked_project_are_refused(setup, qtbot):
    from napari_wbcseg.review import ProjectLock

    s = setup
    _fill(s.p)
    assert s.p.save_case() is None
    assert len(s.notes["error"]) == 1 and "save the images as a project" in s.notes["error"][0]
    _saved_project(s, qtbot)
    before = (s.proj / "cases.json").read_bytes()
    s.cw.release_project_lock()
    other = ProjectLock(s.proj).acquire()  # another window holds the project
    try:
        s.p.slide_id.value = "changed"
        assert s.p.save_case() is None
        assert len(s.notes["error"]) == 2 and "another napari window" in s.notes["error"][1]
        assert (s.proj / "cases.json").read_bytes() == before
    finally:
        other.release()


def test_a_bad_field_is_one_notification(setup, qtbot):
    s = setup
    assert s.cw.save_project(s.proj)
    _fill(s.p, case_id="C 001/x")
    assert s.p.save_case() is None
    assert len(s.notes["error"]) == 1 and "case id" in s.notes["error"][0]
    _fill(s.p, slide="")
    assert s.p.save_case() is None and "slide id is empty" in s.notes["error"][1]
    assert not (s.proj / "cases.json").exists()


def test_kind_sets_the_target_and_every_control_has_a_tooltip(setup):
    from napari_wbcseg._widgets.dock_help import native_controls_without_tooltip

    p = setup.p
    assert p.case_target.value == 100
    p.kind.value = "marrow"
    assert p.case_target.value == 500 and setup.g.target.value == 500
    p.case_target.value = 200
    p.kind.value = "blood"
    assert p.case_target.value == 100
    assert native_controls_without_tooltip(p.native) == []
