"""Ctrl-C in the middle of a batch: exit 130, a complete manifest, no partial file, the
lock released, and a rerun that finishes the rest without redoing the done fields."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from batch_helpers import write_field

N_FIELDS = 12  # enough that Ctrl-C lands mid-batch (one field done, fields left); the rerun does the rest


def _done_entries(out) -> dict:
    try:
        fields = json.loads((out / "manifest.json").read_text())["fields"]
    except (OSError, ValueError, KeyError):
        return {}
    return {s: e for s, e in fields.items() if e.get("status") == "done"}


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT to a process group is POSIX")
def test_ctrl_c_leaves_a_complete_manifest_and_no_partial_file(tmp_path):
    root = tmp_path / "in"
    for i in range(N_FIELDS):
        write_field(root / "caseA" / f"f{i:02d}.png", i % 7)
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "napari_wbcseg.cli", "batch", str(root), "--out", str(out),
           "--workers", "1", "--device", "cpu"]
    # a new session, so that SIGINT reaches the batch and its workers as a terminal's does
    # SIGINT's default action restored in the child: an ignored SIGINT is inherited (from a
    # test runner that ignores it), and Python then installs no KeyboardInterrupt handler
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, preexec_fn=_default_sigint)
    try:
        deadline = time.monotonic() + 240
        while not _done_entries(out) and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert proc.poll() is None, f"the batch ended before Ctrl-C: {proc.communicate()}"
        os.killpg(proc.pid, signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130, err
    done = _done_entries(out)
    assert 1 <= len(done) < N_FIELDS
    names = {p.name for p in out.iterdir()}
    assert not [n for n in names if n.startswith(".") and n != ".wbcseg-batch-lock"], names
    assert ".wbcseg-batch-lock" not in names  # released
    for stem, entry in done.items():  # every recorded field has all its files
        assert all((out / name).is_file() for name in entry["outputs"]), stem
    # (a field that finished while the batch stopped may have its files without an entry:
    # complete files, redone by the rerun)

    rerun = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr
    after = _done_entries(out)
    assert len(after) == N_FIELDS
    assert all(after[s] == e for s, e in done.items())  # the done fields were not redone
