"""The fine-tune's progress and time left (training.engine.progress), on made-up clocks."""
from __future__ import annotations

import pytest

from napari_wbcseg.training.engine.loop import BatchEvent, EpochEvent
from napari_wbcseg.training.engine.progress import PlanEvent, RunProgress, duration
from napari_wbcseg.training.engine.session import BaselineEvent
from napari_wbcseg.training.engine.session_classifier import ClassifierEvent


def _batch(epoch, step, steps):
    return BatchEvent(epoch, step, steps, 0.5, {})


def _epoch(epoch, score=0.8):
    return EpochEvent(epoch, 0.5, {}, score, True, 0.0)


def _run_epochs(p, t, epochs, steps, batch_s, val_s, first_batch_s=None, start=1):
    """Feed ``epochs`` epochs of ``steps`` batches; returns the clock after them."""
    for e in range(start, start + epochs):
        for k in range(1, steps + 1):
            t += first_batch_s if (first_batch_s and e == start and k == 1) else batch_s
            p.on_event(_batch(e, k, steps), t)
        t += val_s
        p.on_event(_epoch(e), t)
    return t


def test_no_estimate_until_a_few_batches_are_timed_then_validation_counts():
    p = RunProgress(min_timed=3)
    assert p.time_left_text() == "estimating the time left..."  # not even a plan yet
    p.on_event(PlanEvent(epochs=10, steps_per_epoch=20, baseline=True), 0.0)
    assert (p.value, p.maximum) == (0, 1 + 10 * 21)  # baseline + batches + validations
    p.on_event(BaselineEvent(0.8, {}), 30.0)  # validation takes 30 s
    # a quick first few batches say nothing yet (the old dock said "about 6 s left")
    p.on_event(_batch(1, 1, 20), 40.0)  # first batch: set-up included, not timed
    p.on_event(_batch(1, 2, 20), 41.0)
    p.on_event(_batch(1, 3, 20), 42.0)
    assert p.time_left() is None and "estimating" in p.time_left_text()
    p.on_event(_batch(1, 4, 20), 43.0)
    seconds, complete = p.time_left()
    # 196 batches at 1 s and 10 validations at 30 s
    assert complete and seconds == pytest.approx(196 + 300)
    assert p.time_left_text() == "about 8 min 16 s left"
    assert (p.value, p.maximum) == (5, 211)


def test_validation_of_the_epochs_is_timed_when_there_is_no_starting_model():
    p = RunProgress(min_timed=2)
    p.on_event(PlanEvent(epochs=3, steps_per_epoch=4, baseline=False), 0.0)
    t = _run_epochs(p, 0.0, 1, 4, batch_s=2.0, val_s=10.0, first_batch_s=9.0)
    seconds, complete = p.time_left()  # 8 batches and 2 validations to come
    assert complete and seconds == pytest.approx(8 * 2.0 + 2 * 10.0)
    p2 = RunProgress(min_timed=2)  # the same run before its first validation ended
    p2.on_event(PlanEvent(epochs=3, steps_per_epoch=4, baseline=False), 0.0)
    for k, t in enumerate((9.0, 11.0, 13.0), start=1):  # first batch: set-up, not timed
        p2.on_event(_batch(1, k, 4), t)
    seconds, complete = p2.time_left()
    assert not complete and p2.time_left_text().startswith("more than")
    assert seconds == pytest.approx(9 * 2.0)


def test_stop_keeps_the_bar_where_it_is():
    p = RunProgress()
    p.on_event(PlanEvent(epochs=5, steps_per_epoch=20, baseline=True), 0.0)
    p.on_event(BaselineEvent(0.8, {}), 5.0)
    for k in range(1, 8):
        p.on_event(_batch(1, k, 20), 5.0 + k)
    p.on_event(_epoch(1), 20.0)  # the stopped epoch is still scored
    assert p.value == 1 + 7 + 1 and p.maximum == 1 + 5 * 21 and p.value < p.maximum
    assert p.stopped_text() == "stopped after 7 of 100 batches"


def test_a_resumed_run_counts_only_its_own_epochs():
    p = RunProgress(min_timed=1)
    p.on_event(PlanEvent(epochs=4, steps_per_epoch=3, baseline=False), 0.0)
    _run_epochs(p, 0.0, 2, 3, batch_s=1.0, val_s=4.0, start=3)  # epochs 3 and 4
    assert p.value == p.maximum == 2 * (3 + 1) and p.planned_batches == 6
    assert p.time_left() == (0.0, True)


def test_the_classifier_stage_is_counted_and_timed_on_its_own():
    p = RunProgress(min_timed=2)
    p.on_event(PlanEvent(epochs=1, steps_per_epoch=3, baseline=False, classifier_batches=6,
                         classifier_epochs=2), 0.0)
    assert p.maximum == 3 + 1 + 6 + 2
    t = _run_epochs(p, 0.0, 1, 3, batch_s=1.0, val_s=1.0)
    assert p.time_left()[1] is False  # the classifier is not timed yet
    for k, dt in zip(range(1, 4), (5.0, 0.1, 0.1)):  # its first batch: set-up
        t += dt
        p.on_event(ClassifierEvent(_batch(1, k, 3), 6), t)
    seconds, complete = p.time_left()  # 3 batches at 0.1 s; its validations not timed yet
    assert not complete and seconds == pytest.approx(0.3)
    p.on_event(ClassifierEvent(_epoch(1), 6), t + 2.0)
    seconds, complete = p.time_left()
    assert complete and seconds == pytest.approx(0.3 + 2.0)
    assert p.value == 4 + 3 + 1 and p.maximum == 12


def test_duration():
    assert [duration(s) for s in (5.4, 75, 3725)] == ["5 s", "1 min 15 s", "1 h 02 min"]
