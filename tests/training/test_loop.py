"""The training loop: resume = never stopped, non-finite losses, mosaics, preprocessing."""
from __future__ import annotations

import pickle

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from napari_wbcseg.core.batch import run_to_end  # noqa: E402
from napari_wbcseg.training.engine import loop  # noqa: E402
from napari_wbcseg.training.engine.checkpoint import load_checkpoint, read_config  # noqa: E402
from napari_wbcseg.training.engine.loop import (CheckpointEvent, EpochEvent, NoticeEvent,  # noqa: E402
                                         TrainConfig, train_steps)
from napari_wbcseg.training.data.sample import Sample  # noqa: E402


def cell_sample(seed, source="segmentation_WBC-1", size=96, scale=1.0) -> Sample:
    """A purple nucleus in a pink cytoplasm on a pale background, with its labels."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size]
    cy, cx = rng.uniform(0.4, 0.6, 2) * size
    r = rng.uniform(0.2, 0.3) * size
    d = np.hypot(yy - cy, xx - cx)
    sem = np.zeros((size, size), np.uint8)
    sem[d < r] = 1
    sem[d < r / 2] = 2
    image = np.empty((size, size, 3), np.uint8)
    image[:] = (225, 215, 205)
    image[sem == 1] = (200, 150, 190)
    image[sem == 2] = (90, 40, 140)
    image = np.clip(image + rng.normal(0, 4, image.shape), 0, 255).astype(np.uint8)
    cls = np.where(sem > 0, 1 + seed % 5, 0).astype(np.uint8)
    return Sample(image, sem, cls, source, f"g{seed}", f"cell{seed}", scale=scale)


TRAIN = [cell_sample(i) for i in range(6)]
VAL = [cell_sample(100 + i) for i in range(2)]
TINY = dict(architecture="wcsegnet-compact", epochs=4, steps_per_epoch=2, batch_size=2,
            crop=48, lr=1e-3, threads=1, patience=10, seed=3)


def _run(config, **kwargs):
    events = []
    result = run_to_end(train_steps(TRAIN, VAL, config, **kwargs), events.append)
    return result, events


def _stop_after(n):
    calls = iter(range(1, 10 ** 6))
    return lambda: next(calls) >= n


def test_resume_equals_an_uninterrupted_run(tmp_path):
    config = TrainConfig(**TINY)
    straight, _ = _run(config, checkpoint_dir=tmp_path / "straight")
    first, ev1 = _run(config, checkpoint_dir=tmp_path / "run", should_stop=_stop_after(4))
    assert first.stopped == "user" and [h["epoch"] for h in first.history] == [1, 2]
    assert load_checkpoint(tmp_path / "run")["epoch"] == 2
    assert any(isinstance(e, CheckpointEvent) and e.path for e in ev1)
    second, ev2 = _run(config, checkpoint_dir=tmp_path / "run", resume=tmp_path / "run")
    assert any(isinstance(e, NoticeEvent) and "resuming after epoch 2" in e.message for e in ev2)
    assert [e.epoch for e in ev2 if isinstance(e, EpochEvent)] == [3, 4]
    assert second.stopped == "finished" and len(second.history) == 4
    for a, b in zip(straight.history, second.history):
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-5)
        assert a["score"] == pytest.approx(b["score"], rel=1e-5)
    assert straight.best_epoch == second.best_epoch
    final_a = load_checkpoint(tmp_path / "straight")["model"]
    final_b = load_checkpoint(tmp_path / "run")["model"]
    for k, v in final_a.items():
        assert torch.allclose(v.float(), final_b[k].float(), atol=1e-6), k
    best_a, best_b = straight.model.state_dict(), second.model.state_dict()
    assert all(torch.allclose(best_a[k].float(), best_b[k].float(), atol=1e-6) for k in best_a)


def test_checkpoint_holds_plain_data_and_the_settings(tmp_path):
    config = TrainConfig(**{**TINY, "epochs": 1, "optimizer": "sgd", "schedule": "step"})
    _run(config, checkpoint_dir=tmp_path)
    ckpt = torch.load(tmp_path / "last.pt", weights_only=True)  # no code, no custom classes
    assert ckpt["config"]["optimizer"] == "sgd" and ckpt["epoch"] == 1
    assert isinstance(ckpt["numpy_rng"]["state"]["state"], int)
    assert TrainConfig.from_dict(read_config(tmp_path)) == config
    assert not list(tmp_path.glob("*.tmp"))  # atomic write leaves no temporary file


class Evil:
    """Unpickling this runs code (writes the file ``target``)."""

    def __init__(self, target):
        self.target = str(target)

    def __reduce__(self):
        return (exec, (f"open({self.target!r}, 'w').write('ran')",))


@pytest.mark.parametrize("content", [b"", b"not a checkpoint at all", "pickle", "torch-pickle",
                                     "dict", "arch"])
def test_bad_checkpoints_are_a_clear_value_error(tmp_path, content):
    path = tmp_path / "bad.pt"
    if content == "pickle":  # would run code on pickle.load / torch.load(weights_only=False)
        path.write_bytes(pickle.dumps(Evil(tmp_path / "pwned")))
    elif content == "torch-pickle":
        torch.save({"format": "napari-wbcseg training checkpoint", "x": Evil(tmp_path / "pwned")},
                   path)
    elif content == "dict":
        torch.save({"weights": torch.zeros(2)}, path)
    elif content == "arch":
        run_to_end(train_steps(TRAIN, VAL, TrainConfig(**{**TINY, "epochs": 1}),
                               checkpoint_dir=tmp_path))
        path = tmp_path / "last.pt"
    else:
        path.write_bytes(content)
    config = TrainConfig(**{**TINY, "architecture": "wbc-net-compact"}) if content == "arch" \
        else TrainConfig(**TINY)
    with pytest.raises(ValueError) as info:
        run_to_end(train_steps(TRAIN, VAL, config, resume=path))
    assert str(path) in str(info.value) and "\n" not in str(info.value)
    if content == "torch-pickle":
        assert "could run code" in str(info.value) and "weights_only" not in str(info.value)
    assert not (tmp_path / "pwned").exists()
    with pytest.raises(ValueError, match="no checkpoint"):
        run_to_end(train_steps(TRAIN, VAL, config, resume=tmp_path / "missing.pt"))


def test_truncated_checkpoint(tmp_path):
    run_to_end(train_steps(TRAIN, VAL, TrainConfig(**{**TINY, "epochs": 1}),
                           checkpoint_dir=tmp_path))
    data = (tmp_path / "last.pt").read_bytes()
    (tmp_path / "last.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="not a readable training checkpoint"):
        run_to_end(train_steps(TRAIN, VAL, TrainConfig(**TINY), resume=tmp_path))


def test_resume_with_a_lower_learning_rate_continues_the_schedule(tmp_path):
    config = TrainConfig(**TINY)
    _run(config, checkpoint_dir=tmp_path, should_stop=_stop_after(4))
    result, events = _run(TrainConfig(**{**TINY, "lr": 1e-4}), resume=tmp_path)
    notes = " ".join(e.message for e in events if isinstance(e, NoticeEvent))
    assert "lr 0.001 -> 0.0001" in notes and "step 4" in notes
    assert len(result.history) == 4


def test_non_finite_loss_stops_and_keeps_the_best_weights(tmp_path, monkeypatch):
    real = loop.batch_loss
    calls = {"n": 0}

    def flaky(model, batch, **kw):
        calls["n"] += 1
        loss, parts = real(model, batch, **kw)
        return (loss * float("nan"), parts) if calls["n"] == 5 else (loss, parts)

    monkeypatch.setattr(loop, "batch_loss", flaky)
    result, events = _run(TrainConfig(**TINY), checkpoint_dir=tmp_path)
    assert result.stopped == "non-finite loss"
    note = [e.message for e in events if isinstance(e, NoticeEvent)][-1]
    assert "epoch 3, step 1" in note and "lower learning rate" in note and "last.pt" in note
    assert [h["epoch"] for h in result.history] == [1, 2]
    best = load_checkpoint(tmp_path)["best"]
    assert result.best_epoch == best["epoch"] >= 1
    state = result.model.state_dict()
    assert all(torch.equal(state[k], best["state"][k]) for k in state)
    assert all(torch.isfinite(v.float()).all() for v in state.values())


def test_non_finite_in_the_first_epoch_keeps_the_initial_weights(monkeypatch):
    monkeypatch.setattr(loop, "batch_loss",
                        lambda m, b, **kw: (torch.tensor(float("inf"), requires_grad=True), {}))
    result, events = _run(TrainConfig(**TINY))
    assert result.stopped == "non-finite loss" and result.history == []
    assert "initial weights" in events[-1].message and "epoch 1, step 1" in events[-1].message


def test_mosaics_and_preprocessing_in_batches(monkeypatch):
    from napari_wbcseg.training.data import sampling

    seen = []
    real = sampling.mosaic
    monkeypatch.setattr(sampling, "mosaic", lambda *a, **k: seen.append(a[1]) or real(*a, **k))
    fields = [cell_sample(50 + i, source="BCISC-field", size=160) for i in range(2)]
    config = TrainConfig(**{**TINY, "epochs": 1, "steps_per_epoch": 3, "mosaic_fraction": 1.0,
                            "mosaic_grids": (2, 3), "preprocess": "ahe-retinex", "crop": 64})
    events = []
    result = run_to_end(train_steps(TRAIN + fields, VAL, config), events.append)
    assert len(seen) == 6 and set(seen) <= {2, 3}
    assert any("ahe-retinex preprocessing of 10 images" in getattr(e, "message", "")
               for e in events)
    assert result.config["preprocess"] == "ahe-retinex"
    # no single-cell source: a notice, and plain crops
    events = []
    run_to_end(train_steps(fields, VAL, TrainConfig(**{**TINY, "epochs": 1,
                                                       "mosaic_fraction": 0.5})), events.append)
    assert any("no single-cell images" in getattr(e, "message", "") for e in events)


def test_one_pass_epochs_and_bad_settings():
    result, events = _run(TrainConfig(**{**TINY, "epochs": 1, "steps_per_epoch": 0}))
    assert [e.steps for e in events if hasattr(e, "steps")][0] == 3  # 6 samples / batch 2
    for bad in ({"optimizer": "rmsprop"}, {"schedule": "cosine"}, {"preprocess": "msr"},
                {"mosaic_fraction": 2.0}, {"augment": {"warp": True}}, {"lr": -1.0}):
        with pytest.raises(ValueError):
            run_to_end(train_steps(TRAIN, VAL, TrainConfig(**{**TINY, **bad})))


@pytest.mark.parametrize("optimizer, schedule", [("adam", "constant"), ("sgd", "step"),
                                                 ("adamw", "plateau")])
def test_optimizers_and_schedules_train(optimizer, schedule):
    result, _ = _run(TrainConfig(**{**TINY, "epochs": 2, "optimizer": optimizer,
                                    "schedule": schedule}))
    assert result.stopped == "finished" and len(result.history) == 2


def test_without_validation_the_best_epoch_is_a_trained_one(monkeypatch):
    """No validation images: epochs are scored by minus the mean loss, which is below -1
    for a loss above 1; the first epoch must still count as an improvement."""
    real = loop.batch_loss

    def big_loss(model, batch, **kw):
        loss, parts = real(model, batch, **kw)
        return loss + 5.0, parts

    monkeypatch.setattr(loop, "batch_loss", big_loss)
    result = run_to_end(train_steps(TRAIN, [], TrainConfig(**{**TINY, "epochs": 2})),
                        lambda ev: None)
    assert result.best_epoch >= 1 and result.best_score < -1


def test_freeze_norm_keeps_the_batchnorm_statistics_of_the_start():
    from napari_wbcseg.models import create_model

    start = create_model("wcsegnet-compact").state_dict()
    stats = [k for k in start if k.endswith("running_mean")]
    assert stats
    config = {**TINY, "epochs": 1}
    frozen = run_to_end(train_steps(TRAIN, VAL, TrainConfig(**config, freeze_norm=True),
                                    initial_state=start), lambda ev: None).model.state_dict()
    free = run_to_end(train_steps(TRAIN, VAL, TrainConfig(**config), initial_state=start),
                      lambda ev: None).model.state_dict()
    assert all(torch.equal(frozen[k], start[k]) for k in stats)
    assert not all(torch.equal(free[k], start[k]) for k in stats)
    weights = [k for k in start if k.endswith(".weight") and start[k].ndim == 4]
    assert any(not torch.equal(frozen[k], start[k]) for k in weights)  # the rest still trains


@pytest.mark.parametrize("arch", ["wcsegnet-compact", "wbc-net-compact", "unet-mobilenetv2"])
def test_detached_class_head_keeps_the_class_loss_out_of_the_shared_network(arch):
    from napari_wbcseg.models import create_model
    from napari_wbcseg.training.engine.optim import (class_head_modules, class_head_parameters,
                                              detach_class_head)

    model = create_model(arch)
    model.train()
    head = class_head_modules(model)
    hooks = detach_class_head(head)
    head_names = {n for n, p in model.named_parameters()
                  if any(p is q for q in class_head_parameters(model))}
    out = model(torch.rand(1, 3, 64, 64))
    out = out[-1] if isinstance(out, list) else out
    out["cell_type"].square().sum().backward()
    moved = {n for n, p in model.named_parameters() if p.grad is not None and p.grad.any()}
    assert moved and moved <= head_names  # only the head gets class-loss gradients
    for h in hooks:
        h.remove()
    model.zero_grad()
    out = model(torch.rand(1, 3, 64, 64))
    out = out[-1] if isinstance(out, list) else out
    out["cell_type"].square().sum().backward()
    assert {n for n, p in model.named_parameters()
            if p.grad is not None and p.grad.any()} - head_names  # undone: it reaches further


def test_class_head_only_run_leaves_no_hooks_and_clips_groups_apart():
    from napari_wbcseg.training.engine.optim import clip_gradients

    result, _ = _run(TrainConfig(**{**TINY, "epochs": 1}, class_head_only=True))
    assert not any(m._forward_pre_hooks for m in result.model.modules())
    a, b = torch.nn.Parameter(torch.zeros(3)), torch.nn.Parameter(torch.zeros(3))
    a.grad, b.grad = torch.full((3,), 100.0), torch.full((3,), 0.1)
    assert clip_gradients([[a], [b]], 5.0) == pytest.approx(100 * 3 ** 0.5)
    assert float(a.grad.norm()) == pytest.approx(5.0, rel=1e-4)
    assert torch.allclose(b.grad, torch.full((3,), 0.1))  # the small group is not shrunk


def test_cell_type_counts_count_cells_not_pixels():
    from napari_wbcseg.training.engine.loop import cell_type_counts

    counts = cell_type_counts(TRAIN, 5)  # one cell per sample, type 1 + seed % 5
    assert counts.tolist() == [2, 1, 1, 1, 1]
