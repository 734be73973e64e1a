"""Shared test fixtures: the real-data folder (skipped cleanly where absent) and a single-threaded torch."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path:
    """``$MELP_SHARED_DATA``, defaulting to ``../shared/data`` beside the repository."""
    return Path(os.environ.get("MELP_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real ECG records folder; tests using it skip with a reason where it is absent."""
    path = shared_data_dir()
    if not (path / "README.md").is_file():
        pytest.skip(f"real ECG data not found at {path} (set MELP_SHARED_DATA to the shared/data folder)")
    return path


@pytest.fixture(autouse=True, scope="session")
def _single_thread_torch() -> None:
    """Tests run two xdist workers on two cores; one torch thread each avoids oversubscription."""
    try:
        import torch
    except ImportError:
        return
    torch.set_num_threads(1)
