"""ImageNet initialisation of encoders: online when possible, a clear message when not.

Downloads go through the libraries' own caches (torch hub for torchvision weights,
the Hugging Face hub for segmentation-models-pytorch).  Before any download the host
is probed with a short socket timeout, so an offline machine gets
:class:`PretrainedUnavailableError` within seconds instead of a hang; callers then
keep the random initialisation and say so.
"""
from __future__ import annotations

import socket
from urllib.parse import urlparse

__all__ = ["PretrainedUnavailableError", "check_reachable"]

PROBE_TIMEOUT_S = 5.0


class PretrainedUnavailableError(RuntimeError):
    """ImageNet weights could not be obtained (offline, blocked, or download failed)."""


def check_reachable(url: str, timeout: float = PROBE_TIMEOUT_S) -> None:
    """Raise :class:`PretrainedUnavailableError` unless ``url``'s host accepts a TCP
    connection within ``timeout`` seconds (DNS failure, refusal and timeout all count)."""
    parsed = urlparse(url)
    host = parsed.hostname or url
    port = parsed.port or (443 if parsed.scheme != "http" else 80)
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return
    except OSError as exc:
        raise PretrainedUnavailableError(
            f"ImageNet weights are not reachable ({host}: {exc.__class__.__name__}); "
            "the encoder keeps its random initialisation. Connect to the internet and "
            "train again with --init imagenet to start from ImageNet.") from None
