from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is not beside the repository")
    return SHARED_DATA


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path, monkeypatch):
    """Never touch the user's real cache or the network from tests."""
    monkeypatch.setenv("NAPARI_WBCSEG_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("NAPARI_WBCSEG_DATA_MIRROR", raising=False)
