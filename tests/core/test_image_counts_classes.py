"""A change of classes only is recounted from the table (no cell measured again) and gives
exactly what measuring every cell gives."""
import numpy as np
import pandas as pd
import pytest

from napari_wbcseg.core.image_counts import (CountRules, class_pixels, image_counts,
                                             recount_classes)
from napari_wbcseg.schema import DEFAULT_CLASSES, UNIDENTIFIED, CellClass


@pytest.fixture(scope="module")
def smear():
    from napari_wbcseg.core.synthetic import synthetic_smear

    return synthetic_smear(shape=(200, 240), n_wbc=4, seed=3, classes=[1, 2, 3, 4])


def _reclassified(smear, cell_id, code):
    cell_type = smear.cell_type.copy()
    cell_type[(smear.nucleus == cell_id) | (smear.cytoplasm == cell_id)] = code
    return cell_type


@pytest.mark.parametrize("rules", [CountRules(), CountRules(include_border=True,
                                                            check_below=0.5)])
def test_recount_after_a_class_edit_equals_measuring_again(smear, rules):
    before = image_counts(smear.nucleus, smear.cytoplasm, smear.cell_type, rules=rules,
                          confidence={1: 0.9, 2: 0.3, 3: 0.7, 4: 0.2}, pixel_size_um=0.25)
    pixels = class_pixels(smear.nucleus, smear.cytoplasm, before.table.index)
    cell_type = _reclassified(smear, 2, UNIDENTIFIED)
    # the edited cell lost its confidence; a 7th class appeared; cells 1 and 3 reviewed
    classes = DEFAULT_CLASSES[:-1] + (CellClass(7, "blast", "#e6007e"), DEFAULT_CLASSES[-1])
    kwargs = dict(rules=rules, classes=classes, confidence={1: 0.9, 3: 0.7, 4: 0.2},
                  reviewed_cells={1, 3})
    fast = recount_classes(before, cell_type, pixels, **kwargs)
    full = image_counts(smear.nucleus, smear.cytoplasm, cell_type, pixel_size_um=0.25,
                        **kwargs)
    pd.testing.assert_frame_equal(fast.table, full.table)
    pd.testing.assert_frame_equal(fast.differential, full.differential)
    assert fast.differential.attrs == full.differential.attrs
    assert fast.table.loc[2, "class_code"] == UNIDENTIFIED and np.isnan(
        fast.table.loc[2, "confidence"])


def test_class_pixels_and_recount_refuse_what_does_not_fit(smear):
    counts = image_counts(smear.nucleus, smear.cytoplasm, smear.cell_type)
    with pytest.raises(ValueError, match="cell ids outside"):
        class_pixels(smear.nucleus, smear.cytoplasm, [int(smear.nucleus.max()) + 5])
    with pytest.raises(ValueError, match="class pixels for"):
        recount_classes(counts, smear.cell_type, np.zeros(1, np.int64))


def test_a_cell_of_two_classes_reads_the_pixel_measuring_reads(smear):
    """Before the schema is repaired (a brush on the cell-type layer), one cell may hold
    two codes: the recount takes the same pixel's code as cell_table."""
    counts = image_counts(smear.nucleus, smear.cytoplasm, smear.cell_type)
    pixels = class_pixels(smear.nucleus, smear.cytoplasm, counts.table.index)
    cell_type = smear.cell_type.copy()
    rows, cols = np.nonzero((smear.nucleus == 1) | (smear.cytoplasm == 1))
    cell_type[rows[: rows.size // 2], cols[: rows.size // 2]] = 5  # the first half: basophil
    full = image_counts(smear.nucleus, smear.cytoplasm, cell_type)
    fast = recount_classes(counts, cell_type, pixels)
    pd.testing.assert_frame_equal(fast.table, full.table)
    cell_type[rows[rows.size // 2:], cols[rows.size // 2:]] = 4  # the second half too
    assert recount_classes(counts, cell_type, pixels).table.loc[1, "class_code"] == \
        image_counts(smear.nucleus, smear.cytoplasm, cell_type).table.loc[1, "class_code"] == 4
