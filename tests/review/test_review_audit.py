import getpass
import json

import numpy as np
import pytest

from napari_wbcseg.review import (AuditEntry, AuditLog, CaseError, append_audit, current_user,
                                  last_actions, read_audit)

WHEN = "2026-12-02T09:41:07+00:00"


def _entry(**kw):
    d = dict(image="field A", cell_id=1, action="reclassify", from_code=1, to_code=13,
             who="jdoe", when=WHEN)
    d.update(kw)
    return AuditEntry(**d)


def test_append_read_round_trip_in_order_and_after_reopening(project):
    first = [_entry(), _entry(cell_id=4, action="unidentified", from_code=2, to_code=255)]
    append_audit(project, first)
    append_audit(project, [_entry(image="field B", cell_id=7, action="delete", from_code=2,
                                  to_code=0),
                           _entry(image="field B", cell_id=1, action="accept", from_code=1,
                                  to_code=1)])
    doc = json.loads((project / "audit.json").read_text())
    assert doc["format"] == "napari-wbcseg-audit" and len(doc["entries"]) == 4
    trail = read_audit(project)
    assert trail[:2] == first
    assert [e.action for e in trail] == ["reclassify", "unidentified", "delete", "accept"]
    assert [e.cell_id for e in read_audit(project, images=["field B"])] == [7, 1]
    assert read_audit(project, images=[]) == []


def test_last_actions_tell_which_cells_stand_accepted(project):
    append_audit(project, [_entry(action="accept", to_code=1), _entry(cell_id=2, action="accept",
                                                                      from_code=13, to_code=13),
                           _entry(cell_id=2, from_code=13, to_code=3)])
    last = last_actions(read_audit(project))
    assert last[("field A", 1)].action == "accept"
    assert last[("field A", 2)].action == "reclassify" and last[("field A", 2)].to_code == 3


@pytest.mark.parametrize("kw, message", [
    ({"action": "paint"}, "action"),
    ({"action": "delete", "to_code": 1}, "to_code 0"),
    ({"action": "unidentified", "to_code": 3}, "to_code 255"),
    ({"action": "accept", "to_code": 2}, "to_code 1"),
    ({"to_code": 0}, "delete"),
    ({"to_code": 256}, "class code"),
    ({"from_code": -1}, "class code"),
    ({"from_code": 0}, "background"),
    ({"from_code": True}, "class code"),
    ({"cell_id": 0}, "cell id"),
    ({"cell_id": 1.5}, "cell id"),
    ({"image": ""}, "image name"),
    ({"who": ""}, "reviewer"),
    ({"who": "a\nb"}, "reviewer"),
    ({"when": "yesterday"}, "ISO 8601"),
    ({"when": "2026-12-02T09:41:07"}, "time zone"),
])
def test_bad_entries_refused_in_one_line(kw, message):
    with pytest.raises(CaseError, match=message) as err:
        _entry(**kw)
    assert "\n" not in str(err.value)


def test_entry_for_an_image_not_in_the_project_refuses_the_whole_batch(project):
    with pytest.raises(CaseError, match="'field Z'"):
        append_audit(project, [_entry(), _entry(image="field Z")])
    assert not (project / "audit.json").exists()


@pytest.mark.parametrize("text, message", [
    ("[1, 2", "not readable"),
    ('{"format": "napari-wbcseg-audit", "version": 1, "entries": [{"image": "field A"}]}',
     "needs exactly"),
    ('{"format": "napari-wbcseg-audit", "version": 1, "entries": [{"image": "field A", '
     '"cell_id": 1, "action": "burn", "from_code": 1, "to_code": 2, "who": "x", '
     f'"when": "{WHEN}"}}]}}', "action"),
    ('{"format": "napari-wbcseg-cases", "version": 1, "entries": []}', "unknown format"),
])
def test_corrupt_audit_file_refused_and_never_overwritten(project, text, message):
    path = project / "audit.json"
    path.write_text(text)
    with pytest.raises(CaseError, match=message):
        read_audit(project)
    with pytest.raises(CaseError, match=message):
        append_audit(project, [_entry()])
    assert path.read_text() == text


def test_too_many_entries_refused(project, monkeypatch):
    from napari_wbcseg.review import audit

    monkeypatch.setattr(audit, "MAX_ENTRIES", 2)
    append_audit(project, [_entry(), _entry()])
    with pytest.raises(CaseError, match="exceed 2 entries"):
        append_audit(project, [_entry()])
    assert len(read_audit(project)) == 2


def test_audit_log_buffers_flushes_and_keeps_entries_after_a_failed_flush(project, monkeypatch):
    log = AuditLog(who="rev1")
    e = log.record("field A", np.uint16(2), "reclassify", np.uint8(13), 3)
    assert type(e.cell_id) is int and e.who == "rev1" and e.when.endswith("+00:00")
    assert not (project / "audit.json").exists()  # nothing written before flush

    import os

    def fail(*a):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(CaseError, match="No space"):
        log.flush(project)
    monkeypatch.undo()
    assert log.pending == (e,)
    assert log.flush(project) == 1 and log.pending == ()
    assert read_audit(project) == [e]
    assert log.flush(project) == 0
    with pytest.raises(CaseError, match="action"):
        log.record("field A", 1, "bogus", 1, 2)
    assert log.pending == ()


def test_current_user_falls_back_to_unknown(monkeypatch):
    monkeypatch.setattr(getpass, "getuser", lambda: "alice")
    assert current_user() == "alice"
    assert AuditLog().who == "alice"

    def nobody():
        raise OSError("no user")

    monkeypatch.setattr(getpass, "getuser", nobody)
    assert current_user() == "unknown"


def test_entries_of_an_image_not_in_the_project_wait_and_do_not_block_the_others(project):
    """An image edited, then closed before it was saved: its entries stay pending, and
    the project's own images' entries are written."""
    log = AuditLog(who="rev1")
    kept = log.record("field A", 2, "reclassify", 1, 3)
    stray = log.record("never saved", 5, "delete", 2, 0)
    assert log.flush(project) == 1
    assert read_audit(project) == [kept] and log.pending == (stray,)
    later = log.record("field A", 2, "restore", 3, 3)  # an undone delete
    assert log.flush(project) == 1 and read_audit(project) == [kept, later]
