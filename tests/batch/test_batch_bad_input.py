"""Bad input to a batch: one clear line, nothing lost."""
from __future__ import annotations

import errno
import os
import shutil
import socket

import pytest
from batch_helpers import set_env

from napari_wbcseg import batch, cli
from napari_wbcseg.batching import (BatchLockedError, DiskFullError, ModelMissingOnWorkerError,
                                    SchedulerUnreachableError)
from napari_wbcseg.batching.field_task import KILL_ONCE_ENV
from napari_wbcseg.batching.lock import BATCH_LOCK_FILE, BatchLock
from napari_wbcseg.batching.manifest import Manifest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_corrupt_files_are_listed_and_the_rest_done(fields, tmp_path, dask_client, capsys):
    (fields / "caseB" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 40)
    (fields / "caseB" / "empty.tif").write_bytes(b"")
    out = tmp_path / "out"
    code = cli.main(["batch", str(fields), "--out", str(out),
                     "--scheduler", dask_client.scheduler.address])
    assert code == 2
    err = capsys.readouterr().err
    failed = [line for line in err.splitlines() if line.startswith("failed: ")]
    assert len(failed) == 2 and any("broken.png" in f for f in failed)
    assert any("empty.tif: the file is empty" in f for f in failed)
    entries = Manifest.load(out).entries
    assert sorted(s for s, e in entries.items() if e["status"] == "done") == \
        ["caseA__f0", "caseA__f1", "caseB__f2"]
    assert "broken.png" in entries["caseB__broken"]["error"]
    summary = (out / "summary.csv").read_text()
    assert "caseB__broken" in summary and "failed" in summary


