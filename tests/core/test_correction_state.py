"""Review state and grouped undo bookkeeping of the correction widget (pure Python)."""
import pytest

from napari_wbcseg.core.correction_state import ReviewState, UndoGroups


def test_review_state_round_trip_and_pruning():
    s = ReviewState.from_dict({"reviewed": True, "reviewed_cells": [3, 1, 3]})
    assert s.reviewed and s.cells == {1, 3}
    assert s.to_dict() == {"reviewed": True, "reviewed_cells": [1, 3]}
    assert s.to_dict(existing=[3, 4]) == {"reviewed": True, "reviewed_cells": [3]}
    assert ReviewState().to_dict() == {"reviewed": False, "reviewed_cells": None}
    assert ReviewState.from_dict(None) == ReviewState()
    assert s.toggle_cell(2) is True and s.toggle_cell(2) is False and 2 not in s.cells
    with pytest.raises(ValueError):
        s.toggle_cell(0)


def test_undo_groups_steps_strokes_and_redo():
    g = UndoGroups()
    with g.step():
        g.record("nucleus")
        g.record("cell_type")
    with g.step():
        pass  # an empty step leaves no group
    g.record("cytoplasm")  # a brush stroke ...
    with g.extend_last():
        g.record("cytoplasm")  # ... and the repair after it: one step
        g.record("cell_type")
    assert len(g) == 2
    assert g.pop_undo() == ["cell_type", "cytoplasm", "cytoplasm"]
    assert g.can_redo and g.pop_redo() == ["cytoplasm", "cytoplasm", "cell_type"]
    assert g.pop_undo() == ["cell_type", "cytoplasm", "cytoplasm"]
    assert g.pop_undo() == ["cell_type", "nucleus"]
    assert g.pop_undo() is None
    g.record("nucleus")  # a new change drops what could be redone
    assert not g.can_redo and len(g) == 1
    with g.step():
        with g.step():  # nested steps join the outer one
            g.record("nucleus")
        g.record("cytoplasm")
    assert g.pop_undo() == ["cytoplasm", "nucleus"]
