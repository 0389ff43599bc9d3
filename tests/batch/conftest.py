"""Shared fixtures of the batch tests: small synthetic fields, one 2-worker LocalCluster
for the whole package (starting workers that import torch costs seconds)."""
from __future__ import annotations

from pathlib import Path

import pytest
from batch_helpers import write_field


@pytest.fixture
def fields(tmp_path) -> Path:
    """``in/caseA/f0.png``, ``in/caseA/f1.png`` (a cell cut by its border), ``in/caseB/f2.png``."""
    root = tmp_path / "in"
    write_field(root / "caseA" / "f0.png", 0)
    write_field(root / "caseA" / "f1.png", 1, crop_left=True)
    write_field(root / "caseB" / "f2.png", 2)
    return root


@pytest.fixture(scope="package")
def dask_client():
    """A LocalCluster of 2 single-threaded worker processes, shared by the batch tests."""
    import logging

    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=":0", silence_logs=logging.ERROR) as cluster, \
            Client(cluster) as client:
        yield client

