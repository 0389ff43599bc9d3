"""bf16 on CPUs that have it: detection, the per-architecture choice, autocast.

Measured on this project's 2-core AMX CPU and on a 2-core AVX-512 BF16 CPU without AMX
(``benchmarks/bench_precision.py``, docs/models.md): bf16 autocast + channels-last runs the
ImageNet-encoder U-Nets 2-4x faster than fp32 in inference and 1.1-2.2x in training.
Where a network was not measured to gain (or its operators are not bf16-safe, e.g. Mask
R-CNN's box arithmetic), it stays fp32.  CPUs
without AMX / AVX-512 BF16 always run fp32: bf16 there is emulated and slower.

``NAPARI_WBCSEG_PRECISION=fp32|bf16`` overrides the choice (for benchmarks and
debugging).  torch is imported only inside functions.
"""
from __future__ import annotations

import contextlib
import functools
import os
import warnings

__all__ = ["BF16_FAMILIES", "BF16_INFERENCE_FAMILIES", "PRECISIONS", "autocast", "cpu_has_bf16", "resolve_precision"]

PRECISIONS = ("auto", "fp32", "bf16")
#: architecture name prefixes measured to gain from bf16 + channels-last on an AMX CPU
#: without losing accuracy (benchmarks/bench_precision.py; see docs/models.md); the
#: per-cell classifier (5-channel 128 px crops) was measured not to gain: it stays fp32
BF16_FAMILIES = ("wbcseg-", "unet-")
#: families measured to keep their accuracy when *predicting* in bf16 (trained weights, inner
#: selection split: within 0.001 Dice), though their training in bf16 is not validated yet
BF16_INFERENCE_FAMILIES = BF16_FAMILIES + ("wcsegnet", "wbc-net", "cbam-unet")


@functools.lru_cache(maxsize=1)
def cpu_has_bf16() -> bool:
    """True when the CPU executes bf16 natively (AMX-BF16 or AVX-512 BF16)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return bool(flags & {"amx_bf16", "avx512_bf16"})
    except OSError:
        pass
    try:  # other systems: ask oneDNN
        import torch

        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except Exception:  # noqa: BLE001 - private API, absent on some builds
        return False


def resolve_precision(requested: str, device: str, architecture: str,
                      purpose: str = "inference") -> str:
    """``"bf16"`` or ``"fp32"`` for ``architecture`` on ``device``.

    ``"auto"`` picks bf16 only on a CPU with native bf16 and for a family measured for
    this ``purpose`` (``"inference"`` or ``"training"``);
    ``"bf16"`` forces it (``ValueError`` on a CUDA/MPS device, where this path is untested);
    the environment variable overrides ``"auto"``.
    """
    if requested not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {requested!r}")
    env = os.environ.get("NAPARI_WBCSEG_PRECISION", "").strip().lower()
    if requested == "auto" and env in ("fp32", "bf16"):
        requested = env
    on_cpu = str(device).split(":")[0] == "cpu"
    if requested == "bf16":
        if not on_cpu:
            raise ValueError("precision bf16 is for CPUs; GPUs run fp32 here")
        if not cpu_has_bf16():
            _warn_emulated()
        return "bf16"
    if requested == "fp32" or not on_cpu:
        return "fp32"
    name = str(architecture)
    families = BF16_FAMILIES if purpose == "training" else BF16_INFERENCE_FAMILIES
    return "bf16" if cpu_has_bf16() and name.startswith(families) else "fp32"


_warned: list = []


def _warn_emulated() -> None:
    if not _warned:
        _warned.append(True)
        warnings.warn("bf16 was forced (--precision bf16 or NAPARI_WBCSEG_PRECISION), but "
                      "this CPU has no native bf16 (AMX-BF16 or AVX-512 BF16): it runs "
                      "emulated, several times slower than fp32 (on an AVX2 CPU: 9 s a "
                      "field against 0.7 s)", stacklevel=3)


def autocast(precision: str):
    """A context: CPU bf16 autocast for ``"bf16"``, nothing for ``"fp32"``."""
    if precision != "bf16":
        return contextlib.nullcontext()
    import torch

    return torch.autocast("cpu", dtype=torch.bfloat16)
