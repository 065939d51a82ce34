"""Status lines for the person at the terminal or in the notebook, on one channel."""

from __future__ import annotations

import sys

from tqdm.auto import tqdm


def say(message: str) -> None:
    """Print one status line to standard output; it appears above a running progress bar
    instead of breaking it."""
    tqdm.write(message)
    sys.stdout.flush()
