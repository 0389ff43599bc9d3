"""Training checkpoints: everything needed to continue a run where it stopped.

After every epoch :func:`~.loop.train_steps` writes ``<checkpoint_dir>/last.pt``:
model, optimiser and schedule state, epoch, the best score / epoch / validation /
weights so far, the history, both random-number generators' states and the settings.
The file holds plain tensors and containers only (the numpy generator's state as
ints and strings) and is read with ``torch.load(weights_only=True)`` only, so a
checkpoint from elsewhere can never run code.  Writes are atomic (a temporary file,
then ``os.replace``, through :mod:`napari_wbcseg.io.atomic`): a run killed while saving
leaves the previous checkpoint whole.  A checkpoint from elsewhere is checked field by
field on load; a wrong type gives a one-line ``ValueError`` naming the field.
"""
from __future__ import annotations

import hashlib
import os
import pickle
import re
import warnings
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from ...io.atomic import atomic_path

FORMAT = "napari-wbcseg training checkpoint"
VERSION = 1
FILENAME = "last.pt"
_KEYS = {"epoch": int, "steps_done": int, "model": dict, "optimizer": dict, "best": dict,
         "since_best": int, "history": list, "numpy_rng": dict, "torch_rng": torch.Tensor,
         "config": dict, "encoder_pretrained": bool, "data": dict}
# settings the optimiser and schedule are built from: if one changed, the schedule is
# rebuilt for the new settings at the position reached (the optimiser keeps its moments)
_SCHEDULE_KEYS = ("optimizer", "lr", "weight_decay", "momentum", "schedule", "epochs",
                  "steps_per_epoch", "patience")
_QUIET_KEYS = {"seed", "threads", "imagenet", "precision"}  # restored from the file or irrelevant now


def checkpoint_file(path) -> Path:
    """``path`` itself, or ``path/last.pt`` for a folder."""
    path = Path(path)
    return path / FILENAME if path.is_dir() else path


def data_fingerprint(samples) -> dict:
    names = "\n".join(sorted(f"{s.source}/{s.name}" for s in samples))
    return {"n": len(samples), "sha256": hashlib.sha256(names.encode()).hexdigest()}


def _numpy_state(rng: np.random.Generator) -> dict:
    """The generator's state as plain ints / strings (``torch.load``-safe)."""
    def plain(x):
        if isinstance(x, dict):
            return {str(k): plain(v) for k, v in x.items()}
        if isinstance(x, (np.integer, int)):
            return int(x)
        if isinstance(x, str):
            return x
        raise TypeError(f"unexpected numpy generator state entry {x!r}")
    return plain(rng.bit_generator.state)


