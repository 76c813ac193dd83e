"""The run directory of one training: claimed, locked and marked before anything is written into it.

``train --out DIR`` writes into ``DIR`` only when it is absent, empty, or an earlier kgrec run; a
folder of anything else is refused. An exclusive lock is held for the whole run, so a second
``train`` (or ``evaluate``) on the same folder stops with a one-line error instead of overwriting the
first. A run that fails leaves nothing behind unless it wrote a checkpoint to resume from.
"""

from __future__ import annotations

import contextlib
import shutil
from pathlib import Path

from kgrec.errors import InputError
from kgrec.io import DirectoryLock, check_replaceable, folder_kind, write_marker
from kgrec.train.checkpoint import CHECKPOINT_NAME

__all__ = ["RunDirectory", "RUN_FILES"]

# Everything a run writes (besides its marker and lock); a fresh run into an old one removes these first.
RUN_FILES = (
    "run.json",
    "model.pt",
    "metrics.json",
    "history.csv",
    "curve.png",
    "context.json",
    "config.yaml",
    CHECKPOINT_NAME,
)


class RunDirectory:
    """The folder a training run writes, held by this process from :meth:`open` to :meth:`close`.

    Args:
        path: The run directory (``--out``).
        resume: Continuing an interrupted run: its checkpoint and config stay, and a failure removes nothing.
    """

    def __init__(self, path: str | Path, resume: bool = False) -> None:
        self.path = Path(path)
        self.resume = resume
        self.created = False
        self._lock: DirectoryLock | None = None

    def open(self) -> RunDirectory:
        """Create or claim the folder, take its lock and mark it; clear a previous run's files unless resuming.

        Raises:
            InputError: the path is a file or a folder kgrec did not make, or another process holds the run.
        """
        if self.path.exists() and not self.path.is_dir():
            raise InputError("exists and is not a folder; choose another `out`", self.path)
        try:
            self.path.mkdir(parents=True)
            self.created = True
        except FileExistsError:
            check_replaceable(self.path, "run")
        self._lock = DirectoryLock(self.path).acquire()
        if not self.resume and (self.path / CHECKPOINT_NAME).is_file() and not (self.path / "run.json").is_file():
            self.close()  # an interrupted run's work would be deleted by a fresh start: the user decides
            raise InputError(
                f"holds an interrupted run (its {CHECKPOINT_NAME}); continue it with 'kgrec train --resume {self.path}', "
                "or delete the folder to start again",
                self.path,
            )
        # From here on this process owns the folder: what it cleans up is its own.
        write_marker(self.path, "run")
        for leftover in self.path.glob(".*.tmp"):  # half-written files of a process that was killed
            leftover.unlink(missing_ok=True)
        (self.path / "run.json").unlink(missing_ok=True)  # the run is incomplete until run.json is written again
        if not self.resume:
            self._remove_run_files()
        return self

    def _remove_run_files(self) -> None:
        for name in RUN_FILES:
            (self.path / name).unlink(missing_ok=True)
        if folder_kind(self.path / "graph") == "graph":  # the graph an in-memory training saved beside the run
            shutil.rmtree(self.path / "graph", ignore_errors=True)

    def fail(self, bad_input: bool) -> None:
        """Clean up after a failed run: nothing is left unless a checkpoint can resume it.

        A run stopped by bad input cannot be resumed, so its checkpoint goes too; a resumed run keeps
        everything (its checkpoint is the user's only copy of the work so far).
        """
        if self._lock is None or self.resume:
            return
        if not bad_input and (self.path / CHECKPOINT_NAME).is_file():
            return  # interrupted or out of disk after some epochs: `kgrec train --resume` continues it
        if self.created:
            shutil.rmtree(self.path, ignore_errors=True)  # still holding the lock, so nobody starts in between
            self.close()
        else:
            with contextlib.suppress(OSError):
                self._remove_run_files()

    def close(self) -> None:
        """Release the lock."""
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({str(self.path)!r}, resume={self.resume})"
