"""The exceptions kgrec raises for problems the user can fix, each printable as one line."""

from __future__ import annotations

from pathlib import Path

__all__ = ["KgrecError", "InputError", "DivergedError", "ContextWarning", "ColdStartWarning"]


class KgrecError(Exception):
    """Base class for errors caused by input or configuration, not by a bug in kgrec.

    The CLI prints ``str(error)`` on one line and exits with code 2.
    """


class InputError(KgrecError):
    """A problem in a file or value the user gave, located as precisely as we can.

    Args:
        message: What is wrong, in words a user of the data understands.
        path: The file the problem is in, if any.
        line: The 1-based line (or row, for binary formats) in that file, if known.
    """

    def __init__(self, message: str, path: str | Path | None = None, line: int | None = None) -> None:
        self.message = " ".join(str(message).split())  # always one line
        self.path = None if path is None else str(path)
        self.line = line
        super().__init__(str(self))

    def __str__(self) -> str:
        where = self.path or ""
        if self.path is not None and self.line is not None:
            where = f"{self.path}:{self.line}"
        return f"{where}: {self.message}" if where else self.message


class DivergedError(KgrecError):
    """Training (or PyKEEN's KG stage) produced a non-finite loss or parameter: the settings, not the data, are wrong.

    Nothing is saved from such a run: its metrics would be computed from NaN scores.
    """


class ContextWarning(UserWarning):
    """A stated context value training never saw (a typo, or a value too rare to learn): it reads as unknown.

    The CLI prints it as a one-line note; the request is still answered.
    """


class ColdStartWarning(UserWarning):
    """A user id the run does not know, answered as a new user (the most popular items, or from stated attributes).

    The CLI prints it as a one-line note, as the server flags such an answer ``cold_start``.
    """
