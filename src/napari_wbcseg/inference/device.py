"""Choosing and describing the compute device; torch is imported only inside functions.

``resolve_device("auto")`` picks CUDA, then Apple MPS, then the CPU.  Asking
for a device that is not there is an error with the list of the ones that are,
never a silent fall-back to the CPU.
"""
from __future__ import annotations

import re
import sys

__all__ = [
    "DEVICE_CHOICES",
    "available_devices",
    "describe_device",
    "free_cached_memory",
    "is_out_of_memory",
    "resolve_device",
]

DEVICE_CHOICES = ("auto", "cpu", "cuda", "mps", "cuda:N")
_CUDA_INDEX = re.compile(r"cuda:(\d+)")


def _torch():
    import torch

    return torch


def _mps_available(torch) -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def available_devices() -> list[str]:
    """Devices usable here, best first: ``["cuda", "cpu"]``, ``["mps", "cpu"]``, ``["cpu"]``...

    With more than one GPU, ``"cuda:0"``, ``"cuda:1"``... follow ``"cuda"``.
    """
    torch = _torch()
    devices = []
    if torch.cuda.is_available():
        devices.append("cuda")
        n = torch.cuda.device_count()
        if n > 1:
            devices += [f"cuda:{i}" for i in range(n)]
    if _mps_available(torch):
        devices.append("mps")
    devices.append("cpu")
    return devices


def resolve_device(choice: str | None = "auto") -> str:
    """Turn a user's choice into a torch device string that works here.

    ``"auto"`` (or None): CUDA, then MPS, then CPU.  Raises ValueError, one
    line, for unknown names and for devices that are not available.
    """
    name = "auto" if choice is None else str(choice).strip().lower()
    index = None
    m = _CUDA_INDEX.fullmatch(name)
    if m:
        index = int(m.group(1))
    elif name not in ("auto", "cpu", "cuda", "mps"):
        raise ValueError(f"unknown device {choice!r}; choose one of: {', '.join(DEVICE_CHOICES)}")
    if name == "cpu":
        return "cpu"
    avail = available_devices()
    if name == "auto":
        return avail[0]
    if name.startswith("cuda") and "cuda" not in avail:
        raise ValueError(f"device {name!r} requested but CUDA is not available here; available devices: {', '.join(avail)}")
    if name == "mps" and "mps" not in avail:
        raise ValueError(f"device 'mps' requested but Apple MPS is not available here; available devices: {', '.join(avail)}")
    if index is not None:
        count = _torch().cuda.device_count()
        if index >= count:
            raise ValueError(
                f"device {name!r} requested but there {'is' if count == 1 else 'are'} only {count} "
                f"CUDA device{'s' if count != 1 else ''} (cuda:0..cuda:{count - 1}); "
                f"available devices: {', '.join(avail)}"
            )
    return name


def describe_device(name: str | None = "auto") -> str:
    """One line for the user: ``"CPU (8 threads)"``, ``"CUDA: NVIDIA H100 80GB HBM3 (79 GiB)"``..."""
    device = resolve_device(name)
    torch = _torch()
    if device == "cpu":
        n = torch.get_num_threads()
        return f"CPU ({n} thread{'s' if n != 1 else ''})"
    if device == "mps":
        return "Apple MPS (Metal GPU)"
    index = int(device.split(":")[1]) if ":" in device else torch.cuda.current_device()
    props = torch.cuda.get_device_properties(index)
    gib = props.total_memory / 2**30
    suffix = f" #{index}" if ":" in device else ""
    return f"CUDA{suffix}: {props.name} ({gib:.0f} GiB)"


def is_out_of_memory(exc: BaseException) -> bool:
    """True for torch's OutOfMemoryError and RuntimeErrors saying "out of memory" (CUDA, MPS)."""
    torch = sys.modules.get("torch")  # an OOM from torch means torch is already imported
    if torch is not None:
        oom_types = tuple(
            t for t in (getattr(torch, "OutOfMemoryError", None),
                        getattr(getattr(torch, "cuda", None), "OutOfMemoryError", None))
            if isinstance(t, type)
        )
        if oom_types and isinstance(exc, oom_types):
            return True
    return isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()


def free_cached_memory(device: str) -> None:
    """Give cached GPU memory back after an out-of-memory error (no-op on the CPU)."""
    if device.startswith("cuda"):
        torch = _torch()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    elif device == "mps":
        torch = _torch()
        mps = getattr(torch, "mps", None)
        if mps is not None and hasattr(mps, "empty_cache"):
            mps.empty_cache()
