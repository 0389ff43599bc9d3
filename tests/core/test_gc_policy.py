"""napari_wbcseg.core.gc_policy: freezes and run thresholds do what the module says."""
from __future__ import annotations

import gc
import sys
import types

import pytest

from napari_wbcseg.core import gc_policy


@pytest.fixture(autouse=True)
def clean_gc(monkeypatch):
    """Each test starts unfrozen with CPython's thresholds and leaves the process so."""
    monkeypatch.delenv(gc_policy.ENV_VAR, raising=False)
    threshold = gc.get_threshold()
    gc.unfreeze()
    monkeypatch.setattr(gc_policy, "_modules_at_freeze", 0)
    monkeypatch.setattr(gc_policy, "_runs", 0)
    monkeypatch.setattr(gc_policy, "_saved_threshold", None)
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


def _tracked_ids():
    return {id(o) for o in gc.get_objects()}


def test_freeze_moves_what_is_alive_to_the_permanent_generation():
    kept = [[i] for i in range(100)]  # 101 tracked lists, alive across the freeze
    assert id(kept) in _tracked_ids()
    frozen = gc_policy.freeze_long_lived()  # every module is new to a fresh policy
    assert frozen >= 101 and gc.get_freeze_count() >= 101
    tracked = _tracked_ids()  # the generations a collection walks: kept is no longer there
    assert id(kept) not in tracked and not any(id(x) in tracked for x in kept)
    after = [[1]]
    assert id(after) in _tracked_ids()  # objects made after the freeze are walked again


def test_no_second_freeze_without_new_imports(monkeypatch):
    assert gc_policy.freeze_long_lived() > 0
    count = gc.get_freeze_count()
    _alive = [[i] for i in range(50)]
    assert gc_policy.freeze_long_lived() == 0
    # not frozen (the frozen count itself may shrink: frozen objects still die by refcount)
    assert id(_alive) in _tracked_ids() and gc.get_freeze_count() <= count
    for i in range(gc_policy.MIN_NEW_MODULES):  # as a lazy import of torch would
        monkeypatch.setitem(sys.modules, f"_gc_policy_fake_{i}", types.ModuleType("m"))
    assert gc_policy.freeze_long_lived() >= 50
    assert id(_alive) not in _tracked_ids()
    assert gc_policy.freeze_long_lived(force=True) >= 0  # force needs no imports
    del _alive


def test_run_raises_only_the_old_generation_threshold_and_restores_it_on_error():
    t0, t1, t2 = before = gc.get_threshold()
    with pytest.raises(RuntimeError):
        with gc_policy.run_in_progress():
            assert gc.get_threshold() == (t0, t1, max(t2, gc_policy.RUN_THRESHOLD2))
            assert gc.isenabled()  # never disabled
            raise RuntimeError("the run failed")
    assert gc.get_threshold() == before


def test_nested_and_held_runs_restore_when_the_last_ends():
    before = gc.get_threshold()
    hold = gc_policy.RunHold()
    with gc_policy.run_in_progress():
        pass
    assert gc.get_threshold()[2] == max(before[2], gc_policy.RUN_THRESHOLD2)  # hold still open
    hold.end()
    assert gc.get_threshold() == before
    hold.end()  # twice is harmless: the count does not go below zero
    with gc_policy.run_in_progress():
        assert gc.get_threshold()[2] == max(before[2], gc_policy.RUN_THRESHOLD2)
    assert gc.get_threshold() == before


def test_worker_wrapper_keeps_the_result_and_restores_after_a_failure():
    before = gc.get_threshold()
    seen = []

    def steps(n):
        for i in range(n):
            seen.append(gc.get_threshold()[2])
            yield i
        return "result"

    gen = gc_policy.in_run(steps)(2)
    assert list(gen) == [0, 1] and seen == [max(before[2], gc_policy.RUN_THRESHOLD2)] * 2
    gen = gc_policy.in_run(steps)(1)
    next(gen)
    with pytest.raises(StopIteration) as stop:
        next(gen)
    assert stop.value.value == "result" and gc.get_threshold() == before
    assert gc.get_freeze_count() > 0  # the worker froze at its end (new modules)

    def failing():
        yield 1
        raise ValueError("bad input")

    gen = gc_policy.in_run(failing)()
    next(gen)
    with pytest.raises(ValueError):
        next(gen)
    assert gc.get_threshold() == before


def test_off_switch_freezes_nothing_and_leaves_thresholds(monkeypatch):
    monkeypatch.setenv(gc_policy.ENV_VAR, "0")
    before = gc.get_threshold()
    assert gc_policy.freeze_long_lived(force=True) == 0 and gc.get_freeze_count() == 0
    with gc_policy.run_in_progress():
        assert gc.get_threshold() == before
    gc_policy.RunHold().end()
    assert gc.get_threshold() == before
