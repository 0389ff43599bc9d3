"""Tooltips of the docks' controls, in one place (attribute name -> text).

A control that already has a tooltip (given where it is built, e.g. one that depends on
the model) keeps it; :func:`apply_tooltips` fills in the rest.  ``tests/widgets/
test_dock_help.py`` checks that no control of any dock is left without one.
"""
from __future__ import annotations

SEGMENT = {
    "image": "the RGB smear or marrow image to segment",
    "model": "the network that finds nucleus and cytoplasm; * = the default "
             "(see `napari-wbcseg models` and docs/models.md)",
    "preprocess": "colour correction before the network: 'as trained' does what the model "
                  "card asks (AHE-Retinex for models trained on corrected images)",
    "run_button": "segment the image in the background; a second run on the same image "
                  "replaces its result layers (Undo replace puts them back)",
    "export_button": "save the differential count shown above (it follows your corrections) "
                     "as a CSV file",
    "counts": "the differential count of the current label layers: follows every "
              "correction and undo",
}

CORRECT = {
    "layer_set": "which image's nucleus / cytoplasm / cell-type layers to correct",
    "delete_button": "remove the selected cell from all three layers",
    "merge_button": "merge the selected cell with the Shift+clicked second one",
    "fill_button": "fill holes inside the selected cell's nucleus and cytoplasm",
    "line_button": "draw a line across the selected cell (a Shapes layer), then 'Split along "
                   "line'",
    "split_line_button": "cut the cell along the drawn line into two cells",
    "seeds_button": "click one point in each part of the selected cell (a Points layer), then "
                    "'Split by seeds'",
    "split_seeds_button": "split the cell into one cell per seed (watershed)",
    "part": "which region the brush paints: nucleus or cytoplasm",
    "paint_button": "paint the chosen region with napari's brush; 'Stop painting' makes the "
                    "three layers consistent again",
    "stop_paint_button": "finish painting and reconcile the layers (one undo step)",
    "undo_button": "undo the last correction in all three layers (Ctrl+Z)",
    "redo_button": "redo the last undone correction (Ctrl+Shift+Z)",
    "image_reviewed": "mark the whole image as checked: training then trusts every cell",
    "cell_reviewed_button": "mark the selected cell as checked (training trusts reviewed "
                            "cells of images not reviewed as a whole)",
    "counts": "the differential count of this image's current labels (the Segment dock shows "
              "the same)",
    "open_button": "open an annotation project (project.json) with its images and labels",
    "save_button": "save the open images and their corrected labels as an annotation project "
                   "(all files or none)",
}

TRAIN = {
    "use_viewer": "train on the images in the viewer whose labels are marked reviewed "
                  "(Correct dock)",
    "add_folder_button": "add an annotation-project folder to train on",
    "remove_folder_button": "remove the selected project folders from the list",
    "architecture": "the network to train (see docs/models.md)",
    "epochs": "passes of training; the best one, scored on the validation images, is kept",
    "steps": "batches of crops per epoch",
    "lr": "learning rate of the AdamW one-cycle schedule; lower it if the loss jumps",
    "batch": "crops per batch; smaller uses less memory",
    "crop": "side of the square training crops, in pixels",
    "augment": "random flips, rotations, zoom and colour changes of every crop",
    "val_fraction": "share of the reviewed images held out to score each epoch and the "
                    "starting model (0 = score on up to 8 training images)",
    "name": "name of the new user model (no path; not a bundled model's name)",
    "train_button": "start training in the background; Stop keeps the best epoch so far",
}

EXCHANGE = {
    "export_button": "write the chosen model (weights + card) to a file for a colleague",
    "import_button": "install a model file from a colleague (checked, never unpickled)",
}


REVIEW = {
    "threshold": "cells whose classifier confidence is below this (and not yet reviewed) "
                 "are shown first, under 'needs review' (the Segment dock's 'to check')",
    "target": "cells to count on the open images (100 or 200 for blood, 500 for marrow); "
              "'target reached' shows when the classified, counted cells reach it",
}


def apply_tooltips(owner, table: dict[str, str]) -> None:
    """Give each control ``getattr(owner, name)`` of ``table`` its tooltip, unless it has
    one; a name ``owner`` lacks is an error (the table and the dock must not drift)."""
    for name, text in table.items():
        control = getattr(owner, name)
        if not (control.tooltip or "").strip():
            control.tooltip = text
