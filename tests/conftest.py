"""Shared fixtures: a tiny catalog with a KG, written as files in every format the readers take."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest

from kgrec.data import read_dataset

# 8 users, 10 items (item 10 never interacted: a cold item), genres A/B, two brands,
# and external triples naming directors through a link table.
INTERACTIONS = [
    # user, item, rating, timestamp, device
    *[
        (f"u{u}", str(i), float(1 + (u + i) % 5), 1_600_000_000 + 1000 * u + i, "mobile" if u % 2 else "web")
        for u in range(1, 5)
        for i in (1, 2, 3, 4, 5)
    ],
    *[
        (f"u{u}", str(i), float(1 + (u * i) % 5), 1_600_000_000 + 1000 * u + i, "web")
        for u in range(5, 9)
        for i in (5, 6, 7, 8, 9)
    ],
]
ITEMS = [
    ("1", "Alpha", "A film about alpha", "A", "StudioX"),
    ("2", "Beta", "A film about beta", "A", "StudioX"),
    ("3", "Gamma", "A film about gamma", "A|C", "StudioY"),
    ("4", "Delta", "A film about delta", "A", ""),
    ("5", "Epsilon", "A film about epsilon", "A|B", "StudioY"),
    ("6", "Zeta", "A film about zeta", "B", "StudioY"),
    ("7", "Eta", "A film about eta", "B", ""),
    ("8", "Theta", "A film about theta", "B", "StudioX"),
    ("9", "Iota", "A film about iota", "B", ""),
    ("10", "Kappa", "A cold film nobody watched", "A", "StudioX"),
]
TRIPLES = [
    ("m.alpha", "directed_by", "m.nolan"),
    ("m.beta", "directed_by", "m.nolan"),
    ("m.kappa", "directed_by", "m.nolan"),
    ("m.zeta", "directed_by", "m.bigelow"),
    ("m.nolan", "born_in", "m.london"),
    ("m.alpha", "sequel", "m.beta"),
]
LINKS = [("1", "m.alpha"), ("2", "m.beta"), ("10", "m.kappa"), ("6", "m.zeta")]
#: What every tiny training in the suite starts from (two PyKEEN epochs, 8-wide embeddings, no held-out triples);
#: a test adds its epochs and what it tests. One set, so a faster default is changed once.
TINY_TRAINING: dict = {"kge.epochs": 2, "kge.dim": 8, "kge.eval_share": 0.0, "model.dim": 8}


def tiny_training_flags(extra: dict | None = None) -> list[str]:
    """:data:`TINY_TRAINING` (plus ``extra``) as ``kgrec train`` ``--set`` flags, for tests that run the command line."""
    settings = {**TINY_TRAINING, **(extra or {})}
    return [
        flag
        for key, value in settings.items()
        for flag in ("--set", f"{key}={str(value).lower() if isinstance(value, bool) else value}")
    ]


USERS = [(f"u{u}", str(20 + u), "F" if u % 2 else "M") for u in range(1, 9)]


def tiny_frames() -> dict[str, pd.DataFrame]:
    """The tiny dataset as pandas DataFrames by role, columns named as in its files."""
    return {
        "interactions": pd.DataFrame(INTERACTIONS, columns=["user", "item", "rating", "timestamp", "device"]),
        "items": pd.DataFrame(ITEMS, columns=["item", "title", "description", "category", "brand"]),
        "users": pd.DataFrame(USERS, columns=["user", "age", "gender"]),
        "triples": pd.DataFrame(TRIPLES, columns=["head", "relation", "tail"]),
        "links": pd.DataFrame(LINKS, columns=["item", "entity"]),
    }


def write_tiny_files(folder: Path, fmt: str = "csv") -> dict[str, Path]:
    """Write the tiny dataset in one of the tabular formats; return the paths by role."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for role, frame in tiny_frames().items():
        if fmt == "parquet":
            path = folder / f"{role}.parquet"
            frame.to_parquet(path, index=False)
        else:
            separator = "," if fmt == "csv" else "\t"
            path = folder / f"{role}.{fmt}"
            frame.to_csv(path, sep=separator, index=False)
        paths[role] = path
    return paths


