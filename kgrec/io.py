"""Atomic file and directory writes, folder ownership and locks, content hashes, and safe loading of tensors.

Over 400 lines: every write kgrec makes goes through here, so the crash, full-disk and ownership rules live in
one file that can be read and tested as a whole.

Every folder kgrec writes as a whole (a graph, a run, an export, a downloaded dataset) holds a small
marker file, ``.kgrec``, naming its kind. A folder is replaced or written into only when it is absent,
empty, or marked with the same kind, so a user's own folder is never overwritten or deleted.
Temporary names carry the writing process's id, so a later write can tell the leftovers of a killed
process from the work of one still running, and clean them up.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = [
    "atomic_write",
    "atomic_dir",
    "save_tensors",
    "json_safe",
    "write_json",
    "sha256_file",
    "sha256_bytes",
    "load_tensors",
    "safe_name",
    "MARKER_NAME",
    "folder_kind",
    "check_replaceable",
    "write_marker",
    "remove_stale_temporaries",
    "DirectoryLock",
]

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,127}")
MARKER_NAME = ".kgrec"
# Folders written before the marker existed are still recognised by their own record file.
_LEGACY_RECORDS = {"graph": ("manifest.json", "kgrec-graph"), "run": ("run.json", "kgrec-run")}
_KIND_WORDS = {
    "graph": "graph directory",
    "run": "run directory",
    "export": "RecBole export folder",
    "dataset": "dataset folder",
    "serving": "serving state folder",
}


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


def _process_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def _temporary_pid(name: str, target: str) -> int | None:
    """The process id in a temporary name ``.<target>.<pid>.<random>.tmp`` or ``.<target>.old-<pid>``."""
    rest = name[len(target) + 2 :]
    if name.endswith(".tmp"):
        pid = rest.split(".", 1)[0]
    elif rest.startswith("old-"):
        pid = rest[4:]
    else:
        return None
    return int(pid) if pid.isdigit() else None


def remove_stale_temporaries(path: str | Path) -> list[Path]:
    """Remove what killed processes left while writing ``path``: its temporary files and folders.

    If a process died between moving the old ``path`` aside and moving the new one in, the old
    content is moved back instead, so nothing the user had is lost. Temporaries of processes still
    running are left alone. Returns what was removed.
    """
    path = Path(path)
    parent = path.parent
    if not parent.is_dir():
        return []
    removed = []
    prefix = f".{path.name}."
    for entry in sorted(parent.iterdir()):
        if not entry.name.startswith(prefix):
            continue
        pid = _temporary_pid(entry.name, path.name)
        if pid is None or _process_alive(pid):
            continue
        if entry.name.endswith(f".old-{pid}") and not path.exists():
            os.replace(entry, path)  # the swap never finished: the previous content is the real one
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            with contextlib.suppress(FileNotFoundError):
                entry.unlink()
        removed.append(entry)
    return removed


@contextlib.contextmanager
def atomic_write(path: str | Path, mode: str = "w", encoding: str | None = "utf-8") -> Iterator[Any]:
    """Open a temporary file beside ``path`` and rename it onto ``path`` only if the block succeeds.

    A crash or an exception inside the block leaves ``path`` as it was before (or absent).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp", dir=path.parent)
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


def _read_json(path: Path) -> dict:
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return {}
    return record if isinstance(record, dict) else {}


def folder_kind(path: str | Path) -> str | None:
    """The kind of kgrec folder ``path`` is (``"graph"``, ``"run"``, ...), or ``None`` if kgrec did not write it."""
    path = Path(path)
    if (path / MARKER_NAME).is_file():
        kind = _read_json(path / MARKER_NAME).get("kind")
        return kind if isinstance(kind, str) else None
    for kind, (record, fmt) in _LEGACY_RECORDS.items():
        if _read_json(path / record).get("format") == fmt:
            return kind
    return None


def _recorded_entries(path: Path) -> set[str] | None:
    """The names kgrec wrote into a folder it replaces as a whole (from its marker, or a legacy graph's manifest)."""
    entries = _read_json(path / MARKER_NAME).get("entries")
    if isinstance(entries, list):
        return set(map(str, entries))
    files = _read_json(path / "manifest.json").get("files") if not (path / MARKER_NAME).exists() else None
    return set(files) | {"manifest.json"} if isinstance(files, dict) else None


