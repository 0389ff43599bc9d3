"""Every file the plugin writes goes through io.atomic: a full disk mid-write (simulated with
an OSError(ENOSPC) from the encoder after it wrote part of the file) leaves the previous
file byte-identical and no temporary file behind, and new files get 0666 & ~umask."""
import errno
import hashlib
import os

import numpy as np
import pytest

from napari_wbcseg.io import atomic

UMASK = 0o027  # gives 0640: neither mkstemp's 0600 nor the usual 0644


@pytest.fixture
def umask():
    old = os.umask(UMASK)
    yield 0o666 & ~UMASK
    os.umask(old)


def _full_disk(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


def _write_part_then_fail(path):
    with open(path, "wb") as fh:
        fh.write(b"half a file")
    _full_disk()


class _FailingCsv:
    def __init__(self, fh):
        self.fh = fh

    def writerow(self, row):
        self.fh.write("half,a,row")
        _full_disk()

    writerows = writerow


def _labels(tmp_path):
    from napari_wbcseg.io.writer import save_labels
    return lambda: save_labels(tmp_path / "cells_nucleus.tif", np.eye(16, dtype=np.uint16))


def _table(tmp_path):
    from napari_wbcseg.io.writer import save_table
    return lambda: save_table(tmp_path / "cells.csv", {"cell_id": [1, 2], "area": [10, 20]})


def _report(tmp_path):
    from napari_wbcseg.training.evaluation.report import write_csv
    report = {"d": {"images": 1, "regions": {"cell": {"dice": 0.5}}}}
    return lambda: write_csv(report, tmp_path / "report.csv")


def _weights(tmp_path):
    import torch

    from napari_wbcseg.models.weights import save_weights
    model = torch.nn.Conv2d(3, 2, 1)
    model.architecture, model.config = "conv", {}
    return lambda: save_weights(model, tmp_path / "m.safetensors")


def _checkpoint(tmp_path):
    import torch

    from napari_wbcseg.training.engine.checkpoint import save_checkpoint
    from napari_wbcseg.training.engine.loop import TrainConfig
    model = torch.nn.Linear(2, 2)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    return lambda: save_checkpoint(
        tmp_path, epoch=1, steps_done=1, model=model, opt=opt, sched=None,
        best=(0.5, 1, {}, model.state_dict()), since_best=0, history=[], rng=np.random.default_rng(0),
        config=TrainConfig(), encoder_pretrained=False, data={})


def _text(tmp_path):
    return lambda: atomic.write_text_atomic(tmp_path / "card.json", '{"name": "x"}\n')


WRITERS = {  # name: (make the write, path written, what to break mid-write)
    "labels tiff": (_labels, "cells_nucleus.tif", ("tifffile", "imwrite")),
    "table csv": (_table, "cells.csv", ("csv", "writer")),
    "report csv": (_report, "report.csv", ("csv", "writer")),
    "weights": (_weights, "m.safetensors", ("safetensors.torch", "save_file")),
    "checkpoint": (_checkpoint, "last.pt", ("torch", "save")),
    "card text": (_text, "card.json", ("napari_wbcseg.io.atomic", "open")),
}


def _breaker(target):
    module, name = target
    if name == "writer":
        return _FailingCsv
    if name == "save":  # torch.save(obj, fh)
        return lambda obj, fh, **kw: (fh.write(b"half"), _full_disk())
    if name == "open":  # text written by the helper itself
        real = open
        return lambda path, *a, **kw: _HalfFile(real(path, *a, **kw))
    if name == "imwrite":  # tifffile.imwrite(path, data)
        return lambda path, *a, **kw: _write_part_then_fail(path)
    return lambda data, path, *a, **kw: _write_part_then_fail(path)  # save_file(tensors, path)


class _HalfFile:
    def __init__(self, fh):
        self.fh = fh

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.fh.close()

    def write(self, data):
        self.fh.write(data[: len(data) // 2])
        _full_disk()


def _digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("case", list(WRITERS))
def test_full_disk_mid_write_keeps_the_previous_file(tmp_path, monkeypatch, case):
    import importlib

    make, name, target = WRITERS[case]
    write = make(tmp_path)
    write()
    before = _digest(tmp_path / name)
    module = importlib.import_module(target[0])
    monkeypatch.setattr(module, target[1], _breaker(target), raising=target[1] != "open")
    with pytest.raises(OSError) as info:
        write()
    assert info.value.errno == errno.ENOSPC
    assert _digest(tmp_path / name) == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


@pytest.mark.parametrize("case", list(WRITERS))
def test_new_files_get_0666_minus_umask(tmp_path, umask, case):
    make, name, _ = WRITERS[case]
    make(tmp_path)()
    assert (tmp_path / name).stat().st_mode & 0o777 == umask


def test_project_save_is_all_or_nothing_on_a_full_disk(tmp_path, monkeypatch, umask):
    import tifffile

    from napari_wbcseg.core.synthetic import synthetic_smear
    from napari_wbcseg.io.project import save_image_entry

    sm = synthetic_smear((128, 160), n_wbc=1, seed=2, classes=[2])
    save_image_entry(tmp_path, "a", sm.image, sm.nucleus, sm.cytoplasm, sm.cell_type)
    files = sorted(p for p in tmp_path.rglob("*") if p.is_file())
    assert {p.stat().st_mode & 0o777 for p in files} == {umask}
    before = {p: _digest(p) for p in files}
    real, calls = tifffile.imwrite, []

    def third_fails(path, *args, **kwargs):
        calls.append(path)
        if len(calls) == 3:
            _write_part_then_fail(path)
        return real(path, *args, **kwargs)

    monkeypatch.setattr(tifffile, "imwrite", third_fails)
    with pytest.raises(OSError):
        save_image_entry(tmp_path, "a", sm.image[::-1].copy(), sm.nucleus[::-1].copy(),
                         sm.cytoplasm[::-1].copy(), sm.cell_type[::-1].copy(), reviewed=True)
    assert {p: _digest(p) for p in files} == before
    assert sorted(p for p in tmp_path.rglob("*") if p.is_file()) == files


def test_import_with_a_full_disk_adds_nothing(tiny_model, tmp_path, monkeypatch, umask):
    from napari_wbcseg.io.model_exchange import ModelFileError, export_model, import_model
    from napari_wbcseg.io.model_store import list_models, user_dir

    exported = export_model(tiny_model, tmp_path / "shared" / "tiny-copy.safetensors")
    assert exported.stat().st_mode & 0o777 == umask
    assert exported.with_suffix(".json").stat().st_mode & 0o777 == umask
    before = sorted(p.name for p in user_dir().iterdir())
    monkeypatch.setattr("napari_wbcseg.io.model_exchange.write_text_atomic",
                        lambda path, text: _full_disk())  # the card, after the weights
    with pytest.raises(ModelFileError, match="No space left"):
        import_model(exported)
    assert sorted(p.name for p in user_dir().iterdir()) == before
    assert "tiny-copy" not in list_models()

