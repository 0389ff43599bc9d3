"""How the Train dock shows the events of a run: the bar, the status line, the plot.

The bar's steps and the time left come from the run's ``training.engine.progress``
(``dock._run``); an epoch is "(best)" only when it also beats the starting model.
"""
from __future__ import annotations

import time

from .train_outcome import epoch_note


def show(dock, ev, notify) -> None:
    """One event of ``session.run`` on ``dock``; ``notify``: (show_info, show_warning)."""
    from ..training.engine.loop import BatchEvent, EpochEvent, NoticeEvent
    from ..training.engine.session import BaselineEvent, DataEvent
    from ..training.engine.session_classifier import ClassifierEvent

    show_info, show_warning = notify
    dock._run.on_event(ev, time.perf_counter())
    dock.progress.max, dock.progress.value = max(dock._run.maximum, 1), dock._run.value
    if isinstance(ev, ClassifierEvent):
        _classifier_event(dock, ev, show_info)
    elif isinstance(ev, BatchEvent):
        dock._steps = ev.steps
        dock._x = (ev.epoch - 1) * ev.steps + ev.step
        dock.plot.add_loss(dock._x, ev.loss)
        dock.status.value = (f"epoch {ev.epoch}/{dock._last_params.epochs}, batch {ev.step}/"
                             f"{ev.steps}, loss {ev.loss:.3f}, {time_left(dock)}")
    elif isinstance(ev, EpochEvent):
        if ev.validation:
            dock.plot.add_score(ev.epoch * dock._steps, ev.score)
        note = epoch_note(ev.score, ev.improved, dock._baseline)
        dock.status.value = (f"epoch {ev.epoch}: loss {ev.train_loss:.3f}, validation score "
                             f"{ev.score:.3f}{note}; {time_left(dock)}")
    elif isinstance(ev, BaselineEvent):
        dock._baseline = ev.score
        dock.plot.add_score(0, ev.score)
        dock.plot.set_reference(ev.score)
        dock.status.value = f"starting model: validation score {ev.score:.3f}"
    elif isinstance(ev, DataEvent):
        (show_warning(f"Train: {ev.message}") if ev.warning else None)
        dock.status.value = ev.message
    elif isinstance(ev, NoticeEvent) and not ev.message.startswith("non-finite"):
        show_info(f"Train: {ev.message}")  # a non-finite loss is reported at the end


def time_left(dock) -> str:
    return "stopping..." if dock._stop.is_set() else dock._run.time_left_text()


def _classifier_event(dock, wrapped, show_info) -> None:
    """The cell classifier's stage after the network's: the bar and the loss plot go on
    (its selection scores are another measure: status line only)."""
    from ..training.engine.loop import BatchEvent, EpochEvent, NoticeEvent

    ev = wrapped.event
    if isinstance(ev, BatchEvent):
        dock._x += 1
        dock.plot.add_loss(dock._x, ev.loss)
        dock.status.value = (f"cell classifier: epoch {ev.epoch}/{wrapped.total // ev.steps}"
                             f", batch {ev.step}/{ev.steps}, loss {ev.loss:.3f}, "
                             f"{time_left(dock)}")
    elif isinstance(ev, EpochEvent):
        dock.status.value = (f"cell classifier epoch {ev.epoch}: loss {ev.train_loss:.3f}, "
                             f"score {ev.score:.3f}{' (best)' if ev.improved else ''}")
    elif isinstance(ev, NoticeEvent) and not ev.message.startswith("non-finite"):
        show_info(f"Train: cell classifier: {ev.message}")
