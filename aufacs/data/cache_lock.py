"""The lock that lets one process at a time prepare or build an aligned-crop cache folder.

The lock file sits beside the cache folder, ``<parent>/.<cache name>.lock`` (the cache folder
itself is replaced whole when a build finishes, so it cannot hold its own lock). It is an
:func:`aufacs.core.locks.exclusive_lock`: released when its process ends, however it ends.
Within one thread the lock is re-entrant, so :func:`aufacs.data.prepare.prepare` can hold it
for the whole step while :func:`aufacs.data.cache_build.build_cache` takes it again inside.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from aufacs.core.locks import exclusive_lock

#: (cache folder, thread) pairs whose lock this process holds.
_HELD: set[tuple[Path, int]] = set()


def lock_file(cache_dir: Path | str) -> Path:
    """``<parent>/.<name>.lock`` of cache folder ``cache_dir`` (resolved)."""
    cache_dir = Path(cache_dir).resolve()
    return cache_dir.with_name(f".{cache_dir.name}.lock")


@contextmanager
def cache_lock(cache_dir: Path | str) -> Iterator[None]:
    """Hold the lock of cache folder ``cache_dir`` for the block; a second holder (another
    process, or another thread) gets :class:`~aufacs.core.errors.AufacsError` naming the
    process that holds it. The parent folder is made if missing."""
    cache_dir = Path(cache_dir).resolve()
    path = lock_file(cache_dir)
    key = (path, threading.get_ident())
    if key in _HELD:
        yield
        return
    with exclusive_lock(path, f"cache folder {cache_dir}"):
        _HELD.add(key)
        try:
            yield
        finally:
            _HELD.discard(key)
