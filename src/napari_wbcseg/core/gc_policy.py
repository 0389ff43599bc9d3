"""When CPython's cyclic garbage collector may pause the viewer (Qt-free).

Why: a full (generation-2) collection walks every tracked object that is not frozen,
holding the GIL, from whichever thread triggers it, so the viewer freezes for as long as
it takes.  In a napari session with the plugin about 270 000 objects are alive after
startup and 590 000 once torch, timm and segmentation-models-pytorch are imported
(``benchmarks/bench_gc_objects.py``); almost all of them are modules, functions,
classes and their dicts, which live as long as the process.  Walking them again at every
full collection is what made the 360-440 ms stalls of issue 14 (freezes).

What this module does:

* :func:`freeze_long_lived` moves everything alive into the permanent generation
  (``gc.freeze``) after a young collection, when modules were imported since the last
  freeze (the plugin's docks at creation, the train dock's warm-up, each worker at its
  end: after torch's lazy import).  Full collections then walk only the objects made
  since (layers, tables, tensors): a fraction of the session's.
* :func:`run_in_progress` (a context manager, nestable, any thread) raises the
  generation-2 threshold while a segmentation or training runs, so that full collections
  happen less often during the run; the thresholds in force before are put back when the
  last run ends, on error too.  Generations 0 and 1 keep their thresholds: young cyclic
  garbage is still collected as often as before, and no collection is ever disabled.

What it costs: frozen objects are never examined by the cyclic collector again.  An
object frozen while alive is still freed by reference counting when its last reference
goes, but a reference cycle of frozen objects is never freed: whatever cyclic garbage
sits in the old generation at the moment of a freeze (bounded, a few freezes per
process) stays, and so would a layer that is frozen and later deleted while part of a
cycle.  Hence the freezes are made only when imports happened, not after every run.
``NAPARI_WBCSEG_GC_POLICY=0`` turns the policy off (nothing frozen, thresholds left alone).
"""
from __future__ import annotations

import contextlib
import gc
import os
import sys
import threading

__all__ = ["ENV_VAR", "RUN_THRESHOLD2", "MIN_NEW_MODULES", "enabled", "freeze_long_lived",
           "run_in_progress", "RunHold", "in_run"]

ENV_VAR = "NAPARI_WBCSEG_GC_POLICY"
RUN_THRESHOLD2 = 50  # generation-2 threshold during a run (CPython's default: 10)
# imports since the last freeze that make another one worth it: a freeze holds the GIL
# (~0.1-0.2 s after a run), stalling the viewer, so only after a big library (torch: 1000s)
MIN_NEW_MODULES = 200

_lock = threading.Lock()
_modules_at_freeze = 0
_runs = 0  # runs in progress (nested or in several threads)
_saved_threshold = None


def enabled() -> bool:
    """False where ``NAPARI_WBCSEG_GC_POLICY`` is 0 / off / false / no (read at each call)."""
    return os.environ.get(ENV_VAR, "1").strip().lower() not in ("0", "off", "false", "no")


def freeze_long_lived(*, force: bool = False) -> int:
    """Freeze what is alive if ``MIN_NEW_MODULES`` modules were imported since the last
    freeze (or ``force``); returns the number of objects newly frozen (0: nothing done).

    A young collection (generations 0 and 1, cheap) first, so that fresh garbage is not
    frozen; the old generation is not collected (that would be the very pause avoided)."""
    global _modules_at_freeze
    if not enabled():
        return 0
    with _lock:
        n_modules = len(sys.modules)
        if not force and n_modules - _modules_at_freeze < MIN_NEW_MODULES:
            return 0
        _modules_at_freeze = n_modules
        gc.collect(1)
        # counted right around the freeze: frozen objects freed by refcount elsewhere
        # (another thread, a finaliser) would otherwise make the difference negative
        before = gc.get_freeze_count()
        gc.freeze()
        return max(0, gc.get_freeze_count() - before)


def _enter() -> bool:
    global _runs, _saved_threshold
    if not enabled():
        return False
    with _lock:
        if _runs == 0:
            _saved_threshold = gc.get_threshold()
            t0, t1, t2 = _saved_threshold
            gc.set_threshold(t0, t1, max(t2, RUN_THRESHOLD2))
        _runs += 1
    return True


def _exit() -> None:
    global _runs, _saved_threshold
    with _lock:
        _runs -= 1
        if _runs == 0 and _saved_threshold is not None:
            gc.set_threshold(*_saved_threshold)
            _saved_threshold = None


@contextlib.contextmanager
def run_in_progress():
    """Generation-2 threshold at least ``RUN_THRESHOLD2`` while the block runs; the
    thresholds of before are restored when the last of nested/concurrent runs ends."""
    active = _enter()
    try:
        yield
    finally:
        if active:
            _exit()


class RunHold:
    """:func:`run_in_progress` held across event-loop turns: made when a dock's run starts,
    :meth:`end` when it is over (its layers in, or failed); ``end`` twice is harmless."""

    def __init__(self):
        self._active = _enter()

    def end(self) -> None:
        if self._active:
            self._active = False
            _exit()


def in_run(generator_function):
    """``generator_function`` (a worker's) run under :func:`run_in_progress`, then
    :func:`freeze_long_lived` in the worker's thread (after a first run's lazy imports)."""
    import functools

    @functools.wraps(generator_function)
    def wrapper(*args, **kwargs):
        try:
            with run_in_progress():
                return (yield from generator_function(*args, **kwargs))
        finally:
            freeze_long_lived()
    return wrapper
