"""One builder of the untrained micro MELP that the inference, serve, CLI and evaluation tests share."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

#: Reports the tokenizer sees besides the prompt bank when a test has no store of its own.
DEFAULT_TEXTS = ("sinus rhythm. normal ecg.", "atrial fibrillation. left bundle branch block.") * 4


def make_micro_model(
    out: Path, *, texts: Sequence[str] = DEFAULT_TEXTS, seed: int = 0, text_max_length: int | None = None
) -> Path:
    """An untrained micro MELP at 100 Hz (10 s windows) around a tiny random BERT; its directory ``out/model``.

    Args:
        out: working directory (the text model goes to ``out/text``).
        texts: reports the WordPiece tokenizer is fitted on, together with every prompt of the bank.
        seed: torch seed of the model's initialisation.
        text_max_length: ``model.text.max_length`` if not the preset's.
    """
    import torch

    from melp.eval.prompts import load_prompt_bank
    from melp.models import MELP, MELPConfig, train_wordpiece_tokenizer
    from melp.models.tokenizer import build_bert_config, build_text_model_dir

    tok = train_wordpiece_tokenizer([*texts, *(p for v in load_prompt_bank().values() for p in v)], vocab_size=300)
    bert = build_bert_config(
        vocab_size=len(tok), hidden_size=32, num_layers=2, num_heads=2, intermediate_size=64,
        max_position_embeddings=130,
    )  # fmt: skip
    text_dir = build_text_model_dir(out / "text", tokenizer=tok, config=bert)
    config = replace(MELPConfig.preset("micro"), fs=100)
    text = replace(config.text, n_frozen_layers=1)
    if text_max_length is not None:
        text = replace(text, max_length=text_max_length)
    torch.manual_seed(seed)
    model = MELP.from_text_model(config=replace(config, text=text), text_model_dir=text_dir)
    model.save_pretrained(out / "model", tokenizer=model.tokenizer)
    return out / "model"