@pytest.fixture
def tiny_files(tmp_path: Path) -> dict[str, Path]:
    """The tiny dataset as CSV files."""
    return write_tiny_files(tmp_path / "tiny")


@pytest.fixture
def tiny_dataset(tiny_files):
    """The tiny dataset, read and validated."""
    return read_dataset(**tiny_files, name="tiny")


@pytest.fixture
def tiny_graph(tiny_dataset):
    """The tiny dataset's knowledge graph (random split, default config)."""
    from kgrec.graph import build_graph

    return build_graph(tiny_dataset)


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The public datasets folder from KGREC_DATA_DIR; tests that need it skip without it."""
    value = os.environ.get("KGREC_DATA_DIR")
    if not value or not (Path(value) / "ml-100k").is_dir():
        pytest.skip("KGREC_DATA_DIR is unset or has no ml-100k/ (set it to ../shared/datasets to run this test)")
    return Path(value)


class Mounts:
    """Small real filesystems for the read-only and full-disk tests: tmpfs mounts (root only), unmounted afterwards."""

    def __init__(self, root: Path) -> None:
        self.root, self.mounted = root, []

    def tmpfs(self, name: str, size: str = "4m") -> Path:
        """A fresh tmpfs of ``size`` at ``root/name``; the test is skipped where this machine does not allow mounting."""
        import subprocess

        target = self.root / name
        target.mkdir(parents=True)
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0777", "tmpfs", str(target)],
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            pytest.skip(
                f"cannot mount a tmpfs here ({done.stderr.strip() or 'not root'}): read-only and full-disk cases need one"
            )
        self.mounted.append(target)
        return target

    def readonly(self, target: Path) -> None:
        """Make a mounted tmpfs read-only (root ignores file permissions, so a mode change would prove nothing)."""
        import subprocess

        subprocess.run(["mount", "-o", "remount,ro", str(target)], check=True)

    @staticmethod
    def fill(target: Path, leave: int) -> None:
        """Fill a filesystem until only about ``leave`` bytes are free."""
        stats = os.statvfs(target)
        free = stats.f_bavail * stats.f_frsize
        with open(target / "filler.bin", "wb") as handle:
            handle.write(b"\0" * max(0, free - leave))

    def close(self) -> None:
        import subprocess

        for target in reversed(self.mounted):
            subprocess.run(["umount", "-l", str(target)], capture_output=True)


@pytest.fixture
def mounts(tmp_path):
    """See :class:`Mounts`."""
    found = Mounts(tmp_path / "mnt")
    yield found
    found.close()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests on a public dataset (those that take ``data_dir``) are marked ``slow``: ``pytest -m "not slow"`` skips them."""
    for item in items:
        if "data_dir" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> Path:
    """The tiny dataset trained once per session (60/20/20 split, 10 epochs, no text): ``<folder>/graph`` and
    ``<folder>/run``. Tests read it; a test that changes a run trains its own."""
    from kgrec import api
    from kgrec.config import GraphConfig, RunConfig, SplitConfig
    from kgrec.graph import build_graph, save_graph

    folder = tmp_path_factory.mktemp("tiny-run")
    dataset = read_dataset(**write_tiny_files(folder / "files"), name="tiny")
    graph = build_graph(dataset, GraphConfig(split=SplitConfig(ratios=(0.6, 0.2, 0.2))))
    save_graph(graph, str(folder / "graph"))
    settings = {**TINY_TRAINING, "train.epochs": 10, "model.use_text": False}
    api.train(graph, RunConfig().override(settings), out=folder / "run", graph_dir=folder / "graph", quiet=True)
    return folder
