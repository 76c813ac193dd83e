"""Atomic writes, folder ownership, stale temporaries and folder locks (kgrec.io)."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from kgrec.errors import InputError
from kgrec.io import DirectoryLock, atomic_dir, atomic_write, check_replaceable, folder_kind, remove_stale_temporaries


def _dead_pid() -> int:
    """The id of a process that has exited (and, in practice, not been reused yet)."""
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


def test_atomic_dir_refuses_a_folder_it_did_not_make(tmp_path):
    mine = tmp_path / "shop"
    mine.mkdir()
    (mine / "notes.txt").write_text("important")
    with pytest.raises(InputError, match="never replaced"):
        with atomic_dir(mine, "export"):
            pass
    assert (mine / "notes.txt").read_text() == "important"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["shop"]


def test_atomic_dir_replaces_its_own_kind_only(tmp_path):
    target = tmp_path / "out"
    with atomic_dir(target, "export") as folder:
        (folder / "a.txt").write_text("1")
    assert folder_kind(target) == "export"
    with atomic_dir(target, "export") as folder:
        (folder / "b.txt").write_text("2")
    assert sorted(p.name for p in target.iterdir()) == [".kgrec", "b.txt"]
    with pytest.raises(InputError, match="is a kgrec RecBole export folder, not a graph directory"):
        with atomic_dir(target, "graph"):
            pass
    check_replaceable(tmp_path / "absent", "graph")
    (tmp_path / "empty").mkdir()
    check_replaceable(tmp_path / "empty", "graph")
    (tmp_path / "file").write_text("x")
    with pytest.raises(InputError, match="is not a folder"):
        check_replaceable(tmp_path / "file", "graph")


def test_a_legacy_graph_and_run_are_still_recognised(tmp_path):
    (tmp_path / "g").mkdir()
    (tmp_path / "g" / "manifest.json").write_text('{"format": "kgrec-graph"}')
    (tmp_path / "web").mkdir()
    (tmp_path / "web" / "manifest.json").write_text('{"name": "my web app"}')  # someone else's manifest
    assert folder_kind(tmp_path / "g") == "graph" and folder_kind(tmp_path / "web") is None
    with pytest.raises(InputError):
        check_replaceable(tmp_path / "web", "graph")


def test_stale_temporaries_of_dead_processes_are_removed_live_ones_kept(tmp_path):
    dead, alive = _dead_pid(), os.getpid()
    stale_dir = tmp_path / f".g.{dead}.abc.tmp"
    stale_file = tmp_path / f".g.{dead}.xyz.tmp"
    live_dir = tmp_path / f".g.{alive}.def.tmp"
    stale_dir.mkdir(), live_dir.mkdir(), stale_file.write_text("half")
    (tmp_path / ".other.123.tmp").mkdir()  # another target's: not ours to judge
    remove_stale_temporaries(tmp_path / "g")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([live_dir.name, ".other.123.tmp"])


def test_a_swap_cut_short_gets_the_old_folder_back(tmp_path):
    old = tmp_path / f".g.old-{_dead_pid()}"
    old.mkdir()
    (old / "model.pt").write_text("the only copy")
    remove_stale_temporaries(tmp_path / "g")
    assert (tmp_path / "g" / "model.pt").read_text() == "the only copy" and not old.exists()


def test_atomic_write_leaves_the_old_file_on_failure(tmp_path):
    path = tmp_path / "metrics.json"
    path.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_write(path) as handle:
            handle.write("new, half")
            raise RuntimeError("disk full")
    assert path.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["metrics.json"]


HOLD = """
import sys, time
from kgrec.io import DirectoryLock
lock = DirectoryLock(sys.argv[1]).acquire()  # held while referenced
print("held", flush=True)
time.sleep(60)
"""


def test_lock_is_exclusive_across_processes_and_dies_with_its_holder(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(InputError, match=f"another kgrec process \\(pid {holder.pid}\\)"):
            DirectoryLock(tmp_path).acquire(wait_seconds=0.2)
    finally:
        holder.kill()
        holder.wait()
    started = time.monotonic()
    with DirectoryLock(tmp_path):  # free again the moment the holder is gone
        pass
    assert time.monotonic() - started < 1.0


def test_a_kgrec_folder_that_received_foreign_files_is_not_replaced(tmp_path):
    target = tmp_path / "g"
    with atomic_dir(target, "graph", keep=("cache",)) as folder:
        (folder / "kg.nt").write_text("v1")
    (target / "cache").mkdir()
    (target / "cache" / "entry.pt").write_text("embeddings")
    with atomic_dir(target, "graph", keep=("cache",)) as folder:  # kgrec's own cache moves into the new folder
        (folder / "kg.nt").write_text("v2")
    assert (target / "kg.nt").read_text() == "v2" and (target / "cache" / "entry.pt").read_text() == "embeddings"
    (target / "my-run").mkdir()
    (target / "my-run" / "model.pt").write_text("a day of training")
    with pytest.raises(InputError, match="holds 'my-run', which kgrec did not write there"):
        with atomic_dir(target, "graph", keep=("cache",)) as folder:
            (folder / "kg.nt").write_text("v3")
    assert (target / "my-run" / "model.pt").read_text() == "a day of training" and (
        target / "kg.nt"
    ).read_text() == "v2"


def test_a_tensor_file_on_a_full_disk_is_an_os_error_and_leaves_nothing(mounts):
    """torch.save reports a full disk as a RuntimeError (a traceback at the command line); save_tensors makes it the
    OSError the CLI prints in one line, and the file is as it was."""
    import errno

    import torch

    from kgrec.io import load_tensors, save_tensors

    disk = mounts.tmpfs("disk", size="1m")
    save_tensors({"small": torch.zeros(4)}, disk / "t.pt")
    mounts.fill(disk, leave=8 * 1024)
    with pytest.raises(OSError) as caught:
        save_tensors({"big": torch.zeros(100_000)}, disk / "t.pt")
    assert caught.value.errno == errno.ENOSPC and caught.value.filename == str(disk / "t.pt")
    assert torch.equal(load_tensors(disk / "t.pt")["small"], torch.zeros(4))  # the old file survives
    assert sorted(p.name for p in disk.iterdir()) == ["filler.bin", "t.pt"]


def test_json_written_by_kgrec_is_standard_json(tmp_path):
    import json
    import math

    import numpy as np

    from kgrec.io import write_json

    write_json(tmp_path / "m.json", {"auc": float("nan"), "x": [1.0, float("inf"), np.float32("nan")], "ok": 0.5})
    text = (tmp_path / "m.json").read_text()
    assert "NaN" not in text and "Infinity" not in text
    loaded = json.loads(text, parse_constant=lambda name: math.nan)
    assert loaded == {"auc": None, "x": [1.0, None, None], "ok": 0.5}
