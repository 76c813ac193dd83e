"""`kgrec serve` as a real process on a loopback port, talked to over HTTP (httpx)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from kgrec import api
from kgrec.errors import InputError
from kgrec.serve import EventLog
from tests.conftest import TINY_TRAINING

FAST = {**TINY_TRAINING, "train.epochs": 10, "model.use_text": False}
TOKEN = "t0ken"


@pytest.fixture(scope="module")
def trained(tiny_run) -> Path:
    """The session's tiny run (``graph/`` and ``run/``); the server only reads it."""
    return tiny_run


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Server:
    """One ``kgrec serve`` process; ``url`` once it answers /health."""

    def __init__(self, run: Path, state: Path, token: str | None = TOKEN, extra: tuple[str, ...] = ()) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        command = [
            sys.executable,
            "-m",
            "kgrec",
            "serve",
            "--run",
            str(run),
            "--state",
            str(state),
            "--port",
            str(self.port),
            *extra,
        ]
        env = {**os.environ, "KGREC_SERVE_TOKEN": token or ""}
        self.process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"server exited: {self.process.stdout.read()}")
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.2)
        self.stop()
        raise AssertionError("server did not start within 60 s")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process.poll() is None:
            self.process.send_signal(sig)
            self.process.wait(timeout=30)


@pytest.fixture
def server(trained, tmp_path):
    started = Server(trained / "run", tmp_path / "state", extra=("--reload-root", str(trained)))
    yield started
    started.stop()


AUTH = {"Authorization": f"Bearer {TOKEN}"}


def test_reads_match_the_library_and_bad_requests_get_one_line_4xx(server, trained):
    client = httpx.Client(base_url=server.url, timeout=30)
    health = client.get("/health").json()
    assert health["status"] == "ok" and health["items"] == 10 and health["events"] == 0
    expected = api.recommend(trained / "run", ["u1", "u5"], k=4)
    got = client.get("/recommend", params={"user": "u1", "k": 4}).json()
    assert got["known"] and not got["cold_start"]
    assert [item["item"] for item in got["items"]] == expected[0].item_ids
    assert [item["score"] for item in got["items"]] == pytest.approx(expected[0].scores, abs=1e-5)
    batch = client.post("/recommend", json={"users": ["u1", "u5", "stranger"], "k": 4, "history": ["1", "2"]}).json()[
        "results"
    ]
    assert [r["user"] for r in batch] == ["u1", "u5", "stranger", "anonymous"]
    assert [i["item"] for i in batch[1]["items"]] == expected[1].item_ids
    assert batch[2]["cold_start"] and not batch[2]["known"]  # the cold-start answer, flagged
    assert not {"1", "2"} & {i["item"] for i in batch[3]["items"]}  # a history is never recommended back
    explained = client.get("/recommend", params={"user": "u1", "k": 2, "explain": "true"}).json()
    assert any(item["path"] and item["path"]["nodes"][0] == "user:u1" for item in explained["items"])
    paths = client.get("/explain", params={"user": "u1", "item": "10"}).json()["paths"]
    assert paths and paths[0]["nodes"][-1] == "item:10"

    for response, status, words in (
        (client.get("/recommend", params={"user": "u1", "k": 0}), 422, "k"),
        (client.get("/recommend", params={"user": "u1", "k": 11}), 400, "between 1 and the number of items"),
        (client.get("/recommend"), 422, "user"),
        (client.get("/recommend", params={"user": "u1", "hour": "3"}), 400, "without context"),
        (client.post("/recommend", content=b"{not json", headers={"content-type": "application/json"}), 422, "JSON"),
        (client.post("/recommend", json={"users": ["u1"], "k": "many"}), 422, "k"),
        (client.post("/recommend", json={"history": ["nope"]}), 404, "unknown item id 'nope'"),
        (client.get("/explain", params={"user": "u1", "item": "nope"}), 404, "unknown item id 'nope'"),
        (client.get("/explain", params={"user": "nobody", "item": "1"}), 400, "unknown user id 'nobody'"),
    ):
        assert response.status_code == status, (response.status_code, response.text)
        detail = response.json()["detail"]
        assert isinstance(detail, str) and "\n" not in detail and words in detail, detail

    metrics = client.get("/metrics").text
    assert 'kgrec_requests_total{endpoint="/recommend",method="GET",status="200"}' in metrics
    assert 'kgrec_request_seconds_bucket{endpoint="/recommend"' in metrics


