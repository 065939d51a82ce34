"""The one exception type that aufacs raises for bad input.

Anything a user can get wrong (a missing folder, a corrupt file, an unknown model name, a bad
option) raises :class:`AufacsError` with one sentence that names the file or parameter and what
was expected. The command line prints that sentence without a stack trace.
"""

from __future__ import annotations


class AufacsError(Exception):
    """Bad input, explained in one sentence fit to show to a user."""
