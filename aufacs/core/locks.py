"""Exclusive locks on folders, so one process at a time writes a run, a cache or a study.

A lock is ``fcntl.flock`` on a small file that holds the owner's process id and command.
The operating system releases it when the process ends, however it ends (``kill -9``
included), so a lock is never left stale; the file itself may stay behind and means nothing
once no process holds it.
"""

from __future__ import annotations

import fcntl
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from aufacs.core.errors import AufacsError


@contextmanager
def exclusive_lock(lock_file: Path | str, what: str) -> Iterator[None]:
    """Hold an exclusive lock on ``lock_file`` for the block, or refuse at once.

    ``what`` names the thing locked in the refusal, e.g. ``"run folder runs/jaa"``: a second
    process gets ``AufacsError("run folder runs/jaa is in use by process 123 (aufacs train
    ...); wait for it to finish or stop it")``. Missing parent folders are made.
    """
    path = Path(lock_file)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = open(path, "a+")  # noqa: SIM115 - closed in the finally below
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            owner = handle.read().strip() or "another process"
            raise AufacsError(
                f"{what} is in use by {owner}; wait for it to finish or stop it"
            ) from None
        handle.seek(0)
        handle.truncate()
        command = " ".join(Path(sys.argv[0]).name.split() + sys.argv[1:])[:200]
        handle.write(f"process {os.getpid()} ({command})\n")
        handle.flush()
        yield
    finally:
        handle.close()
