"""Atomic file and directory writes, content hashes, and safe loading of tensors."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = ["atomic_write", "atomic_dir", "write_json", "sha256_file", "sha256_bytes", "load_tensors", "safe_name"]

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,127}")


def safe_name(name: str, what: str = "name") -> str:
    """``name`` if it can be one file or folder name inside an output directory, else an InputError.

    Names become paths (``graphs/<name>``, ``<out>/<name>.inter``), so a name with a separator, a
    leading dot or ``..`` could write outside the directory the user named; such names are refused.
    """
    from kgrec.errors import InputError

    if not isinstance(name, str) or not _NAME.fullmatch(name) or ".." in name:
        raise InputError(
            f"{what} {name!r} cannot be used in a path: use letters, digits, '.', '_', '+', '-' "
            "(no path separators, no leading dot, no '..', at most 128 characters)"
        )
    return name


@contextlib.contextmanager
def atomic_write(path: str | Path, mode: str = "w", encoding: str | None = "utf-8") -> Iterator[Any]:
    """Open a temporary file beside ``path`` and rename it onto ``path`` only if the block succeeds.

    A crash or an exception inside the block leaves ``path`` as it was before (or absent).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    try:
        with os.fdopen(fd, mode, encoding=None if "b" in mode else encoding) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def atomic_dir(path: str | Path) -> Iterator[Path]:
    """Yield an empty temporary directory that replaces ``path`` as a whole when the block succeeds.

    An existing ``path`` is swapped out only after the new content is complete, so readers
    see either the old directory or the new one, never a half-written mix.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o777 & ~umask)  # mkdtemp makes 0700; the result should look like any mkdir
    try:
        yield tmp
        if path.exists():
            old = path.with_name(f".{path.name}.old-{os.getpid()}")
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def write_json(path: str | Path, obj: Any) -> None:
    """Write ``obj`` as indented JSON, atomically."""
    with atomic_write(path) as handle:
        json.dump(obj, handle, indent=2, sort_keys=False, default=str)
        handle.write("\n")


def sha256_file(path: str | Path, chunk_size: int = 1 << 20) -> str:
    """Return the hex sha256 of a file's bytes, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


def sha256_bytes(data: bytes) -> str:
    """Return the hex sha256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def load_tensors(path: str | Path) -> Any:
    """Load a file written by ``torch.save`` without unpickling arbitrary objects."""
    import torch

    return torch.load(path, map_location="cpu", weights_only=True)