def save_checkpoint(folder, *, epoch, steps_done, model, opt, sched, best, since_best,
                    history, rng, config, encoder_pretrained, data) -> Path:
    """Write ``folder/last.pt`` atomically; returns its path."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    score, best_epoch, validation, state = best
    payload = {
        "format": FORMAT, "version": VERSION, "epoch": int(epoch), "steps_done": int(steps_done),
        "model": model.state_dict(), "optimizer": opt.state_dict(),
        "scheduler": None if sched is None else sched.state_dict(),
        "best": {"score": float(score), "epoch": int(best_epoch), "validation": validation,
                 "state": state},
        "since_best": int(since_best), "history": history, "numpy_rng": _numpy_state(rng),
        "torch_rng": torch.get_rng_state(), "config": asdict(config),
        "encoder_pretrained": bool(encoder_pretrained), "data": data,
    }
    target = folder / FILENAME
    with atomic_path(target) as tmp, open(tmp, "wb") as fh:
        torch.save(payload, fh)
        fh.flush()
        os.fsync(fh.fileno())  # on disk before it replaces the previous checkpoint
    return target


def _first_line(exc) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]


def _why(exc) -> str:
    """One line for a failed ``torch.load`` (never torch's advice to drop weights_only)."""
    text = str(exc)
    match = re.search(r"Unsupported global: GLOBAL (\S+)", text)
    if match:
        return (f"it holds {match.group(1)}, not only tensors and plain containers; such files "
                "are never loaded, as they could run code")
    if "Weights only load failed" in text or isinstance(exc, (EOFError, pickle.PickleError)):
        return "not a torch file of tensors and plain containers, or damaged"
    return _first_line(exc)


def load_checkpoint(path) -> dict:
    """Read and check a checkpoint (``ValueError`` with a one-line reason otherwise)."""
    path = checkpoint_file(path)
    if not path.is_file():
        raise ValueError(f"no checkpoint at {path}")
    try:
        with warnings.catch_warnings():  # e.g. "Detected pickle protocol 4": refused anyway
            warnings.simplefilter("ignore")
            ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # corrupt zip, refused (unsafe) pickle, truncation, ...
        raise ValueError(f"{path} is not a readable training checkpoint "
                         f"({_why(exc)})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise ValueError(f"{path} is not a napari-wbcseg training checkpoint")
    if not isinstance(ckpt.get("version"), int) or ckpt["version"] > VERSION:
        raise ValueError(f"{path}: checkpoint version {ckpt.get('version')!r} is newer than "
                         f"this napari-wbcseg reads ({VERSION}); update napari-wbcseg")
    bad = [k for k, kind in _KEYS.items() if not isinstance(ckpt.get(k), kind)
           or (kind is int and isinstance(ckpt[k], bool))]
    if bad:
        raise ValueError(f"{path}: incomplete checkpoint (missing or invalid: {', '.join(bad)})")
    why = _field_problem(ckpt)
    if why:
        raise ValueError(f"{path}: invalid checkpoint field {why}")
    return ckpt


def _count(x, top=10**9) -> bool:
    return isinstance(x, int) and not isinstance(x, bool) and 0 <= x <= top


def _tensors(d) -> bool:
    return all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in d.items())


def _field_problem(ckpt: dict) -> str | None:
    """What is wrong with a checkpoint's fields (beyond their top-level types), or None."""
    for key in ("epoch", "steps_done", "since_best"):
        if not _count(ckpt[key]):
            return f"{key!r} (must be a count, got {ckpt[key]!r})"
    best = ckpt["best"]
    score = best.get("score")
    if not (isinstance(score, (int, float)) and not isinstance(score, bool) and score == score):
        return "'best.score' (must be a number)"
    if not (isinstance(best.get("epoch"), int) and -1 <= best["epoch"] <= ckpt["epoch"]):
        return "'best.epoch' (must be an epoch of the run)"
    if not isinstance(best.get("validation"), dict):
        return "'best.validation' (must be a dict)"
    if not isinstance(best.get("state"), dict) or not _tensors(best["state"]):
        return "'best.state' (must map names to tensors)"
    if not _tensors(ckpt["model"]):
        return "'model' (must map names to tensors)"
    if not all(isinstance(h, dict) for h in ckpt["history"]):
        return "'history' (must be a list of dicts)"
    if not (ckpt.get("scheduler") is None or isinstance(ckpt["scheduler"], dict)):
        return "'scheduler' (must be a dict)"
    config = ckpt["config"]
    if not (isinstance(config.get("architecture"), str)
            and isinstance(config.get("model_config"), dict)):
        return "'config' (needs 'architecture' and 'model_config')"
    rng = ckpt["numpy_rng"]
    if not (isinstance(rng.get("bit_generator"), str) and isinstance(rng.get("state"), dict)):
        return "'numpy_rng' (needs 'bit_generator' and 'state')"
    t = ckpt["torch_rng"]
    if t.dtype != torch.uint8 or t.ndim != 1:
        return "'torch_rng' (must be a 1-D uint8 tensor)"
    if "n" in ckpt["data"] and not _count(ckpt["data"]["n"]):
        return "'data.n' (must be a count)"
    return None


def read_config(path) -> dict:
    """The training settings stored in a checkpoint (``ValueError`` if unreadable)."""
    return dict(load_checkpoint(path)["config"])


def _fit(model, state, what, path, *, load=True):
    own = model.state_dict()
    wrong = sorted(set(own) ^ set(state)) or [
        k for k, v in state.items()
        if not (isinstance(v, torch.Tensor) and v.shape == own[k].shape)]
    if wrong:
        raise ValueError(f"{path}: the {what} do not fit this model (e.g. {wrong[0]!r})")
    if load:
        model.load_state_dict(state)


def restore(ckpt, path, *, model, opt, sched, rng, config, steps_per_epoch, data=None):
    """Put the checkpoint's state into the freshly built run; returns notices (strings).

    ``opt`` and ``sched`` are built from ``config``.  If the settings they come from are
    unchanged, their saved state is loaded exactly; otherwise the optimiser keeps its
    moments with the new hyper-parameters and the schedule is the new one, advanced to the
    steps already done.  Architecture and model settings must match.
    """
    old = ckpt["config"]
    new = asdict(config)
    for key in ("architecture", "model_config"):
        if old.get(key) != new[key]:
            raise ValueError(f"{path} was made with {key} {old.get(key)!r}, not {new[key]!r}; "
                             "a checkpoint continues only the same network")
    _fit(model, ckpt["model"], "weights", path)
    _fit(model, ckpt["best"]["state"], "best weights", path, load=False)  # used at the end
    changed = {k: (old.get(k), new[k]) for k in new
               if old.get(k) != new[k] and k not in _QUIET_KEYS}
    notes = []
    sched_changed = [k for k in _SCHEDULE_KEYS if k in changed
                     and (k != "patience" or config.schedule == "plateau")]
    fresh = [{k: v for k, v in g.items() if k != "params"} for g in opt.param_groups]
    if old.get("optimizer") == config.optimizer:
        try:
            opt.load_state_dict(ckpt["optimizer"])
        except (ValueError, KeyError, RuntimeError, TypeError) as exc:
            raise ValueError(f"{path}: the optimiser state does not fit "
                             f"({_first_line(exc)})") from None
    if not sched_changed:
        if sched is not None:
            try:
                sched.load_state_dict(ckpt["scheduler"])
            except (AttributeError, ValueError, KeyError, TypeError) as exc:
                raise ValueError(f"{path}: the schedule state does not fit "
                                 f"({_first_line(exc)})") from None
    else:
        for group, hyper in zip(opt.param_groups, fresh):
            group.update(hyper)
        done, epochs = int(ckpt["steps_done"]), int(ckpt["epoch"])
        if config.schedule == "onecycle" and done >= config.epochs * steps_per_epoch:
            raise ValueError(f"{path}: {done} steps are already done; the new schedule has "
                             f"only {config.epochs * steps_per_epoch}")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "step() before optimizer.step()"
            for _ in range(done if config.schedule == "onecycle" else
                           epochs if config.schedule == "step" else 0):
                sched.step()
        notes.append("changed since the checkpoint: " + ", ".join(
            f"{k} {changed[k][0]!r} -> {changed[k][1]!r}" for k in sched_changed)
            + f"; the learning-rate schedule continues at step {done} of the new settings"
            + ("" if old.get("optimizer") == config.optimizer else
               " with a fresh optimiser state"))
    others = [k for k in changed if k not in sched_changed]
    if others:
        notes.append("the rest of the run uses the new " + ", ".join(
            f"{k} ({changed[k][0]!r} -> {changed[k][1]!r})" for k in others))
    if data is not None and ckpt["data"] and ckpt["data"] != data:
        notes.append(f"the training samples differ from the checkpoint's ({ckpt['data'].get('n')}"
                     f" then, {data['n']} now): the run continues, but is not a replay")
    state = ckpt["numpy_rng"]
    if state.get("bit_generator") != type(rng.bit_generator).__name__:
        raise ValueError(f"{path}: random generator {state.get('bit_generator')!r} unsupported")
    try:
        rng.bit_generator.state = state
        torch.set_rng_state(ckpt["torch_rng"])
    except (ValueError, TypeError, KeyError, RuntimeError) as exc:
        raise ValueError(f"{path}: invalid random-generator state "
                         f"({_first_line(exc)})") from None
    return notes


__all__ = ["FILENAME", "checkpoint_file", "data_fingerprint", "load_checkpoint", "read_config",
           "restore", "save_checkpoint"]