def check_replaceable(
    path: str | Path, kind: str, option: str = "`out`", whole: bool = False, keep: tuple[str, ...] = ()
) -> None:
    """Raise an InputError unless ``path`` is absent, an empty folder, or a kgrec folder of ``kind``.

    The rule for every command that replaces or writes into a whole folder: a folder kgrec did not
    create (the user's own files) is never touched. With ``whole`` (the folder is about to be replaced
    as a whole), a kgrec folder that has since received files kgrec did not write there (a run saved
    inside a graph folder, notes beside an export) is refused too; names in ``keep`` are carried over.
    """
    from kgrec.errors import InputError

    path = Path(path)
    if not path.exists():
        return
    words = _KIND_WORDS.get(kind, f"{kind} folder")  # "graph directory", ... (every word starts with a consonant)
    if not path.is_dir():
        raise InputError(f"exists and is not a folder; choose another {option}", path)
    found = folder_kind(path)
    if found == kind:
        recorded = _recorded_entries(path) if whole else None
        if recorded is not None:
            foreign = sorted(e.name for e in path.iterdir() if e.name not in recorded | {MARKER_NAME, ".lock", *keep})
            if foreign:
                raise InputError(
                    f"holds '{foreign[0]}', which kgrec did not write there; replacing the folder would delete it: "
                    f"move it out first, or choose another {option}",
                    path,
                )
        return
    if found is None and not any(entry.name not in (MARKER_NAME, ".lock") for entry in path.iterdir()):
        return
    if found:
        raise InputError(
            f"is a kgrec {_KIND_WORDS.get(found, found)}, not a {words}; it is never replaced: choose another {option}",
            path,
        )
    raise InputError(
        f"exists and is not a {words} that kgrec made; it is never replaced or written into: choose another {option}",
        path,
    )


def write_marker(folder: str | Path, kind: str, entries: list[str] | None = None) -> None:
    """Mark ``folder`` as a kgrec folder of ``kind`` (see :func:`check_replaceable`), with the names it wrote there."""
    from kgrec._version import __version__

    marker = Path(folder) / MARKER_NAME
    record: dict[str, str | list[str]] = {"kind": kind, "kgrec_version": __version__}
    if entries is not None:
        record["entries"] = sorted(entries)
    if _read_json(marker) == record:
        return
    with atomic_write(marker) as handle:
        json.dump(record, handle)
        handle.write("\n")


@contextlib.contextmanager
def atomic_dir(path: str | Path, kind: str, option: str = "`out`", keep: tuple[str, ...] = ()) -> Iterator[Path]:
    """Yield an empty temporary directory that replaces ``path`` as a whole when the block succeeds.

    An existing ``path`` is swapped out only after the new content is complete, so readers see either
    the old directory or the new one, never a half-written mix; and only if it is a kgrec folder of the
    same ``kind`` holding nothing but what kgrec wrote there (checked before, and again just before the
    swap). Entries named in ``keep`` (a cache) move from the old folder into the new one. Temporaries
    that a killed earlier write left behind are removed first. The new folder carries the ``kind``
    marker, listing what was written.

    Raises:
        InputError: when ``path`` holds something kgrec did not write there.
    """
    path = Path(path)
    if path.is_symlink():  # swapping the link itself would leave it a folder and move its target's content aside
        path = path.resolve()
    check_replaceable(path, kind, option, whole=True, keep=keep)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp", dir=path.parent))
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o777 & ~umask)  # mkdtemp makes 0700; the result should look like any mkdir
    try:
        write_marker(tmp, kind)
        yield tmp
        write_marker(tmp, kind, [entry.name for entry in tmp.iterdir() if entry.name != MARKER_NAME])
        check_replaceable(
            path, kind, option, whole=True, keep=keep
        )  # another process may have put something there meanwhile
        for name in keep:
            if (path / name).exists() and not (tmp / name).exists():
                os.replace(path / name, tmp / name)
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


