"""Shared test fixtures: the real-data folder (skipped cleanly where absent), a single-threaded torch and a micro model."""

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


@pytest.fixture(scope="module")
def micro_model(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A small synthetic store at 100 Hz and an (untrained) micro MELP with a tokenizer fitted to its reports."""
    from melp.cli.main import main
    from melp.data import open_store
    from tests.micro import make_micro_model

    out = tmp_path_factory.mktemp("micro")
    assert main(["synth", "--n", "40", "--out", str(out / "store"), "--seed", "3", "--fs", "100"]) == 0
    model = make_micro_model(out, texts=list(open_store(out / "store").meta["report"]), seed=123)
    return out / "store", model
