"""Sample fetching against local copies of the public repositories (never the network)."""
import numpy as np
import pytest

from napari_wbcseg.io import fetch as fetch_mod
from napari_wbcseg.io import sample_data
from napari_wbcseg.io.fetch import REGISTRY, DownloadError, fetch, sha256_of
from napari_wbcseg.schema import check_labels


def test_registry_checksums_match_the_public_files(shared_data):
    for key, item in REGISTRY.items():
        local = shared_data / item.dataset / item.path
        assert sha256_of(local) == item.sha256, key
        assert item.url.startswith("https://raw.githubusercontent.com/") and item.commit in item.url


def test_fetch_from_mirror_caches_and_verifies(shared_data, monkeypatch, tmp_path):
    monkeypatch.setenv("NAPARI_WBCSEG_DATA_MIRROR", shared_data.as_uri())
    path = fetch("zheng/d2/004.bmp")
    assert path.is_file() and str(path).startswith(str(tmp_path / "cache"))
    # second call is served from the cache, even with the mirror gone
    monkeypatch.setenv("NAPARI_WBCSEG_DATA_MIRROR", (tmp_path / "nowhere").as_uri())
    assert fetch("zheng/d2/004.bmp") == path
    # a damaged cache file is fetched again; a wrong source is refused with a clear message
    path.write_bytes(b"damaged")
    with pytest.raises(DownloadError, match="could not download"):
        fetch("zheng/d2/004.bmp")


def test_checksum_mismatch_is_refused(shared_data, monkeypatch, tmp_path):
    mirror = tmp_path / "mirror" / "segmentation_WBC" / "Dataset 2"
    mirror.mkdir(parents=True)
    (mirror / "004.bmp").write_bytes(b"not the real file")
    with pytest.raises(DownloadError, match="checksum"):
        fetch("zheng/d2/004.bmp", mirror=str(tmp_path / "mirror"))
    assert not (fetch_mod.cache_dir() / "segmentation_WBC" / "Dataset 2" / "004.bmp").exists()


def test_unknown_key_lists_known_ones():
    with pytest.raises(KeyError, match="bcisc/neut/1-1.jpg"):
        fetch("nope")


def test_real_samples_give_schema_layers(shared_data, monkeypatch):
    monkeypatch.setenv("NAPARI_WBCSEG_DATA_MIRROR", str(shared_data))
    for make in (sample_data.zheng_dataset1_cell, sample_data.zheng_dataset2_cell):
        (img, ikw, ik), (nuc, nkw, _), (cyt, ckw, _), (ct, tkw, _) = make()
        assert ik == "image" and img.ndim == 3
        check_labels(nuc, cyt, ct)
        assert nuc.max() == 1 and cyt.max() == 1 and ct.max() in (1, 2)
        assert nkw["name"].endswith("nucleus") and tkw["name"].endswith("cell type")
    (field, fkw, _), (cell, ckw, ck) = sample_data.bcisc_neutrophil_field()
    assert field.shape == (1536, 2048, 3) and ck == "labels"
    assert set(np.unique(cell)) == {0, 1}  # neutrophil code on the expert whole-cell mask
    assert 1000 < (cell > 0).sum() < 0.2 * cell.size


def test_samples_offline_give_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv("NAPARI_WBCSEG_DATA_MIRROR", (tmp_path / "offline").as_uri())
    with pytest.raises(DownloadError, match="synthetic sample"):
        sample_data.bcisc_lymphocyte_field()


def test_sample_classes_match_the_dataset_csvs(shared_data):
    import csv

    for key, code in sample_data.ZHENG_CLASSES.items():
        ds = "1" if "/d1/" in key else "2"
        rows = (shared_data / "segmentation_WBC" / f"Class Labels of Dataset {ds}.csv").read_text()
        table = {int(r[0]): int(r[1]) for r in list(csv.reader(rows.splitlines()))[1:] if r}
        assert table[int(key.rsplit("/", 1)[-1])] == code


def test_offline_error_says_where_the_file_goes(monkeypatch, tmp_path):
    monkeypatch.setenv("NAPARI_WBCSEG_DATA_MIRROR", (tmp_path / "offline").as_uri())
    with pytest.raises(DownloadError) as info:
        fetch("bcisc/neut/1-1.jpg")
    exc = info.value
    assert exc.offline and exc.target == fetch_mod.cache_dir() / "BCISC" / "original-images" / "neut" / "1-1.jpg"
    assert str(exc.target) in str(exc) and str(exc.target) in exc.hint
