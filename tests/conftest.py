"""Shared test fixtures: the real reference files in ../shared/fixtures, when present."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_FIXTURES = REPO_ROOT.parent / "shared" / "fixtures"


@pytest.fixture(scope="session")
def shared_fixtures() -> Path:
    """``../shared/fixtures`` (real BP4D / DISFA samples); the test is skipped without it."""
    if not SHARED_FIXTURES.is_dir():
        pytest.skip(f"real reference fixtures not found at {SHARED_FIXTURES}")
    return SHARED_FIXTURES