def test_unreachable_scheduler_is_one_error(fields, tmp_path, capsys):
    address = f"tcp://127.0.0.1:{free_port()}"
    with pytest.raises(SchedulerUnreachableError, match="cannot reach the dask scheduler"):
        batch([fields], tmp_path / "out", scheduler=address, scheduler_timeout_s=1)
    assert cli.main(["batch", str(fields), "--out", str(tmp_path / "out"), "--scheduler",
                     address, "--scheduler-timeout", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: cannot reach the dask scheduler at {address} within 1 s "
                   f"(Timed out trying to connect to {address} after 1 s)"]
    assert not (tmp_path / "out" / BATCH_LOCK_FILE).exists()  # released


def test_a_second_batch_on_one_folder_is_refused(fields, tmp_path, capsys):
    out = tmp_path / "out"
    with BatchLock(out):
        with pytest.raises(BatchLockedError, match="another batch is writing into"):
            batch([fields], out, scheduler="tcp://127.0.0.1:9")
        assert cli.main(["batch", str(fields), "--out", str(out)]) == 2
        assert "another batch is writing" in capsys.readouterr().err
    dead = os.fork()  # a lock left by a dead process is taken over
    if dead == 0:
        BatchLock(out).acquire()
        os._exit(0)
    os.waitpid(dead, 0)
    assert (out / BATCH_LOCK_FILE).exists()
    with BatchLock(out) as lock:
        assert lock.held


def _disk_full_writer():
    """On a worker: every label TIFF write fails as on a full disk."""
    import napari_wbcseg.io.writer as writer

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")
    writer._real_save_labels = getattr(writer, "_real_save_labels", writer.save_labels)
    writer.save_labels = full


def _restore_writer():
    import napari_wbcseg.io.writer as writer

    writer.save_labels = getattr(writer, "_real_save_labels", writer.save_labels)


def test_full_disk_on_a_worker_stops_cleanly(fields, tmp_path, dask_client):
    out = tmp_path / "out"
    dask_client.run(_disk_full_writer)
    try:
        with pytest.raises(DiskFullError, match="the disk is full") as caught:
            batch([fields], out, scheduler=dask_client)
    finally:
        dask_client.run(_restore_writer)
    assert Manifest.load(out).entries == {}  # loads; no field is listed as done
    assert caught.value.result.done == 0
    assert not [p for p in out.iterdir() if p.name.startswith(".") and
                p.name != ".wbcseg-batch-lock"]  # no temporary file left
    assert not (out / BATCH_LOCK_FILE).exists()


def test_full_disk_for_the_manifest_keeps_the_last_whole_one(fields, tmp_path, dask_client,
                                                            monkeypatch):
    import napari_wbcseg.io.atomic as atomic

    out = tmp_path / "out"
    real, calls = atomic.write_text_atomic, []

    def fills_up(path, text, *args, **kwargs):
        calls.append(path)
        if len(calls) > 1:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(path, text, *args, **kwargs)
    monkeypatch.setattr(atomic, "write_text_atomic", fills_up)
    with pytest.raises(DiskFullError, match="the disk is full"):
        batch([fields], out, scheduler=dask_client)
    entries = Manifest.load(out).entries
    assert len(entries) == 1 and next(iter(entries.values()))["status"] == "done"


def test_a_model_missing_on_a_worker_names_it(fields, tmp_path, dask_client, monkeypatch):
    from napari_wbcseg.io.model_store import find_model

    models = tmp_path / "models"
    models.mkdir()
    entry = find_model(None)
    for suffix in (".safetensors", ".json"):
        shutil.copy(entry.weights.with_suffix(suffix), models / f"lab-model{suffix}")
    monkeypatch.setenv("NAPARI_WBCSEG_MODELS", str(models))
    workers = sorted(dask_client.scheduler_info()["workers"])
    dask_client.run(set_env, "NAPARI_WBCSEG_MODELS", str(models),
                    workers=workers[:1])
    dask_client.run(set_env, "NAPARI_WBCSEG_MODELS", str(tmp_path / "none"),
                    workers=workers[1:])
    try:
        with pytest.raises(ModelMissingOnWorkerError) as caught:
            batch([fields], tmp_path / "out", scheduler=dask_client, model="lab-model")
    finally:
        dask_client.run(set_env, "NAPARI_WBCSEG_MODELS", None)
    message = str(caught.value)
    assert "lab-model" in message and workers[1] in message and workers[0] not in message
    assert "\n" not in message


def test_a_worker_lost_mid_task_is_retried_with_one_row(fields, tmp_path, dask_client):
    marker = tmp_path / "killed-once"
    dask_client.run(set_env, KILL_ONCE_ENV, str(marker))
    try:
        result = batch([fields], tmp_path / "out", scheduler=dask_client)
    finally:
        dask_client.run(set_env, KILL_ONCE_ENV, None)
    assert marker.exists()  # a worker did die
    assert (result.done, result.failed) == (3, [])
    rows = (tmp_path / "out" / "summary.csv").read_text().splitlines()[1:]
    assert sorted(r.split(",")[0] for r in rows) == ["caseA__f0", "caseA__f1", "caseB__f2"]
    dask_client.wait_for_workers(2, timeout=60)  # the nanny restarted it for later tests


@pytest.mark.parametrize("reply", [b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n",
                                   b"\x10\x00\x00\x00\x00\x00\x00\x00" + b"\xc1" * 16])
def test_an_address_that_is_not_a_scheduler_is_one_error(fields, tmp_path, capsys, reply):
    """A server that answers, but not as dask does (a dashboard's HTTP port, a garbled
    handshake), gets the same one line as an address nobody answers on."""
    import threading

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(4)
    port = server.getsockname()[1]

    def answer():
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn:
                conn.recv(4096)
                conn.sendall(reply)

    threading.Thread(target=answer, daemon=True).start()
    address = f"tcp://127.0.0.1:{port}"
    try:
        assert cli.main(["batch", str(fields), "--out", str(tmp_path / "out"), "--scheduler",
                         address, "--scheduler-timeout", "2"]) == 2
    finally:
        server.close()
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), err
    assert address in err[0]
    assert not (tmp_path / "out" / BATCH_LOCK_FILE).exists()