def test_writes_need_the_token_and_show_at_once(server):
    client = httpx.Client(base_url=server.url, timeout=30)
    event = {"user": "u1", "item": "10", "timestamp": 1_700_000_000}
    assert client.post("/interactions", json=event).status_code == 401
    assert client.post("/interactions", json=event, headers={"Authorization": "Bearer wrong"}).status_code == 401
    before = [i["item"] for i in client.get("/recommend", params={"user": "u1", "k": 5}).json()["items"]]
    assert "10" in before  # the cold item is u1's top candidate in the tiny graph
    accepted = client.post("/interactions", json=event, headers=AUTH)
    assert accepted.status_code == 200 and accepted.json()["sequence"] == 1
    after = client.get("/recommend", params={"user": "u1", "k": 5}).json()
    assert after["folded_in"] and "10" not in [i["item"] for i in after["items"]]
    # An unknown user becomes a known one.
    assert client.get("/recommend", params={"user": "newcomer"}).json()["cold_start"]
    assert client.post("/interactions", json={"user": "newcomer", "item": "6"}, headers=AUTH).status_code == 200
    newcomer = client.get("/recommend", params={"user": "newcomer", "k": 9}).json()
    assert newcomer["known"] and not newcomer["cold_start"] and "6" not in [i["item"] for i in newcomer["items"]]
    # Rejected writes are not logged.
    assert client.post("/interactions", json={"user": "u1", "item": "nope"}, headers=AUTH).status_code == 404
    assert client.post("/interactions", json={"user": "u1", "item": "1", "extra": 1}, headers=AUTH).status_code == 422
    assert client.get("/health").json()["events"] == 2

    item = {"item": "n1", "title": "Nolan's new one", "categories": ["A"], "brands": ["StudioX"]}
    assert client.post("/items", json={"items": [item]}).status_code == 401
    assert client.post("/items", json={"items": [item]}, headers=AUTH).json()["added"] == 1
    listed = client.get("/recommend", params={"user": "u2", "k": 6}).json()["items"]
    assert "n1" in [i["item"] for i in listed] and client.get("/health").json()["items"] == 11
    again = client.post("/items", json={"items": [item]}, headers=AUTH)
    assert again.status_code == 400 and "already in the catalog" in again.json()["detail"]


@pytest.mark.slow
def test_acknowledged_events_survive_sigkill(trained, tmp_path):
    """A stream of posts, the server killed with SIGKILL mid-stream: every acknowledged event is back after a restart."""
    state = tmp_path / "state"
    server = Server(trained / "run", state)
    acknowledged: list[tuple[str, str]] = []
    stop = threading.Event()

    def post() -> None:
        client = httpx.Client(base_url=server.url, timeout=5)
        n = 0
        while not stop.is_set():
            user, item = f"stream{n}", str(1 + n % 10)
            try:
                if client.post("/interactions", json={"user": user, "item": item}, headers=AUTH).status_code == 200:
                    acknowledged.append((user, item))
            except httpx.TransportError:
                return
            n += 1

    thread = threading.Thread(target=post)
    thread.start()
    while len(acknowledged) < 20:
        time.sleep(0.01)
    server.stop(signal.SIGKILL)
    stop.set()
    thread.join()
    restarted = Server(trained / "run", state)
    try:
        client = httpx.Client(base_url=restarted.url, timeout=30)
        assert client.get("/health").json()["events"] >= len(acknowledged)
        for user, item in acknowledged:
            answer = client.get("/recommend", params={"user": user, "k": 9}).json()
            assert answer["known"] and item not in [i["item"] for i in answer["items"]], (user, item)
    finally:
        restarted.stop()


def test_reload_swaps_runs_without_dropping_requests(server, trained):
    client = httpx.Client(base_url=server.url, timeout=30)
    assert client.post("/interactions", json={"user": "u3", "item": "10"}, headers=AUTH).status_code == 200
    failures: list[int] = []
    stop = threading.Event()

    def read() -> None:
        reader = httpx.Client(base_url=server.url, timeout=30)
        while not stop.is_set():
            status = reader.get("/recommend", params={"user": "u1", "k": 3}).status_code
            if status != 200:
                failures.append(status)

    readers = [threading.Thread(target=read) for _ in range(3)]
    for thread in readers:
        thread.start()
    assert client.post("/admin/reload", json={}).status_code == 401
    assert client.post("/admin/reload", json={}, headers=AUTH).status_code == 200
    server.process.send_signal(signal.SIGHUP)
    time.sleep(2.0)
    stop.set()
    for thread in readers:
        thread.join()
    assert failures == []
    # Posted events are replayed onto the reloaded run.
    answer = client.get("/recommend", params={"user": "u3", "k": 5}).json()
    assert answer["folded_in"] and "10" not in [i["item"] for i in answer["items"]]
    missing = client.post("/admin/reload", json={"run": str(trained / "nowhere")}, headers=AUTH)
    assert missing.status_code == 400 and "run.json" in missing.json()["detail"]
    assert client.get("/recommend", params={"user": "u1"}).status_code == 200  # the old run still serves


