import json
import os
import socket

import pytest

from napari_wbcseg.review import CaseError, ProjectLock, ProjectLockedError, model_record
from napari_wbcseg.review.lock import LOCK_FILE

DEAD_PID = 2**31 - 1  # above any Linux pid_max: never a live process


def test_second_writer_refused_until_the_first_releases(project):
    first, second = ProjectLock(project), ProjectLock(project)
    first.acquire()
    holder = json.loads((project / LOCK_FILE).read_text())
    assert holder["pid"] == os.getpid() and holder["host"] == socket.gethostname()
    with pytest.raises(ProjectLockedError, match=rf"open for writing in another napari window "
                       rf"\(pid {os.getpid()} on .*, since 20") as err:
        second.acquire()
    assert "\n" not in str(err.value) and isinstance(err.value, CaseError)
    assert first.held and not second.held
    first.acquire()  # re-acquiring one's own lock is a no-op
    first.release()
    assert not (project / LOCK_FILE).exists()
    with second:
        assert second.held and (project / LOCK_FILE).exists()
    assert not second.held and not (project / LOCK_FILE).exists()


def test_lock_of_a_project_not_saved_yet_creates_its_folder(tmp_path):
    with ProjectLock(tmp_path / "new" / "PROJECT") as lock:
        assert lock.held and (tmp_path / "new" / "PROJECT" / LOCK_FILE).is_file()
    assert not (tmp_path / "new" / "PROJECT" / LOCK_FILE).exists()


def test_stale_lock_of_a_dead_process_is_taken_over(project):
    (project / LOCK_FILE).write_text(json.dumps(
        {"pid": DEAD_PID, "host": socket.gethostname(), "since": "2026-01-01T00:00:00+00:00",
         "token": "old"}))
    with ProjectLock(project) as lock:
        assert lock.held
        assert json.loads((project / LOCK_FILE).read_text())["pid"] == os.getpid()


def test_lock_from_another_host_is_honoured(project):
    (project / LOCK_FILE).write_text(json.dumps(
        {"pid": DEAD_PID, "host": "other-host.example", "since": "2026-01-01T00:00:00+00:00",
         "token": "old"}))
    with pytest.raises(ProjectLockedError, match="other-host.example"):
        ProjectLock(project).acquire()


def test_unreadable_lock_is_refused_with_what_to_do(project):
    (project / LOCK_FILE).write_text("{garbage")
    with pytest.raises(ProjectLockedError, match="unreadable.*delete that file"):
        ProjectLock(project).acquire()
    assert (project / LOCK_FILE).read_text() == "{garbage"


def test_release_leaves_a_lock_taken_over_by_someone_else(project):
    lock = ProjectLock(project).acquire()
    (project / LOCK_FILE).write_text(json.dumps({"pid": 1, "host": "h", "since": "x",
                                                 "token": "theirs"}))
    lock.release()
    assert (project / LOCK_FILE).exists() and not lock.held


def test_model_record_of_bundled_models():
    seg = model_record("wbcseg-lite0", "segmentation")
    card = json.loads((_weights() / "wbcseg-lite0.json").read_text())
    assert seg == {"name": "wbcseg-lite0", "kind": "segmentation",
                   "version": card["training"]["date"], "sha256": card["weights"]["sha256"]}
    clf = model_record("cell-classifier-lite0", "classifier")
    assert clf["kind"] == "classifier" and len(clf["sha256"]) == 64


def test_model_record_hashes_the_weights_when_the_card_has_no_checksum(tmp_path):
    import hashlib

    w = tmp_path / "m.safetensors"
    w.write_bytes((_weights() / "wbcseg-lite0.safetensors").read_bytes())
    card = json.loads((_weights() / "wbcseg-lite0.json").read_text())
    card["weights"].pop("sha256")
    card["version"] = "3.1"
    (tmp_path / "m.json").write_text(json.dumps(card))
    rec = model_record(str(w), "segmentation")
    assert rec["version"] == "3.1"
    assert rec["sha256"] == hashlib.sha256(w.read_bytes()).hexdigest()


@pytest.mark.parametrize("name, kind, message", [
    ("no-such-model", "segmentation", "unknown model"),
    ("no-such-model", "classifier", "unknown classifier"),
    ("wbcseg-lite0", "detector", "model kind"),
])
def test_model_record_bad_input(name, kind, message):
    with pytest.raises(CaseError, match=message):
        model_record(name, kind)


def _weights():
    from napari_wbcseg.io.model_store import bundled_dir

    return bundled_dir()
