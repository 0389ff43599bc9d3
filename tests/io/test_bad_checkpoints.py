"""Training checkpoints from elsewhere: a field of the wrong type is one ValueError naming it,
and anything but tensors and plain containers is never unpickled."""
import pickle

import numpy as np
import pytest
import torch

from napari_wbcseg.training.engine.checkpoint import FORMAT, _numpy_state, load_checkpoint


def _valid() -> dict:
    w = {"w": torch.zeros(2)}
    return {"format": FORMAT, "version": 1, "epoch": 2, "steps_done": 8, "model": dict(w),
            "optimizer": {}, "scheduler": None,
            "best": {"score": 0.5, "epoch": 1, "validation": {}, "state": dict(w)},
            "since_best": 1, "history": [{"epoch": 1}, {"epoch": 2}],
            "numpy_rng": _numpy_state(np.random.default_rng(0)),
            "torch_rng": torch.get_rng_state(),
            "config": {"architecture": "wcsegnet-compact", "model_config": {}},
            "encoder_pretrained": False, "data": {"n": 3, "sha256": "x"}}


def _set(ckpt, dotted, value):
    *parents, last = dotted.split(".")
    for key in parents:
        ckpt = ckpt[key]
    ckpt[last] = value


BAD = [
    ("epoch", "2", "epoch"), ("epoch", True, "epoch"), ("epoch", -1, "epoch"),
    ("steps_done", 2.5, "steps_done"), ("since_best", 10**12, "since_best"),
    ("model", [1, 2], "model"), ("model", {"w": [0.0, 0.0]}, "model"),
    ("best.score", "high", "best.score"), ("best.score", float("nan"), "best.score"),
    ("best.epoch", 99, "best.epoch"), ("best.validation", [], "best.validation"),
    ("best.state", {"w": 1}, "best.state"), ("history", [1, 2], "history"),
    ("history", "epochs", "history"), ("scheduler", "onecycle", "scheduler"),
    ("config", {"architecture": 5, "model_config": {}}, "config"),
    ("config", {"architecture": "x"}, "config"), ("numpy_rng", {}, "numpy_rng"),
    ("torch_rng", torch.zeros(4), "torch_rng"), ("encoder_pretrained", 1, "encoder_pretrained"),
    ("data", {"n": -3}, "data.n"), ("data", None, "data"), ("optimizer", None, "optimizer"),
]


def test_valid_checkpoint_loads(tmp_path):
    torch.save(_valid(), tmp_path / "last.pt")
    assert load_checkpoint(tmp_path)["epoch"] == 2


@pytest.mark.parametrize("field, value, named", BAD, ids=[f"{b[0]}={b[1]!r}"[:40] for b in BAD])
def test_wrong_field_type_is_one_value_error_naming_it(tmp_path, field, value, named):
    ckpt = _valid()
    _set(ckpt, field, value)
    torch.save(ckpt, tmp_path / "last.pt")
    with pytest.raises(ValueError, match=named.replace(".", r"\.")) as info:
        load_checkpoint(tmp_path / "last.pt")
    assert "\n" not in str(info.value)


class _Payload:
    def __reduce__(self):
        return (print, ("code ran",))


def test_pickled_object_is_never_unpickled(tmp_path, capsys):
    ckpt = _valid()
    ckpt["history"] = [_Payload()]
    with open(tmp_path / "last.pt", "wb") as fh:
        torch.save(ckpt, fh, pickle_protocol=pickle.HIGHEST_PROTOCOL)
    with pytest.raises(ValueError, match="not a readable training checkpoint"):
        load_checkpoint(tmp_path / "last.pt")
    assert "code ran" not in capsys.readouterr().out