def test_event_log_cuts_a_torn_last_line_and_refuses_a_second_holder(tmp_path):
    log = EventLog(tmp_path)
    assert log.append({"kind": "interaction", "user": "a", "item": "1"}) == 1
    log.close()
    with open(tmp_path / EventLog.FILE, "ab") as handle:
        handle.write(b'{"kind": "interaction", "us')  # a write cut by a crash: never acknowledged
    log = EventLog(tmp_path)
    assert log.read() == [{"kind": "interaction", "user": "a", "item": "1"}] and log.count == 1
    with pytest.raises(Exception, match="another kgrec server holds this state folder"):
        EventLog(tmp_path)
    log.close()


def test_frozen_score_table_answers_as_the_model_does(trained):
    """freeze() keeps a users x items score table when it fits; the answers are those of scoring per request."""
    from kgrec.inference import Recommender

    table = Recommender.load(trained / "run").freeze()
    direct = Recommender.load(trained / "run").freeze(score_table_bytes=0)
    assert table.frozen is not None and table.frozen.table is not None and table.frozen.ranked is not None
    assert direct.frozen is None or direct.frozen.table is None
    shallow = Recommender.load(trained / "run")
    shallow.RANKED_DEPTH = 3  # k above it is scored from the table, k at or below it read from the ranking
    shallow.freeze()
    users = list(table.graph.users.ids)
    everything = len(table.graph.items)  # more than some users have unseen: those answers are shorter
    for k in (1, 3, 5, everything):
        for answers in (table.recommend(users, k=k), shallow.recommend(users, k=k)):
            for a, b in zip(answers, direct.recommend(users, k=k)):
                assert a.item_ids == b.item_ids and a.scores == pytest.approx(b.scores, abs=1e-5)
    assert any(len(rec.item_ids) < everything for rec in table.recommend(users, k=everything))
    seen_any = table.recommend(users, k=3, exclude_seen=False)
    assert [r.item_ids for r in seen_any] == [r.item_ids for r in direct.recommend(users, k=3, exclude_seen=False)]


# -- in process (fastapi's TestClient): the guards of issue 38 -----------------------------------------------------
def _client(trained: Path, state: Path, **options: object):
    from fastapi.testclient import TestClient

    from kgrec.serve import Service, create_app

    service = Service(trained / "run", state, **options)  # type: ignore[arg-type]
    return service, TestClient(create_app(service))


@pytest.mark.parametrize("blank", ["", "   "])
def test_an_empty_token_is_refused_not_an_open_server(trained, tmp_path, blank):
    from kgrec.serve import Service

    with pytest.raises(InputError, match="write token is empty"):
        Service(trained / "run", tmp_path / "state", token=blank)
    assert not (tmp_path / "state").exists()


def test_without_a_token_writes_need_open_writes(trained, tmp_path):
    service, client = _client(trained, tmp_path / "a")
    try:
        refused = client.post("/interactions", json={"user": "u1", "item": "10"})
        assert refused.status_code == 403 and "read-only" in refused.json()["detail"]
        assert client.post("/admin/reload", json={}).status_code == 403 and service.log.count == 0
    finally:
        service.close()
    service, client = _client(trained, tmp_path / "b", open_writes=True)
    try:
        assert client.post("/interactions", json={"user": "u1", "item": "10"}).status_code == 200
    finally:
        service.close()


