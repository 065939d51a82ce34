"""The one exception type that aufacs raises for bad input.

Anything a user can get wrong (a missing folder, a corrupt file, an unknown model name, a bad
option) raises :class:`AufacsError` with one sentence that names the file or parameter and what
was expected. The command line prints that sentence without a stack trace;
:func:`reading_file` turns any failure to read one file into such a sentence.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path


class AufacsError(Exception):
    """Bad input, explained in one sentence fit to show to a user."""


def error_gist(error: BaseException) -> str:
    """The gist of ``error`` for a sentence: the first line of its message, else its type."""
    lines = str(error).strip().splitlines()
    return lines[0].strip() if lines else type(error).__name__


@contextlib.contextmanager
def reading_file(
    path: Path | str, what: str, error_type: type[AufacsError] = AufacsError
) -> Iterator[None]:
    """Turn any failure inside the block into one sentence: ``error_type`` saying that
    ``path`` could not be read as ``what`` (``"a MAT-file"``) and the error's gist.

    Wraps the reading of one file, so that a damaged file, whatever library raises what,
    becomes a problem of that file. :class:`AufacsError` (already a sentence) and
    ``MemoryError`` pass through, as do ``KeyboardInterrupt`` and ``SystemExit``.
    """
    try:
        yield
    except (AufacsError, MemoryError):
        raise
    except Exception as error:  # noqa: BLE001 - any failure to read the file is the file's
        raise error_type(
            f"{path} could not be read as {what} ({error_gist(error)}); "
            "the file is damaged or not of that kind"
        ) from None
