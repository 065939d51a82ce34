"""Shared test fixtures (the real reference files in ../shared/fixtures, when present) and the
order in which the test files run."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_FIXTURES = REPO_ROOT.parent / "shared" / "fixtures"
#: The smoke study as docs/workbook.md shows it; tests/test_notebooks.py runs it.
SMOKE_STUDY = "aufacs study --size smoke --name smoke"


@pytest.fixture(scope="session")
def shared_fixtures() -> Path:
    """``../shared/fixtures`` (real BP4D / DISFA samples); the test is skipped without it."""
    if not SHARED_FIXTURES.is_dir():
        pytest.skip(f"real reference fixtures not found at {SHARED_FIXTURES}")
    return SHARED_FIXTURES


@pytest.fixture(scope="session", autouse=True)
def one_torch_thread():
    """Every test runs torch on one thread: the tensors are tiny, and on a 2-core machine a
    second thread costs more in contention than it gains. ``OMP_NUM_THREADS=1`` carries that
    to what a test starts without naming its threads: ``train`` and ``run_study`` in this
    process, and the commands and notebook kernels it runs
    (:func:`aufacs.engine.device.default_threads`)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("OMP_NUM_THREADS", "1")
        yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session", autouse=True)
def no_weight_downloads():
    """The suite never reaches the network: ImageNet weights come from torchvision's cache
    only (``AUFACS_OFFLINE=1``, inherited by the commands and notebooks tests start)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AUFACS_OFFLINE", "1")
        yield


#: Test files that take minutes of CPU, longest first (measured with ``pytest --durations=0``).
#: They are collected before the others, so that ``make test``'s workers start on them and
#: share the many short files at the end, instead of one worker finishing a long file alone.
LONGEST_FIRST = (
    "test_rehearsal.py",
    "test_documented_commands.py",
    "test_notebooks.py",
    "test_benchmarks.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Put the items of :data:`LONGEST_FIRST`'s files first, in that order; keep the rest in
    collection order."""

    def rank(item: pytest.Item) -> int:
        name = item.path.name
        return LONGEST_FIRST.index(name) if name in LONGEST_FIRST else len(LONGEST_FIRST)

    items.sort(key=rank)
