"""Untrusted JSON: deep nesting, huge files, and model cards with fields of the wrong type
or that do not belong to their weights (``segment --model FILE`` checks what import does)."""
import json
import math
import shutil

import pytest

from napari_wbcseg.io.classifier_store import find_classifier
from napari_wbcseg.io.model_exchange import ModelFileError, import_model, read_model_file
from napari_wbcseg.io.model_store import ModelNotFoundError, find_model, list_models, user_dir
from napari_wbcseg.io.safe_json import MAX_BYTES, UnsafeJSONError, load_json_file, loads_bounded

DEEP = "[" * 100000 + "]" * 100000


@pytest.mark.parametrize("text, ok", [
    (DEEP, False), ('{"a":' * 65 + "1" + "}" * 65, False), ('{"a":' * 60 + "1" + "}" * 60, True),
    ('["[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["]', True),
    ('["\\"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["]', True),
    ('"unterminated ' + "[" * 100, False), (b"\xff\xfe not utf-8", False),
])
def test_loads_bounded_never_recurses_past_the_bound(text, ok):
    if ok:
        loads_bounded(text)
    else:
        with pytest.raises(UnsafeJSONError):
            loads_bounded(text)


def test_oversized_file_is_refused_before_reading(tmp_path, monkeypatch):
    p = tmp_path / "big.json"
    with open(p, "wb") as fh:
        fh.truncate(MAX_BYTES + 1)  # sparse: nothing to read if the bound holds
    monkeypatch.setattr("builtins.open", lambda *a, **k: pytest.fail("file was opened"))
    with pytest.raises(UnsafeJSONError, match="more than"):
        load_json_file(p)


def _model_file(tiny_model, tmp_path, card_changes=None, drop=()):
    """A copy of the 'tiny' model as a loose file pair, its card edited."""
    folder = user_dir()
    weights = tmp_path / "loose" / "m.safetensors"
    weights.parent.mkdir(exist_ok=True)
    shutil.copyfile(folder / f"{tiny_model}.safetensors", weights)
    card = json.loads((folder / f"{tiny_model}.json").read_text())
    card.update(card_changes or {})
    for key in drop:
        card.pop(key, None)
    weights.with_suffix(".json").write_text(json.dumps(card, allow_nan=True))
    return weights


BAD_CARDS = [
    ({"classes": [{}]}, "classes"),
    ({"classes": "neutrophil"}, "classes"),
    ({"classes": [{"code": 1, "name": "a"}, {"code": 1, "name": "b"}]}, "classes"),
    ({"preprocessing": "ahe-retinex"}, "preprocessing"),
    ({"preprocessing": {"method": 3}}, "preprocessing.method"),
    ({"native_cell_diameter_px": 0}, "native_cell_diameter_px"),
    ({"native_cell_diameter_px": 1e7}, "native_cell_diameter_px"),
    ({"native_cell_diameter_px": math.nan}, "native_cell_diameter_px"),
    ({"native_cell_diameter_px": "80"}, "native_cell_diameter_px"),
    ({"native_cell_diameter_px": True}, "native_cell_diameter_px"),
    ({"config": [1, 2]}, "config"),
    ({"validation": {"summary": [0.5]}}, "validation.summary"),
    ({"weights": {"sha256": 12}}, "weights.sha256"),
    ({"architecture": 7}, "architecture"),
]


@pytest.mark.parametrize("changes, field", BAD_CARDS)
def test_malformed_card_field_is_named_by_every_loader(tiny_model, tmp_path, changes, field):
    weights = _model_file(tiny_model, tmp_path, changes)
    message = f"field '{field}'"
    with pytest.raises(ModelNotFoundError, match=message):
        find_model(str(weights))  # what segment --model FILE uses
    with pytest.raises(ModelFileError, match=message):
        read_model_file(weights)  # what import_model checks
    # an installed model with that card is not offered at all
    shutil.copyfile(weights, user_dir() / "bad.safetensors")
    shutil.copyfile(weights.with_suffix(".json"), user_dir() / "bad.json")
    assert "bad" not in list_models() and tiny_model in list_models()


MISMATCHES = [
    ({"architecture": "wbc-net-compact"}, "describes a 'wbc-net-compact'"),
    ({"config": {"base": 99}}, "field 'config' differs"),
    ({"weights": {"sha256": "0" * 64}}, "checksum differs"),
]


@pytest.mark.parametrize("changes, message", MISMATCHES)
def test_card_that_does_not_match_its_weights_is_refused_by_file_and_import(
        tiny_model, tmp_path, changes, message):
    weights = _model_file(tiny_model, tmp_path, changes)
    with pytest.raises(ModelNotFoundError, match=message):
        find_model(str(weights))
    with pytest.raises(ModelFileError, match=message):
        import_model(weights)


def test_matching_card_and_no_card_load_from_a_file(tiny_model, tmp_path):
    from napari_wbcseg.io.fetch import sha256_of

    weights = _model_file(tiny_model, tmp_path)
    card = json.loads(weights.with_suffix(".json").read_text())
    card["weights"] = {"sha256": sha256_of(weights)}
    weights.with_suffix(".json").write_text(json.dumps(card))
    assert find_model(str(weights)).card["native_cell_diameter_px"] == 80
    weights.with_suffix(".json").unlink()
    assert find_model(str(weights)).card == {}


@pytest.mark.parametrize("which", ["model", "classifier"])
def test_deeply_nested_card_is_one_error(tiny_model, tmp_path, which):
    weights = _model_file(tiny_model, tmp_path)
    weights.with_suffix(".json").write_text('{"classes": ' + DEEP + "}")
    with pytest.raises(ModelNotFoundError, match="nested more than"):
        (find_model if which == "model" else find_classifier)(str(weights))
    if which == "model":
        with pytest.raises(ModelFileError, match="nested more than"):
            import_model(weights)
