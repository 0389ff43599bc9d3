"""The dask client of a batch: a LocalCluster sized to the machine, or an existing scheduler.

dask.distributed is imported here only, inside functions.
"""
from __future__ import annotations

import logging
import os

from .errors import BatchError, ModelMissingOnWorkerError, SchedulerUnreachableError


def machine_cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def default_layout(workers: int | None, threads_per_worker: int | None) -> tuple[int, int]:
    """Workers x threads for a LocalCluster: by default one single-threaded worker process
    per core (a rule, not a measurement; see docs/scale.md for measured layouts)."""
    cores = machine_cores()
    threads = threads_per_worker or 1
    n = workers or max(1, cores // threads)
    for name, value in (("workers", n), ("threads per worker", threads)):
        if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 4096:
            raise BatchError(f"{name} must be a whole number in 1..4096, got {value!r}")
    return n, threads


def has_bokeh() -> bool:
    import importlib.util

    return importlib.util.find_spec("bokeh") is not None


class BatchClient:
    """``with BatchClient(...) as c: c.client`` - closes only what it started."""

    def __init__(self, scheduler=None, workers=None, threads_per_worker=None,
                 timeout_s: float = 10.0):
        self.scheduler, self.timeout_s = scheduler, float(timeout_s)
        self.layout = None if scheduler is not None else default_layout(workers,
                                                                          threads_per_worker)
        if scheduler is not None and (workers or threads_per_worker):
            raise BatchError("workers and threads per worker are set on the cluster itself "
                             "when a scheduler is given")
        self.client = self._cluster = None
        self._own_client = True

    def __enter__(self) -> "BatchClient":
        from distributed import Client

        s = self.scheduler
        if s is None:
            from distributed import LocalCluster

            n, threads = self.layout
            self._cluster = LocalCluster(
                n_workers=n, threads_per_worker=threads, processes=True,
                memory_limit="auto", silence_logs=logging.ERROR,
                dashboard_address=":0" if has_bokeh() else None)
            self.client = Client(self._cluster)
        elif isinstance(s, Client):
            self.client, self._own_client = s, False
        else:
            address = getattr(s, "scheduler_address", s)  # a dask-jobqueue cluster object
            try:
                self.client = Client(address, timeout=f"{self.timeout_s}s")
            except (OSError, TimeoutError, ValueError) as exc:
                why = " ".join(str(exc).split())[:200]
                raise SchedulerUnreachableError(
                    f"cannot reach the dask scheduler at {address} within "
                    f"{self.timeout_s:g} s ({why})") from None
            except Exception as exc:  # noqa: BLE001 - something else answered
                # e.g. the dashboard's HTTP port: its reply read as a frame length asked
                # distributed for exabytes (MemoryError), or a garbled handshake
                raise SchedulerUnreachableError(
                    f"{address} answered, but not as a dask scheduler "
                    f"({type(exc).__name__}); is it the dashboard's port? A scheduler "
                    "listens on tcp://HOST:8786 by default") from None
        return self

    def __exit__(self, *exc) -> None:
        if self._own_client and self.client is not None:
            self.client.close()
        if self._cluster is not None:
            self._cluster.close()

    @property
    def dashboard(self) -> str:
        if self.client is None or not has_bokeh():
            return ""
        try:
            return str(self.client.dashboard_link or "")
        except Exception:  # noqa: BLE001 - a scheduler without a dashboard
            return ""

    def check_model(self, model_label: str, args: tuple, wait_s: float = 60.0) -> None:
        """``ModelMissingOnWorkerError`` naming the workers that lack the model/classifier."""
        from .model_key import check_model_here

        if not self.client.scheduler_info().get("workers"):
            try:
                self.client.wait_for_workers(1, timeout=wait_s)
            except (TimeoutError, OSError):
                raise BatchError(f"the dask scheduler has no workers (waited {wait_s:g} s)") \
                    from None
        answers = self.client.run(check_model_here, *args)
        bad = {addr: why for addr, why in sorted(answers.items()) if why}
        if bad:
            first = next(iter(bad.values()))
            raise ModelMissingOnWorkerError(
                f"{model_label} is missing on {len(bad)} of {len(answers)} worker(s) "
                f"({', '.join(bad)}): {first}; install it there "
                "(`napari-wbcseg models` lists a machine's models)")
