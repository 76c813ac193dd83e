"""The serving state folder's event log: every accepted write, on disk before it is acknowledged."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

from kgrec.errors import InputError
from kgrec.io import DirectoryLock

__all__ = ["EventLog"]


class EventLog:
    """An append-only JSON-lines file (``events.jsonl``) in a state folder, held by one server at a time.

    :meth:`append` writes one line, flushes it and ``fsync``\\ s the file before returning, so an event
    whose request was acknowledged survives a crash of the process or the machine. A crash in the
    middle of a write leaves a last line without its newline; that event was never acknowledged,
    and opening the log cuts it off.

    Args:
        folder: The state folder (created if absent).

    Raises:
        InputError: when the folder cannot be written, or another server holds it.
    """

    FILE = "events.jsonl"

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            self._lock_file = DirectoryLock(self.folder).acquire()
        except OSError as error:
            raise InputError(f"cannot write the serving state folder ({error.strerror or error})", self.folder) from None
        except InputError:
            raise InputError("another kgrec server holds this state folder; stop it or give another state folder", self.folder) from None
        self.path = self.folder / self.FILE
        self._cut_torn_tail()
        self._handle = open(self.path, "ab")  # noqa: SIM115 - open for the server's lifetime
        self._write = threading.Lock()
        self.count = len(self.read())

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
        """Every event in the order it was accepted."""
        if not self.path.is_file():
            return []
        events = []
        for number, line in enumerate(self.path.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            try:
                events.append(json.loads(line))
            except json.JSONDecodeError as error:
                raise InputError(f"corrupted event: {error}", self.path, number) from None
        return events

    def append(self, event: dict[str, Any]) -> int:
        """Write ``event`` durably; returns its 1-based sequence number."""
        line = json.dumps(event, ensure_ascii=False, separators=(",", ":")).encode("utf-8") + b"\n"
        with self._write:
            self._handle.write(line)
            self._handle.flush()
            os.fsync(self._handle.fileno())
            self.count += 1
            return self.count

    def close(self) -> None:
        """Close the file and give the folder back."""
        self._handle.close()
        self._lock_file.release()
