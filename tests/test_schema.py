import numpy as np
import pytest

from napari_wbcseg.schema import (DEFAULT_CLASSES, LabelSchemaError, check_labels, class_colors,
                                  layer_names, layers_from_semantic, semantic_from_layers)


def _cell():
    sem = np.zeros((20, 20), np.uint8)
    sem[4:16, 4:16] = 1
    sem[8:12, 8:12] = 2
    return sem


def test_round_trip_semantic_layers():
    sem = _cell()
    nuc, cyt, ct = layers_from_semantic(sem, class_code=3, cell_id=7)
    check_labels(nuc, cyt, ct)
    assert np.array_equal(semantic_from_layers(nuc, cyt), sem)
    assert set(np.unique(ct)) == {0, 3} and set(np.unique(nuc)) == {0, 7}


def test_schema_violations_are_named():
    nuc, cyt, ct = layers_from_semantic(_cell(), 1)
    with pytest.raises(LabelSchemaError, match="both nucleus and cytoplasm"):
        check_labels(nuc, np.where(nuc > 0, 1, cyt).astype(np.uint16), ct)
    with pytest.raises(LabelSchemaError, match="exactly on nucleus"):
        check_labels(nuc, cyt, np.zeros_like(ct))
    mixed = ct.copy()
    mixed[4, 4] = 2
    with pytest.raises(LabelSchemaError, match="more than one class"):
        check_labels(nuc, cyt, mixed)
    with pytest.raises(LabelSchemaError, match="shapes differ"):
        check_labels(nuc, cyt, ct[:5])
    with pytest.raises(LabelSchemaError, match="integers"):
        check_labels(nuc.astype(float), cyt, ct)


def test_class_table_follows_the_data_and_figure_colours():
    names = {c.code: c.name for c in DEFAULT_CLASSES}
    assert [names[i] for i in range(1, 6)] == ["neutrophil", "lymphocyte", "monocyte",
                                               "eosinophil", "basophil"]
    colors = class_colors()
    assert colors[0] == "transparent" and colors[5] == "#ff2020"
    assert layer_names("f")["cell_type"] == "f cell type"
