"""A fine-tune that does not beat its starting model is never saved silently (session.run
``if_worse``).  The starting model's score is forced (monkeypatched ``session.baseline``):
a tiny run's own score decides nothing here."""
from __future__ import annotations

import json

import pytest

pytest.importorskip("torch")

from napari_wbcseg.core.batch import run_to_end  # noqa: E402
from napari_wbcseg.io.model_store import list_models  # noqa: E402
from napari_wbcseg.training.engine import session  # noqa: E402
from napari_wbcseg.training.engine.progress import PlanEvent  # noqa: E402

TINY = dict(epochs=1, steps_per_epoch=3, batch_size=2, crop=64, threads=1)


def layer_set(seed, classes=(1, 2)) -> session.LayerSet:
    from napari_wbcseg.core.synthetic import synthetic_smear

    sm = synthetic_smear(shape=(128, 160), n_wbc=len(classes), classes=list(classes), seed=seed,
                         pixel_size_um=0.35)
    return session.LayerSet(f"smear {seed}", sm.image, sm.nucleus, sm.cytoplasm, sm.cell_type)


@pytest.fixture
def models(tmp_path, monkeypatch):
    folder = tmp_path / "models"
    monkeypatch.setenv("NAPARI_WBCSEG_MODELS", str(folder))
    return folder


def _start_at(monkeypatch, score):
    monkeypatch.setattr(session, "baseline", lambda prepared: session.BaselineEvent(score, {}))


def _run(name, **kw):
    events = []
    params = session.SessionParams(name, val_fraction=0, **TINY)
    outcome = run_to_end(session.run(params, [layer_set(1)], **kw), events.append)
    return outcome, events


def test_worse_than_the_start_keep_saves_nothing_and_says_so(models, monkeypatch):
    _start_at(monkeypatch, 0.9999)
    outcome, events = _run("worse-kept", if_worse="keep")
    assert outcome.worse is not None and outcome.baseline == 0.9999
    assert not outcome.saved and "worse-kept" not in list_models()
    assert "does not beat the starting model's 1.000" in outcome.messages[-1]
    assert "nothing was saved" in outcome.messages[-1]
    plan = [e for e in events if isinstance(e, PlanEvent)]
    assert len(plan) == 1 and plan[0].baseline and plan[0].epochs == 1


def test_worse_than_the_start_ask_then_save_notes_it_on_the_card(models, monkeypatch):
    _start_at(monkeypatch, 0.9999)
    outcome, _ = _run("worse-saved", if_worse="ask")
    assert outcome.pending is not None and not outcome.saved
    assert "worse-saved" not in list_models()  # nothing until the user answers
    session.save_pending(outcome)
    assert outcome.saved and "worse-saved" in list_models() and outcome.pending is None
    card = json.loads((models / "worse-saved.json").read_text())
    worse = card["training"]["worse_than_start"]
    assert worse["starting_score"] == 0.9999 and worse["best_score"] < 0.9999
    assert "no epoch beat the starting model" in card["notes"]
    assert "saved as 'worse-saved' all the same" in outcome.messages[-1]


def test_better_than_the_start_is_saved_without_a_note(models, monkeypatch):
    _start_at(monkeypatch, 0.0)
    outcome, _ = _run("better", if_worse="keep")
    assert outcome.saved and outcome.worse is None and not outcome.messages
    card = json.loads((models / "better.json").read_text())
    assert card["training"]["starting_model_score"] == 0.0
    assert "worse_than_start" not in card["training"]


def test_from_scratch_there_is_no_starting_model_to_compare(models):
    params = session.SessionParams("scratch", base_model=None, val_fraction=0, **TINY)
    outcome = run_to_end(session.run(params, [layer_set(1)], if_worse="keep"), lambda e: None)
    assert outcome.saved and outcome.worse is None and outcome.baseline is None
    with pytest.raises(ValueError, match="if_worse"):
        next(session.run(params, [layer_set(1)], if_worse="maybe"))
