"""Label arrays with huge ids: the schema check costs memory by pixels, not by id value."""
import tracemalloc

import numpy as np
import pytest

from napari_wbcseg.schema import LabelSchemaError, check_labels


def _cell(top_id, dtype):
    nucleus = np.zeros((64, 64), dtype)
    cytoplasm = np.zeros((64, 64), dtype)
    nucleus[10:20, 10:20] = top_id
    cytoplasm[20:30, 10:20] = top_id
    nucleus[40:50, 40:50] = 3
    cell_type = np.where((nucleus > 0) | (cytoplasm > 0), 2, 0).astype(np.uint8)
    return nucleus, cytoplasm, cell_type


@pytest.mark.parametrize("top_id, dtype", [(2**32 - 1, np.uint32), (2**63 - 1, np.int64),
                                           (2**64 - 1, np.uint64), (65535, np.uint16)])
def test_huge_ids_are_checked_in_memory_bounded_by_pixels(top_id, dtype):
    nucleus, cytoplasm, cell_type = _cell(top_id, dtype)
    tracemalloc.start()
    try:
        check_labels(nucleus, cytoplasm, cell_type)
        cell_type[25, 15] = 4  # the cytoplasm of the huge-id cell gets a second class
        with pytest.raises(LabelSchemaError, match=f"cells \\[{top_id}\\] have more than one"):
            check_labels(nucleus, cytoplasm, cell_type)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 2_000_000  # 4096 pixels: a few copies, not a table indexed by id


def test_mixed_label_dtypes_compare_ids_exactly():
    nucleus, cytoplasm, cell_type = _cell(2**40 + 1, np.int64)
    cytoplasm = cytoplasm.astype(np.uint64)
    cytoplasm[cytoplasm > 0] = 2**40  # another cell, one id below: not the same cell
    cell_type[cytoplasm > 0] = 5
    check_labels(nucleus, cytoplasm, cell_type)