class DirectoryLock:
    """An exclusive lock on a folder (``flock`` on its ``.lock`` file), held by one process at a time.

    Two commands never write the same run at once: the second fails with a one-line error naming the
    first one's process id. The lock dies with its process, so a killed process never leaves a
    folder locked.
    """

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self._handle: Any = None

    def acquire(self, wait_seconds: float = 0.0) -> DirectoryLock:
        """Take the lock, retrying for up to ``wait_seconds``.

        Raises:
            InputError: when another process keeps it that long.
        """
        from kgrec.errors import InputError

        if self._handle is not None:
            return self
        try:
            import fcntl
        except ImportError:  # pragma: no cover - not POSIX: no advisory locks
            return self
        handle = open(self.folder / ".lock", "a+", encoding="utf-8")  # noqa: SIM115 - held until release()
        deadline = time.monotonic() + wait_seconds
        while True:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    handle.seek(0)
                    holder = handle.read().strip() or "unknown"
                    handle.close()
                    raise InputError(
                        f"another kgrec process (pid {holder}) is writing this folder now; wait for it or choose another folder",
                        self.folder,
                    ) from None
                time.sleep(0.05)
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        self._handle = handle
        return self

    def release(self) -> None:
        """Give the lock back (closing the file releases the ``flock``)."""
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    def __enter__(self) -> DirectoryLock:
        return self.acquire()  # a no-op after an explicit acquire(wait_seconds=...)

    def __exit__(self, *exc: object) -> None:
        self.release()


def json_safe(obj: Any) -> Any:
    """``obj`` with every NaN or infinite float as ``None``: JSON has no NaN, and a reader (jq, JavaScript, a
    strict parser) rejects the ``NaN`` that Python's json module writes. ``None`` says "no value" honestly."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {key: json_safe(value) for key, value in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(value) for value in obj]
    if hasattr(obj, "dtype") and getattr(obj, "ndim", None) == 0:  # a numpy or torch scalar
        return json_safe(obj.item())
    return obj


def write_json(path: str | Path, obj: Any) -> None:
    """Write ``obj`` as indented, standard JSON (no NaN: see :func:`json_safe`), atomically."""
    with atomic_write(path) as handle:
        json.dump(json_safe(obj), handle, indent=2, sort_keys=False, default=str, allow_nan=False)
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


def save_tensors(obj: Any, path: str | Path) -> None:
    """``torch.save`` atomically (write beside, then rename); a failed write is an ``OSError`` naming ``path``.

    torch's own writer reports a full disk as a ``RuntimeError`` ("PytorchStreamWriter failed writing file"), which
    would reach the user as a traceback; as an OSError it is one line, and the file is as it was before.
    """
    import errno

    import torch

    path = Path(path)
    try:
        with atomic_write(path, mode="wb") as handle:
            torch.save(obj, handle)
    except RuntimeError as error:
        cause = error.__context__  # the file object's own OSError, when torch's writer met one
        if isinstance(cause, OSError) and cause.errno is not None:
            raise OSError(cause.errno, cause.strerror or os.strerror(cause.errno), str(path)) from None
        if "write" not in str(error).lower():
            raise
        full = shutil.disk_usage(path.parent).free < (64 << 20)
        first = next((line.strip() for line in str(error).splitlines() if line.strip()), "write failed")
        raise OSError(
            errno.ENOSPC if full else errno.EIO, os.strerror(errno.ENOSPC) if full else first[:160], str(path)
        ) from None


def load_tensors(path: str | Path, *, mmap: bool = False) -> Any:
    """Load a file written by ``torch.save`` without unpickling arbitrary objects.

    With ``mmap`` the tensors are mapped from the file (copy on write) rather than read into memory, so a large
    checkpoint is not held twice while a model's own zero-filled tensors are replaced by it.
    """
    import pickle

    import torch

    from kgrec.errors import InputError

    try:
        return torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError) as error:
        # weights_only refuses anything but tensors and plain containers: nothing in the file ran. Its message is
        # a page of advice on trusting the file, which is not what a user of kgrec can act on.
        first = next((line.strip() for line in str(error).splitlines() if line.strip()), type(error).__name__)
        raise InputError(
            f"is not a tensor file kgrec wrote, or is damaged ({first[:160]}); build or train it again", path
        ) from None
