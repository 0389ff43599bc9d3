"""scripts/bench_finetune.py: which images play the corrected ones, and a --quick run."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import SimpleNamespace

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "bench_finetune.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_finetune", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _samples():
    # (whole-cell, nucleus, cytoplasm) Dice; groups "g0".."g5", g1 holds two images
    scores = [(0.99, 0.98, 0.97), (0.70, 0.95, 0.95), (0.96, 0.50, 0.96), (0.97, 0.97, 0.85),
              (0.98, 0.97, 0.96), (0.95, 0.95, 0.95), (0.60, 0.60, 0.60)]
    groups = ["g0", "g1", "g2", "g3", "g4", "g5", "g1"]
    samples = [SimpleNamespace(name=f"s{i}", group=g) for i, g in enumerate(groups)]
    return scores, samples


def test_worst_wrong_and_random_orders(bench):
    scores, samples = _samples()
    worst = [s.name for _, s in bench.order_for_correction(scores, samples, "worst", 0)]
    assert worst[:3] == ["s6", "s1", "s5"]
    wrong = {s.name for _, s in bench.order_for_correction(scores, samples, "wrong", 0)}
    assert wrong == {"s1", "s2", "s3", "s6"}  # any Dice below 0.90
    assert bench.order_for_correction(scores, samples, "wrong", 0) != \
        bench.order_for_correction(scores, samples, "wrong", 5) or len(wrong) < 3
    everything = bench.order_for_correction(scores, samples, "random", 1)
    assert sorted(s.name for _, s in everything) == sorted(s.name for s in samples)


def test_picked_groups_stay_whole(bench):
    scores, samples = _samples()
    picked, others = bench.pick_groups(bench.order_for_correction(scores, samples, "worst", 0),
                                       samples, 1)
    assert {s.name for s in picked} == {"s1", "s6"}  # the worst image brings its group
    assert {s.group for s in picked}.isdisjoint({s.group for s in others})
    assert len(picked) + len(others) == len(samples)


def test_quick_run_writes_before_and_after(bench, shared_data, tmp_path, monkeypatch):
    monkeypatch.setenv("NAPARI_WBCSEG_MODELS", str(tmp_path / "models"))  # main() sets it
    out = tmp_path / "bench.json"
    assert bench.main(["--data", str(shared_data), "--quick", "--repeats", "1",
                       "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    run = result["runs"][0]
    assert run["batches"] == 2 and not set(run["corrected"]) & set(run["evaluated"])
    for row in run["results"].values():
        assert 0 <= row["before"]["cell_dice"] <= 1 and 0 <= row["after"]["cell_dice"] <= 1
    assert set(result["change_mean"]) == {"other held-out images", "the corrected images"}
