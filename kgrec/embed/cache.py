"""A content-addressed cache of embedding tensors: the key hashes inputs, config and library versions."""

from __future__ import annotations

import hashlib
import json
from importlib import metadata
from pathlib import Path
from typing import Any

from kgrec.io import load_tensors, save_tensors

__all__ = ["cache_key", "load_cached", "store_cached", "CACHE_FORMAT"]

# Bump when what an entry holds changes, so entries written by an older kgrec are misses.
CACHE_FORMAT = 2


def _versions(packages: tuple[str, ...]) -> dict[str, str]:
    found = {}
    for package in packages:
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            found[package] = "absent"
    return found


def cache_key(content: bytes, settings: dict[str, Any], packages: tuple[str, ...]) -> str:
    """sha256 over the input bytes, the settings that shape the output, and the versions that compute it."""
    digest = hashlib.sha256(content)
    digest.update(f"kgrec-cache-{CACHE_FORMAT}".encode())
    digest.update(json.dumps(settings, sort_keys=True, default=str).encode())
    digest.update(json.dumps(_versions(("torch", *packages)), sort_keys=True).encode())
    return digest.hexdigest()


def load_cached(directory: Path | None, kind: str, key: str, required: tuple[str, ...] = ()) -> dict[str, Any] | None:
    """The cached entry, or ``None`` when absent, unreadable, written under another key or missing a ``required`` field."""
    if directory is None:
        return None
    path = Path(directory) / kind / f"{key}.pt"
    if not path.is_file():
        return None
    try:
        entry = load_tensors(path)
    except Exception:  # a truncated or foreign file is a miss, never a crash or a silent reuse
        return None
    if not isinstance(entry, dict) or entry.get("key") != key or any(field not in entry for field in required):
        return None
    return entry


def store_cached(directory: Path | None, kind: str, key: str, entry: dict[str, Any]) -> None:
    """Write an entry atomically under ``directory/kind/key.pt``."""
    if directory is None:
        return
    save_tensors({**entry, "key": key}, Path(directory) / kind / f"{key}.pt")
