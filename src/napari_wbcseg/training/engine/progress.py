"""Work done and time left of a fine-tune, from its events and the times they arrived.

Qt-free: the training dock feeds every event of ``session.run`` to
:meth:`RunProgress.on_event` with the time it saw it (``time.perf_counter()``); tests pass
made-up times.  The work is counted in steps: one per batch (network and cell
classifier) and one per validation pass (the starting model's, and each epoch's).
The time left adds the batches and validation passes still to come, each at its own
measured duration, so a long validation is never left out of the estimate.  There is no
estimate until a few batches are timed (the first batch of a stage, which includes its
set-up, is not one of them): :meth:`time_left` is None meanwhile ("estimating...").
"""
from __future__ import annotations

from dataclasses import dataclass

MIN_TIMED_BATCHES = 3  # batch intervals timed before a time left is given


@dataclass
class PlanEvent:
    """What a run will do (yielded by ``session.run`` before any work)."""
    epochs: int
    steps_per_epoch: int
    baseline: bool  # the starting model is scored on the validation images first
    classifier_batches: int = 0  # the cell classifier's stage (0: it will not run)
    classifier_epochs: int = 0


class _Timer:
    """Mean duration of one kind of work (batch or validation pass)."""

    def __init__(self):
        self.total, self.count = 0.0, 0

    def add(self, seconds: float) -> None:
        if seconds >= 0:
            self.total, self.count = self.total + seconds, self.count + 1

    @property
    def mean(self) -> float | None:
        return self.total / self.count if self.count else None


class RunProgress:
    def __init__(self, min_timed: int = MIN_TIMED_BATCHES):
        self.min_timed = min_timed
        self.plan: PlanEvent | None = None
        self.done = 0  # steps done (batches + validation passes)
        self.batches = 0  # network batches done
        self.planned_batches = 0  # network batches this run set out to do
        self._val_left = 0  # network validation passes still to come (baseline included)
        self._batches_left = 0
        self._cls_batches_left = self._cls_val_left = 0
        self._batch, self._val = _Timer(), _Timer()
        self._cls_batch, self._cls_val = _Timer(), _Timer()
        self._last = None  # time of the last event that ended a piece of work
        self._stage = "network"
        self._started = False  # first network batch seen (the plan may be re-based on it)

    # ---- totals ------------------------------------------------------------------------------
    @property
    def maximum(self) -> int:
        return self.done + self._batches_left + self._val_left + self._cls_batches_left + \
            self._cls_val_left

    @property
    def value(self) -> int:
        return self.done

    # ---- events ------------------------------------------------------------------------------
    def on_event(self, ev, now: float) -> None:
        from .loop import BatchEvent, EpochEvent
        from .session import BaselineEvent
        from .session_classifier import ClassifierEvent

        if isinstance(ev, PlanEvent):
            self._set_plan(ev, now)
        elif isinstance(ev, BaselineEvent):
            self._finish_validation(self._val, now)
        elif isinstance(ev, ClassifierEvent):
            self._on_classifier(ev, now)
        elif isinstance(ev, BatchEvent):
            self._on_batch(ev, now)
        elif isinstance(ev, EpochEvent):
            self._finish_validation(self._val, now)

    def _set_plan(self, plan: PlanEvent, now: float) -> None:
        self.plan = plan
        self.planned_batches = plan.epochs * plan.steps_per_epoch
        self._batches_left = self.planned_batches
        self._val_left = plan.epochs + int(plan.baseline)
        self._cls_batches_left = plan.classifier_batches
        self._cls_val_left = plan.classifier_epochs
        self._last = now

    def _on_batch(self, ev, now: float) -> None:
        if not self._started:
            self._started = True
            if self.plan is not None and ev.epoch > 1:  # resumed: earlier epochs are done
                left = self.plan.epochs - ev.epoch + 1
                self.planned_batches = left * ev.steps
                self._batches_left, self._val_left = self.planned_batches, left
        elif self._last is not None:  # since the last batch or the end of a validation
            self._batch.add(now - self._last)
        self._batches_left = max(self._batches_left - 1, 0)
        self.batches += 1
        self.done += 1
        self._last = now

    def _finish_validation(self, timer: _Timer, now: float) -> None:
        if self._last is not None:
            timer.add(now - self._last)
        if timer is self._cls_val:
            self._cls_val_left = max(self._cls_val_left - 1, 0)
        else:
            self._val_left = max(self._val_left - 1, 0)
        self.done += 1
        self._last = now

    def _on_classifier(self, wrapped, now: float) -> None:
        from .loop import BatchEvent, EpochEvent

        ev = wrapped.event
        if isinstance(ev, BatchEvent):
            if self._stage != "classifier":  # its first batch includes its set-up
                self._stage = "classifier"
                self._batches_left = self._val_left = 0  # the network's part is over
                self._cls_batches_left = wrapped.total
                self._cls_val_left = max(wrapped.total // max(ev.steps, 1), 1)
            elif self._last is not None:
                self._cls_batch.add(now - self._last)
            self._cls_batches_left = max(self._cls_batches_left - 1, 0)
            self.done += 1
            self._last = now
        elif isinstance(ev, EpochEvent):
            self._finish_validation(self._cls_val, now)

    # ---- estimate ----------------------------------------------------------------------------
    def time_left(self) -> tuple[float, bool] | None:
        """``(seconds, complete)``: None until enough batches are timed; ``complete`` False
        when some work still to come has no measured duration yet (e.g. the first
        validation pass of a run without a starting model, or the cell classifier)."""
        if self.plan is None:
            return None
        if self._stage == "classifier":
            timers = [(self._cls_batch, self._cls_batches_left),
                      (self._cls_val, self._cls_val_left)]
        else:
            timers = [(self._batch, self._batches_left), (self._val, self._val_left)]
        if timers[0][0].count < self.min_timed and timers[0][1] > 0:
            return None
        seconds, complete = 0.0, True
        for timer, left in timers:
            if left:
                if timer.mean is None:
                    complete = False
                else:
                    seconds += timer.mean * left
        if self._stage != "classifier" and (self._cls_batches_left or self._cls_val_left):
            complete = False  # the classifier stage is not timed yet
        return seconds, complete

    def time_left_text(self) -> str:
        left = self.time_left()
        if left is None:
            return "estimating the time left..."
        seconds, complete = left
        return f"{'about' if complete else 'more than'} {duration(seconds)} left"

    def stopped_text(self) -> str:
        """What a stopped run did, e.g. "stopped after 7 of 100 batches"."""
        return f"stopped after {self.batches} of {self.planned_batches} batches"


def duration(seconds: float) -> str:
    s = int(round(seconds))
    return f"{s} s" if s < 60 else f"{s // 60} min {s % 60:02d} s" if s < 3600 else \
        f"{s // 3600} h {s % 3600 // 60:02d} min"


__all__ = ["MIN_TIMED_BATCHES", "PlanEvent", "RunProgress", "duration"]
