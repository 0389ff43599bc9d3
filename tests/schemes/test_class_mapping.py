"""map_classes: a model's table onto a project's, by name and synonym; the rest unidentified."""
import numpy as np

from napari_wbcseg.schema import DEFAULT_CLASSES, UNIDENTIFIED, CellClass
from napari_wbcseg.schemes import builtin_schemes, map_classes


def test_five_part_model_onto_a_marrow_project():
    marrow = builtin_schemes()["marrow-icsh"]
    m = map_classes(DEFAULT_CLASSES, marrow)
    assert m.mapping == {1: 1, 2: 2, 3: 3, 4: 4, 5: 5, UNIDENTIFIED: UNIDENTIFIED}
    assert m.unmapped == () and m.renamed == (("neutrophil", "segmented neutrophil"),)
    assert "plasma cell" in m.missing and not m.identical
    assert "neutrophil as segmented neutrophil" in m.message()


def test_marrow_model_onto_a_five_part_project_says_what_it_cannot_map():
    marrow = builtin_schemes()["marrow-icsh"]
    m = map_classes(marrow, builtin_schemes()["blood-5part"])
    assert m.mapping[1] == 1 and m.mapping[7] == UNIDENTIFIED and m.mapping[12] == UNIDENTIFIED
    assert set(m.unmapped) == {c.name for c in marrow.classes if c.code > 5 and c.code != 255}
    message = m.message()
    assert "\n" not in message and "'blast'" in message and "shown as unidentified" in message
    assert "and 5 more" in message  # long lists are cut
    codes = np.array([[0, 1, 7], [12, 2, UNIDENTIFIED]], np.uint8)
    assert m.apply(codes).tolist() == [[0, 1, UNIDENTIFIED], [UNIDENTIFIED, 2, UNIDENTIFIED]]


def test_synonyms_other_codes_and_identity():
    model = [CellClass(10, "Myeloblast", "#000001"),
             CellClass(11, "atypical_lymphocyte", "#000002"),
             CellClass(12, "Eosinophils", "#000003"), CellClass(13, "megakaryocyte", "#000004")]
    m = map_classes(model, builtin_schemes()["blood-extended"])
    assert m.mapping == {10: 7, 11: 18, 12: 4, 13: UNIDENTIFIED}
    assert m.unmapped == ("megakaryocyte",)
    assert m.message().endswith("'megakaryocyte' has no class in this project: shown as "
                                "unidentified")
    same = map_classes(DEFAULT_CLASSES, builtin_schemes()["blood-5part"])
    assert same.identical and same.message() == "model classes match this project's"


def test_plural_names_match_on_either_side():
    from napari_wbcseg.schemes import scheme_from_classes

    plural = scheme_from_classes((CellClass(7, "Eosinophils", "#00c800"),
                                  CellClass(8, "lymphocytes", "#ffd700")))
    m = map_classes(DEFAULT_CLASSES, plural)  # singular model names, plural project names
    assert m.mapping[4] == 7 and m.mapping[2] == 8
    back = map_classes(plural, builtin_schemes()["blood-5part"])
    assert back.mapping[7] == 4 and back.mapping[8] == 2
