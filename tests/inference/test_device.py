"""Device choice; runs on a CPU-only machine by mocking torch's CUDA / MPS probes."""
import re
from types import SimpleNamespace

import pytest

torch = pytest.importorskip("torch")

from napari_wbcseg.inference.device import (  # noqa: E402
    available_devices,
    describe_device,
    free_cached_memory,
    is_out_of_memory,
    resolve_device,
)


@pytest.fixture
def machine(monkeypatch):
    """Pretend to be a machine with ``gpus`` CUDA devices and/or MPS."""

    def configure(gpus=0, mps=False):
        monkeypatch.setattr(torch.cuda, "is_available", lambda: gpus > 0)
        monkeypatch.setattr(torch.cuda, "device_count", lambda: gpus)
        monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
        monkeypatch.setattr(
            torch.cuda,
            "get_device_properties",
            lambda i: SimpleNamespace(name=f"NVIDIA H100 80GB HBM3 #{i}", total_memory=int(79.2 * 2**30)),
        )
        monkeypatch.setattr(torch.backends.mps, "is_available", lambda: mps)

    return configure


def test_cpu_only(machine):
    machine(gpus=0)
    assert available_devices() == ["cpu"]
    assert resolve_device() == "cpu"
    assert resolve_device("auto") == "cpu"
    assert resolve_device(None) == "cpu"
    assert resolve_device(" CPU ") == "cpu"


def test_real_machine_lists_cpu_last():
    devices = available_devices()
    assert devices[-1] == "cpu"
    assert resolve_device("auto") == devices[0]


def test_auto_prefers_cuda_then_mps_then_cpu(machine):
    machine(gpus=1, mps=True)
    assert available_devices() == ["cuda", "mps", "cpu"]
    assert resolve_device("auto") == "cuda"
    machine(gpus=0, mps=True)
    assert available_devices() == ["mps", "cpu"]
    assert resolve_device("auto") == "mps"
    assert resolve_device("mps") == "mps"


def test_cuda_requested_but_missing_is_a_clear_one_line_error(machine):
    machine(gpus=0)
    with pytest.raises(ValueError) as info:
        resolve_device("cuda")
    msg = str(info.value)
    assert "\n" not in msg
    assert "CUDA is not available" in msg and "available devices: cpu" in msg
    with pytest.raises(ValueError, match="CUDA is not available"):
        resolve_device("cuda:0")
    with pytest.raises(ValueError, match="MPS is not available.*available devices: cpu"):
        resolve_device("mps")


def test_cuda_index(machine):
    machine(gpus=2)
    assert available_devices() == ["cuda", "cuda:0", "cuda:1", "cpu"]
    assert resolve_device("cuda") == "cuda"
    assert resolve_device("CUDA:1") == "cuda:1"
    with pytest.raises(ValueError, match=r"only 2 CUDA devices \(cuda:0..cuda:1\)"):
        resolve_device("cuda:2")
    machine(gpus=1)
    with pytest.raises(ValueError, match="only 1 CUDA device "):
        resolve_device("cuda:1")


@pytest.mark.parametrize("name", ["tpu", "gpu", "cuda:x", "cuda:-1", "", "cpu:0"])
def test_unknown_device_lists_valid_choices(name):
    with pytest.raises(ValueError) as info:
        resolve_device(name)
    msg = str(info.value)
    assert "unknown device" in msg and "\n" not in msg
    for choice in ("auto", "cpu", "cuda", "mps", "cuda:N"):
        assert choice in msg


def test_describe_cpu():
    assert re.fullmatch(r"CPU \(\d+ threads?\)", describe_device("cpu"))


def test_describe_cuda(machine):
    machine(gpus=2)
    assert describe_device("cuda") == "CUDA: NVIDIA H100 80GB HBM3 #0 (79 GiB)"
    assert describe_device("cuda:1") == "CUDA #1: NVIDIA H100 80GB HBM3 #1 (79 GiB)"
    assert describe_device("auto").startswith("CUDA")
    machine(gpus=0, mps=True)
    assert "MPS" in describe_device("auto")
    machine(gpus=0)
    with pytest.raises(ValueError, match="CUDA is not available"):
        describe_device("cuda")


def test_is_out_of_memory():
    assert is_out_of_memory(torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"))
    assert is_out_of_memory(torch.cuda.OutOfMemoryError("no message match needed"))
    assert is_out_of_memory(RuntimeError("CUDA out of memory. Tried to allocate 20.00 MiB"))
    assert is_out_of_memory(RuntimeError("MPS backend out of memory (MPS allocated: 1 GB)"))
    assert not is_out_of_memory(RuntimeError("mat1 and mat2 shapes cannot be multiplied"))
    assert not is_out_of_memory(ValueError("out of memory"))
    assert not is_out_of_memory(MemoryError())


def test_free_cached_memory_empties_the_right_cache(machine, monkeypatch):
    emptied = []
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: emptied.append("cuda"))
    monkeypatch.setattr(torch.mps, "empty_cache", lambda: emptied.append("mps"))
    free_cached_memory("cpu")
    assert emptied == []  # nothing to free on the CPU
    machine(gpus=0)
    free_cached_memory("cuda")  # no CUDA here: nothing called, no error
    assert emptied == []
    machine(gpus=1)
    free_cached_memory("cuda")
    free_cached_memory("cuda:0")
    assert emptied == ["cuda", "cuda"]
    free_cached_memory("mps")
    assert emptied == ["cuda", "cuda", "mps"]
