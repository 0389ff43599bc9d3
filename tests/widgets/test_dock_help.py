"""Every dock of the plugin explains itself: a tooltip on every control it shows (its
own Qt buttons included) and a Help link to an existing page of docs/."""
from __future__ import annotations

from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[2] / "docs"
DOCKS = {"AHE-Retinex colour correction": "preprocessing.md",
         "Segment white blood cells": "segmentation.md",
         "Correct white-cell labels": "correction.md",
         "Train / fine-tune a network": "finetune.md",
         "Review cells": "review.md"}


@pytest.mark.parametrize("name", DOCKS)
def test_every_control_has_a_tooltip_and_the_dock_a_help_link(make_napari_viewer, name):
    from napari_wbcseg._widgets.dock_help import help_links, native_controls_without_tooltip

    viewer = make_napari_viewer()
    _, widget = viewer.window.add_plugin_dock_widget("napari-wbcseg", name)
    assert native_controls_without_tooltip(widget.native) == []
    assert help_links(widget.native) == [DOCKS[name]]
    assert (DOCS / DOCKS[name]).is_file()


def test_the_tooltip_check_finds_a_bare_qt_button(qtbot):
    from qtpy.QtWidgets import QPushButton, QSpinBox, QVBoxLayout, QWidget

    from napari_wbcseg._widgets.dock_help import native_controls_without_tooltip

    root = QWidget()
    qtbot.addWidget(root)
    layout = QVBoxLayout(root)
    bare, tipped, spin = QPushButton("bare"), QPushButton("tipped"), QSpinBox()
    tipped.setToolTip("does something")
    spin.setToolTip("a number")  # its inner line edit shares it
    for w in (bare, tipped, spin):
        layout.addWidget(w)
    assert native_controls_without_tooltip(root) == ["QPushButton 'bare'"]
