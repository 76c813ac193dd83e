"""The ranking stored with a run answers `kgrec recommend` as the loaded run would, and only when it can."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from kgrec.inference import Recommender
from kgrec.inference.ranked import RANKED_ITEMS, quick_recommend


def test_the_stored_ranking_is_what_the_loaded_run_recommends(tiny_run):
    run = json.loads((tiny_run / "run" / "run.json").read_text())
    assert run["ranked"]["depth"] >= 1 and (tiny_run / "run" / RANKED_ITEMS).is_file()
    loaded = Recommender.load(tiny_run / "run")
    users = list(loaded.graph.users.ids)
    for k in (1, 3, run["ranked"]["depth"]):  # the deepest asks for more items than some users have unseen
        quick = quick_recommend(tiny_run / "run", users, k)
        assert quick is not None
        for fast, full in zip(quick, loaded.recommend(users, k=k)):
            assert fast.user_id == full.user_id and fast.item_ids == full.item_ids and fast.titles == full.titles
            assert fast.scores == pytest.approx(full.scores, abs=1e-5)


def test_questions_the_stored_ranking_does_not_answer_go_to_the_loaded_run(tiny_run, tmp_path):
    run_dir = tiny_run / "run"
    depth = json.loads((run_dir / "run.json").read_text())["ranked"]["depth"]
    assert (
        quick_recommend(run_dir, ["nobody"], 3) is None
    )  # a stranger: the loaded run answers (cold start or an error)
    assert quick_recommend(run_dir, ["u1"], depth + 1) is None
    assert quick_recommend(run_dir, [], 3) is None
    # A graph rebuilt since the run was trained: the loaded run refuses it with its own message.
    graph = tmp_path / "graph"
    shutil.copytree(tiny_run / "graph", graph)
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    record = json.loads((copy / "run.json").read_text())
    (copy / "run.json").write_text(json.dumps({**record, "graph": str(graph)}))
    assert quick_recommend(copy, ["u1"], 3) is not None
    manifest = json.loads((graph / "manifest.json").read_text())
    (graph / "manifest.json").write_text(json.dumps({**manifest, "digest": "rebuilt"}))
    assert quick_recommend(copy, ["u1"], 3) is None
    (copy / RANKED_ITEMS).write_bytes(b"not an array")
    (graph / "manifest.json").write_text(json.dumps(manifest))
    assert quick_recommend(copy, ["u1"], 3) is None  # unreadable: the loaded run reads its own files


def test_kgrec_recommend_answers_a_known_user_without_torch(tiny_run):
    """The usual question is answered from the stored ranking: the process never imports torch (seconds at start)."""
    script = (
        "import sys\nfrom kgrec.cli import main\n"
        f"main(['recommend', '--run', {str(tiny_run / 'run')!r}, '--user', 'u1', '-k', '3', '--json'], standalone_mode=False)\n"
        "print('torch' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    *answers, imported_torch = done.stdout.strip().splitlines()
    assert imported_torch == "False"
    (quick,) = quick_recommend(tiny_run / "run", ["u1"], 3)
    assert json.loads(answers[0])["item_ids"] == quick.item_ids
