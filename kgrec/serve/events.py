"""The serving state folder's event log: every accepted write, on disk before it is acknowledged."""

from __future__ import annotations

import contextlib
import json
import os
import threading
from pathlib import Path
from typing import Any

from kgrec.errors import InputError
from kgrec.io import DirectoryLock, check_replaceable, folder_kind, write_marker

__all__ = ["EventLog"]


class EventLog:
    """An append-only JSON-lines file (``events.jsonl``) in a state folder, held by one server at a time.

    :meth:`append` writes one line, flushes it and fsyncs the file before returning, so an event
    whose request was acknowledged survives a crash of the process or the machine. A crash in the
    middle of a write leaves a last line without its newline; that event was never acknowledged,
    and opening the log cuts it off.

    Args:
        folder: The state folder (created if absent).

    Raises:
        InputError: when the folder cannot be written, or another server holds it.
    """

    FILE = "events.jsonl"
    #: What each kind of event must hold (a line without them is a log kgrec did not write).
    REQUIRED = {"interaction": ("user", "item"), "items": ("items",)}

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self._own_folder()
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            self._lock_file = DirectoryLock(self.folder).acquire()
        except OSError as error:
            raise InputError(
                f"cannot write the serving state folder ({error.strerror or error})", self.folder
            ) from None
        except InputError:
            raise InputError(
                "another kgrec server holds this state folder; stop it or give another state folder", self.folder
            ) from None
        try:
            write_marker(self.folder, "serving")
            self.path = self.folder / self.FILE
            self._cut_torn_tail()
            self.count = len(self.read())
            # Unbuffered: a failed write must not stay in a buffer that a later, successful request flushes.
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        except BaseException:
            self._lock_file.release()
            raise
        self._write = threading.Lock()

    def _own_folder(self) -> None:
        """The rule of every folder kgrec writes: absent, empty, or kgrec's own (a serving folder; or one an older
        kgrec wrote, holding nothing but its log); a folder of other files is never written into."""
        if self.folder.is_dir() and folder_kind(self.folder) is None:
            entries = {entry.name for entry in self.folder.iterdir()}
            if entries <= {self.FILE, ".lock"}:
                return
        check_replaceable(self.folder, "serving", option="state folder (--state)")

    def _cut_torn_tail(self) -> None:
        if not self.path.is_file():
            return
        data = self.path.read_bytes()
        end = data.rfind(b"\n") + 1
        if end != len(data):
            with open(self.path, "r+b") as handle:
                handle.truncate(end)
                handle.flush()
                os.fsync(handle.fileno())

    def read(self) -> list[dict[str, Any]]:
        """Every event in the order it was accepted.

        Raises:
            InputError: a line that is not an event kgrec wrote, naming the file and line.
        """
        if not self.path.is_file():
            return []
        events = []
        for number, line in enumerate(self.path.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            try:
                event = json.loads(line)
            except json.JSONDecodeError as error:
                raise InputError(f"corrupted event: {error}", self.path, number) from None
            kind = event.get("kind") if isinstance(event, dict) else None
            if kind not in self.REQUIRED:
                raise InputError(
                    f"not a kgrec event (its 'kind' is {kind!r}, not one of {sorted(self.REQUIRED)}); "
                    "give --state a folder of its own",
                    self.path,
                    number,
                )
            missing = [name for name in self.REQUIRED[kind] if name not in event]
            if missing:
                raise InputError(f"'{kind}' event without '{missing[0]}'", self.path, number)
            events.append(event)
        return events

    def append(self, event: dict[str, Any]) -> int:
        """Write ``event`` durably; returns its 1-based sequence number.

        Raises:
            OSError: the event could not be made durable (a full disk); the log is as it was before the call,
                so the event never reappears, as a request answered with an error must not.
        """
        line = json.dumps(event, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode("utf-8") + b"\n"
        with self._write:
            end = os.lseek(self._fd, 0, os.SEEK_END)
            try:
                view = memoryview(line)
                while view:
                    view = view[os.write(self._fd, view) :]
                os.fsync(self._fd)
            except OSError:
                with contextlib.suppress(OSError):
                    os.ftruncate(self._fd, end)
                    os.fsync(self._fd)
                raise
            self.count += 1
            return self.count

    def close(self) -> None:
        """Close the file and give the folder back."""
        os.close(self._fd)
        self._lock_file.release()
