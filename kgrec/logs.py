"""What the libraries kgrec runs print while it works: their known noise silenced always, all but errors when quiet."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["library_output", "bars_wanted", "stage_line"]

# Loggers that speak at WARNING about things that are not the user's concern on a CPU machine.
_NOISY = ("torch_max_mem",)  # "tensors on device_types={'cpu'} ... not considered safe": PyKEEN's memory tuner
_QUIET = ("pykeen", "transformers", "torch_geometric", "optuna", "mlflow", *_NOISY)


def bars_wanted(quiet: bool) -> bool:
    """Progress bars only on a terminal: a redirected log got tens of kilobytes of carriage returns from them."""
    import sys

    return not quiet and sys.stderr.isatty()


def stage_line(quiet: bool, text: str) -> None:
    """One line per finished stage where there are no bars (stderr redirected to a log), unless quiet."""
    import sys

    if not quiet and not sys.stderr.isatty():
        print(text, file=sys.stderr, flush=True)


@contextmanager
def library_output(quiet: bool = False) -> Iterator[None]:
    """Silence PyKEEN's, PyTorch's and transformers' known noise; with ``quiet``, every library warning and bar too.

    Errors still raise. Logger levels, warning filters and transformers' progress-bar switch are restored after.
    """
    names = _QUIET if quiet else _NOISY
    levels = {name: logging.getLogger(name).level for name in names}
    bars = None
    with warnings.catch_warnings():
        # PyKEEN's data loaders ask for pinned memory, which torch cannot give without an accelerator.
        warnings.filterwarnings("ignore", message=".*'pin_memory' argument is set as true but no accelerator")
        if quiet:
            warnings.simplefilter("ignore")
        if not bars_wanted(quiet):
            from transformers.utils import logging as transformers_logging

            bars = transformers_logging.is_progress_bar_enabled()
            transformers_logging.disable_progress_bar()  # "Loading weights" when an encoder loads
        for name in names:
            logging.getLogger(name).setLevel(logging.ERROR)
        try:
            yield
        finally:
            for name, level in levels.items():
                logging.getLogger(name).setLevel(level)
            if bars:
                from transformers.utils import logging as transformers_logging

                transformers_logging.enable_progress_bar()
