"""The three built-in schemes: valid, codes shared across them, 5-part is the default table."""
import itertools

import pytest

from napari_wbcseg.schema import DEFAULT_CLASSES, UNIDENTIFIED, CellClass
from napari_wbcseg.schemes import (BUILTIN_NAMES, ClassScheme, SchemeError, builtin_schemes,
                                   load_scheme, myeloid_erythroid_ratio, scheme_from_classes)


def _rgb(colour):
    return tuple(int(colour[i:i + 2], 16) for i in (1, 3, 5))


def test_builtins_are_valid_and_five_part_is_the_default_table():
    schemes = builtin_schemes()
    assert tuple(schemes) == BUILTIN_NAMES
    five = schemes["blood-5part"]
    assert five.classes == DEFAULT_CLASSES and five.kind == "blood"
    # also the extras the CSV carries, which equality leaves out
    assert [(c.group, c.hotkey) for c in five.classes] == [(c.group, c.hotkey)
                                                           for c in DEFAULT_CLASSES]
    for scheme in schemes.values():
        assert scheme.classes[-1].code == UNIDENTIFIED
        assert ClassScheme(scheme.name, scheme.classes, scheme.kind) == scheme  # re-validates
        assert load_scheme(scheme.name) is scheme


def test_a_code_means_the_same_cell_in_every_builtin():
    names, keys = {}, {}
    for scheme in builtin_schemes().values():
        for c in scheme.classes:
            names.setdefault(c.code, set()).add(c.name)
            keys.setdefault(c.code, set()).add(c.hotkey)
    assert all(len(v) == 1 for v in keys.values()), keys  # one key per cell, scheme to scheme
    assert names[1] == {"neutrophil", "segmented neutrophil"}
    assert all(len(v) == 1 for code, v in names.items() if code != 1), names
    for code, name in ((2, "lymphocyte"), (3, "monocyte"), (4, "eosinophil"), (5, "basophil")):
        assert names[code] == {name}


def test_extended_and_marrow_hold_the_cells_the_issue_lists():
    schemes = builtin_schemes()
    extended = {c.name for c in schemes["blood-extended"].classes}
    assert {"band neutrophil", "immature granulocyte", "blast", "reactive lymphocyte",
            "nucleated red cell", "smudge cell"} <= extended
    marrow = schemes["marrow-icsh"]
    assert marrow.kind == "marrow" and marrow.default_target == 500 and len(marrow) - 1 >= 14
    wanted = {"blast", "promyelocyte", "myelocyte", "metamyelocyte", "band neutrophil",
              "segmented neutrophil", "eosinophil", "basophil", "monocyte", "lymphocyte",
              "plasma cell", "proerythroblast", "basophilic erythroblast",
              "polychromatic erythroblast", "orthochromatic erythroblast"}
    assert wanted <= {c.name for c in marrow.classes}
    groups = {c.group for c in marrow.classes}
    assert {"myeloid", "erythroid", "lymphoid"} <= groups


@pytest.mark.parametrize("name", BUILTIN_NAMES)
def test_builtin_colours_are_far_apart(name):
    colours = [_rgb(c.color) for c in builtin_schemes()[name].classes]
    closest = min(sum((a - b) ** 2 for a, b in zip(p, q)) ** 0.5
                  for p, q in itertools.combinations(colours, 2))
    assert closest > 60


def test_myeloid_erythroid_ratio():
    marrow = builtin_schemes()["marrow-icsh"]
    counts = {1: 120, 9: 60, 7: 20, 3: 30, 2: 40, 12: 10, 15: 70}
    # myeloid 120 + 60 + 20 = 200; erythroid 10 + 70 = 80; monocytes and lymphocytes left out
    assert myeloid_erythroid_ratio(counts, marrow) == pytest.approx(2.5)
    assert myeloid_erythroid_ratio({1: 5, UNIDENTIFIED: 3}, marrow) is None  # no erythroid
    assert myeloid_erythroid_ratio({1: 10}, builtin_schemes()["blood-5part"]) is None
    with pytest.raises(SchemeError, match="class code 99 is not in scheme 'marrow-icsh'"):
        myeloid_erythroid_ratio({99: 1}, marrow)
    with pytest.raises(SchemeError, match="count -1"):
        myeloid_erythroid_ratio({1: -1}, marrow)


def test_scheme_from_a_bare_class_table():
    scheme = scheme_from_classes([{"code": 3, "name": "blast", "color": "#ff0000"},
                                  CellClass(1, "myelocyte", "#00ff00")], name="model")
    assert scheme.codes == (3, 1, UNIDENTIFIED) and scheme.name == "model"
    moved = scheme_from_classes([CellClass(UNIDENTIFIED, "unidentified", "#a0a0a0"),
                                 CellClass(1, "a", "#000001")])
    assert moved.codes == (1, UNIDENTIFIED)
    for bad, problem in (([CellClass(1, "a", "#000001"), CellClass(1, "b", "#000002")],
                          "duplicate code 1"),
                         ([CellClass(1, "a", "#000001"), CellClass(2, "A", "#000002")],
                          "duplicate name 'a'"),
                         ([CellClass(300, "a", "#000001")], "code 300 is out of range"),
                         ([], "no class besides unidentified"),
                         ([CellClass(k, f"c{k}", "#000001") for k in range(1, 70)],
                          "more than the 64 allowed")):
        with pytest.raises(SchemeError, match=problem):
            scheme_from_classes(bad)
    with pytest.raises(SchemeError, match="kind 'liver'"):
        scheme_from_classes([CellClass(1, "a", "#000001")], kind="liver")
