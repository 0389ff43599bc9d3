"""Gallery grouping, sorting, hotkeys and row navigation (no Qt)."""
import math

from napari_wbcseg.core.gallery_groups import (
    GalleryCell, GalleryRows, build_groups, class_hotkeys, merge_classes, position_keys)
from napari_wbcseg.schema import DEFAULT_CLASSES, UNIDENTIFIED, CellClass

THREE = (CellClass(7, "blast", "#ff0000"), CellClass(3, "myelocyte", "#00ff00"),
         CellClass(9, "plasma cell", "#0000ff"))


def _cells():
    return [GalleryCell("a", 1, 7, 0.9), GalleryCell("a", 2, 3, 0.3),
            GalleryCell("a", 3, 7, 0.6), GalleryCell("b", 1, UNIDENTIFIED, 0.8),
            GalleryCell("b", 2, 9, math.nan), GalleryCell("b", 3, 3, 0.4, reviewed=True),
            GalleryCell("b", 4, 42, 0.99), GalleryCell("b", 5, 7, 0.7)]


def test_needs_review_first_then_the_table_order():
    groups = build_groups(_cells(), THREE, threshold=0.5)
    assert [g.title for g in groups] == ["needs review", "blast", "myelocyte", "plasma cell"]
    # unidentified, an unknown code, and an unreviewed low confidence; lowest first
    assert [c.key for c in groups[0].cells] == [("a", 2), ("b", 1), ("b", 4)]
    assert [c.key for c in groups[1].cells] == [("a", 3), ("b", 5), ("a", 1)]
    assert [c.key for c in groups[2].cells] == [("b", 3)]  # reviewed: out of "needs review"
    assert [c.key for c in groups[3].cells] == [("b", 2)]  # no confidence: last


def test_threshold_moves_cells():
    groups = build_groups(_cells(), THREE, threshold=0.65)
    assert ("a", 3) in [c.key for c in groups[0].cells]
    assert sum(len(g.cells) for g in groups) == len(_cells())  # each cell once


def test_rows_and_navigation():
    rows = GalleryRows(build_groups(_cells(), THREE, 0.5))
    assert rows.cell_at(0) is None and rows.cell_at(1).key == ("a", 2)
    last_review = rows.row_of(("b", 4))
    assert rows.cell_at(rows.next_cell_row(last_review)).key == ("a", 3)  # header skipped
    assert rows.next_cell_row(1, -1) is None
    assert rows.reviewed_text() == "1 of 8 reviewed"
    assert rows.header_text(2) == "myelocyte: 1 cells, 1 reviewed"


def test_hotkeys_from_the_table_else_position():
    assert class_hotkeys(THREE) == {"1": 7, "2": 3, "3": 9, "u": UNIDENTIFIED,
                                    "0": UNIDENTIFIED}
    own = (CellClass(7, "blast", "#ff0000", hotkey="b"), CellClass(3, "myelocyte", "#00ff00"))
    assert class_hotkeys(own)["b"] == 7 and class_hotkeys(own)["2"] == 3
    assert position_keys(own) == {"1": 7, "2": 3, "0": UNIDENTIFIED}
    assert class_hotkeys(DEFAULT_CLASSES)["5"] == 5


def test_merge_classes_keeps_first_order():
    merged = merge_classes([THREE[:2], (THREE[1], CellClass(11, "x", "#111111"))])
    assert [c.code for c in merged] == [7, 3, 11]


def test_marrow_hotkeys_zero_is_metamyelocyte_u_unidentified():
    from napari_wbcseg.schemes import builtin

    marrow = builtin.load_scheme("marrow-icsh").classes  # 16 classes + unidentified
    keys = class_hotkeys(marrow)
    assert keys["0"] == 10 and keys["u"] == UNIDENTIFIED  # "0" claimed by metamyelocyte
    assert (keys["7"], keys["p"], keys["a"], keys["d"], keys["m"]) == (7, 11, 12, 15, 16)
    assert keys["1"] == 1 and keys["6"] == 6  # own hotkeys, not positions (1 is blast's)
    assert {c.code for c in marrow} == set(keys.values())  # every class reachable
    # a class's own hotkey wins over an earlier class's position; "u" stays unidentified
    mixed = (CellClass(7, "blast", "#ff0000"), CellClass(3, "myelocyte", "#00ff00", hotkey="1"),
             CellClass(9, "x", "#0000ff", hotkey="u"))
    assert class_hotkeys(mixed) == {"1": 3, "u": UNIDENTIFIED, "0": UNIDENTIFIED}
