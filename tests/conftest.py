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
    from dataclasses import replace

    import torch

    from melp.cli.main import main
    from melp.data import open_store
    from melp.eval.prompts import load_prompt_bank
    from melp.models import MELP, MELPConfig, train_wordpiece_tokenizer
    from melp.models.tokenizer import build_bert_config, build_text_model_dir

    out = tmp_path_factory.mktemp("micro")
    assert main(["synth", "--n", "40", "--out", str(out / "store"), "--seed", "3", "--fs", "100"]) == 0
    store = open_store(out / "store")
    texts = list(store.meta["report"]) + [p for v in load_prompt_bank().values() for p in v]
    tok = train_wordpiece_tokenizer(texts, vocab_size=300)
    bert = build_bert_config(
        vocab_size=len(tok),
        hidden_size=32,
        num_layers=2,
        num_heads=2,
        intermediate_size=64,
        max_position_embeddings=130,
    )
    text_dir = build_text_model_dir(out / "text", tokenizer=tok, config=bert)
    config = replace(MELPConfig.preset("micro"), fs=100)
    config = replace(config, text=replace(config.text, n_frozen_layers=1))
    torch.manual_seed(123)
    model = MELP.from_text_model(config=config, text_model_dir=text_dir)
    model.save_pretrained(out / "model", tokenizer=model.tokenizer)
    return out / "store", out / "model"