def test_reload_swaps_in_only_runs_under_the_reload_root(trained, tmp_path):
    service, client = _client(trained, tmp_path / "state", token=TOKEN)
    try:
        elsewhere = client.post("/admin/reload", json={"run": str(tmp_path)}, headers=AUTH)
        assert elsewhere.status_code == 400 and "--reload-root" in elsewhere.json()["detail"]
        assert client.post("/admin/reload", json={"run": str(trained / "run")}, headers=AUTH).status_code == 200
    finally:
        service.close()
    service, client = _client(trained, tmp_path / "state", token=TOKEN, reload_root=trained / "run")
    try:
        outside = client.post("/admin/reload", json={"run": str(trained / "run" / ".." / "graph")}, headers=AUTH)
        assert outside.status_code == 400 and "outside the reload root" in outside.json()["detail"]
    finally:
        service.close()


def test_bodies_repeated_parameters_and_timestamps_are_checked(trained, tmp_path, monkeypatch):
    from kgrec.serve import app as app_module

    monkeypatch.setattr(app_module, "MAX_BODY_BYTES", 1000)
    service, client = _client(trained, tmp_path / "state", token=TOKEN)
    try:
        big = client.post("/interactions", content=b"x" * 5000, headers={**AUTH, "content-type": "application/json"})
        assert big.status_code == 413 and "over" in big.json()["detail"]
        assert client.post("/recommend", json={"users": ["u1"], "k": 2}).status_code == 200  # a small body still reads
        twice = client.get("/recommend?user=u1&user=u2")
        assert twice.status_code == 400 and "'user' is given 2 times" in twice.json()["detail"]
        for stamp in ("NaN", "-Infinity", "Infinity", "-5"):
            body = f'{{"user": "u1", "item": "10", "timestamp": {stamp}}}'
            answer = client.post(
                "/interactions", content=body.encode(), headers={**AUTH, "content-type": "application/json"}
            )
            assert answer.status_code == 422, (stamp, answer.text)
        assert service.log.count == 0
    finally:
        service.close()


def test_an_event_that_failed_to_reach_disk_never_comes_back(tmp_path, monkeypatch):
    from kgrec.serve import events as events_module

    log = EventLog(tmp_path / "state")
    assert log.append({"kind": "interaction", "user": "a", "item": "1"}) == 1
    real_fsync = events_module.os.fsync

    def full_disk(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(events_module.os, "fsync", full_disk)
    with pytest.raises(OSError):
        log.append({"kind": "interaction", "user": "b", "item": "2"})
    monkeypatch.setattr(events_module.os, "fsync", real_fsync)
    assert log.append({"kind": "interaction", "user": "c", "item": "3"}) == 2
    log.close()
    assert [event["user"] for event in EventLog(tmp_path / "state").read()] == ["a", "c"]


def test_the_state_folder_follows_the_ownership_rules(tmp_path):
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    with pytest.raises(InputError, match="never replaced or written into"):
        EventLog(foreign)
    assert sorted(p.name for p in foreign.iterdir()) == ["notes.txt"]
    odd = tmp_path / "odd"
    odd.mkdir()
    (odd / EventLog.FILE).write_text('{"user": "a", "item": "1"}\n')
    with pytest.raises(InputError, match=r"events.jsonl:1: not a kgrec event"):
        EventLog(odd)
    EventLog(odd.parent / "fresh").close()  # and the lock of a refused folder was given back
    (odd / EventLog.FILE).write_text('{"kind": "interaction", "user": "a", "item": "1"}\n')
    EventLog(odd).close()


def test_a_restart_answers_as_the_server_did_before_it(trained, tmp_path):
    service, client = _client(trained, tmp_path / "state", token=TOKEN)
    try:
        for name in ("n1", "n2", "n3"):
            item = {"item": name, "title": f"New {name}", "categories": ["A"], "brands": ["StudioX"]}
            assert client.post("/items", json={"items": [item]}, headers=AUTH).status_code == 200
        assert client.post("/interactions", json={"user": "u1", "item": "n2"}, headers=AUTH).status_code == 200
        before = client.get("/recommend", params={"user": "u2", "k": 13}).json()["items"]
    finally:
        service.close()
    service, client = _client(trained, tmp_path / "state", token=TOKEN)
    try:
        assert client.get("/health").json()["items"] == 13
        after = client.get("/recommend", params={"user": "u2", "k": 13}).json()["items"]
        assert [i["item"] for i in after] == [i["item"] for i in before]
        assert [i["score"] for i in after] == pytest.approx([i["score"] for i in before], abs=1e-5)
        assert "n2" not in [i["item"] for i in client.get("/recommend", params={"user": "u1", "k": 12}).json()["items"]]
    finally:
        service.close()
