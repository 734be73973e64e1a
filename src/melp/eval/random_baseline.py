"""Models for evaluation: a pretrained MELP directory, or the seeded random-encoder baseline every table shows.

``--model random --size SIZE`` builds MELP's ECG side (encoder, beat pooler, projection) randomly
initialised from ``seed``. Zero-shot, retrieval and generation also need a text side: with
``text_from`` (a pretrained MELP directory) the baseline takes that model's text encoder, caption
decoder and tokenizer and keeps only the ECG side random, which is exactly what the baseline should
measure (how much the pretrained *ECG* encoder adds). Without it the text side is a throw-away
one-layer stub and only ``encode_ecg`` is meaningful (linear probing, embedding benchmarks).
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from melp.models import MELP, MELPConfig
from melp.models.config import DecoderConfig, ECGEncoderConfig, ECGSize
from melp.models.melp import WEIGHTS_FILE
from melp.models.tokenizer import build_bert_config
from melp.train.checkpoint import resolve_model_dir

logger = logging.getLogger(__name__)

RANDOM = "random"
_STUB_VOCAB = 8
_TEXT_PREFIXES = ("text.", "decoder.")


@dataclass
class EvalModel:
    """A model ready for evaluation.

    Attributes:
        model: the MELP module, in eval mode.
        name: how results name it (the directory name, or ``random-<size>``).
        cache_id: identifies the ECG weights for the embedding cache.
        has_text: ``encode_text``, the tokenizer and the decoder are real (not the stub).
        fs: sampling rate the model expects; ``None`` takes the store's.
    """

    model: MELP
    name: str
    cache_id: str
    has_text: bool
    fs: int | None

    def require_text(self, what: str) -> None:
        """Raise a clear error when ``what`` needs a text side this model lacks."""
        if not self.model.has_text:
            raise SystemExit(
                f"{what} needs a text tower; {self.name} is an ECG-only model (e.g. converted from the released "
                "encoder): use probe/finetune/embeddings, or attach a text tower by pretraining with --init-ecg"
            )
        if not self.has_text or self.model.tokenizer is None:
            raise SystemExit(
                f"{what} needs a text encoder and tokenizer; a random model has one only with "
                "--text-from MODEL_DIR (the baseline then pairs a random ECG encoder with that model's text side)"
            )


def _stub_text_config(config: MELPConfig) -> MELPConfig:
    bert = build_bert_config(
        vocab_size=_STUB_VOCAB, hidden_size=16, num_layers=1, num_heads=1, intermediate_size=16,
        max_position_embeddings=config.text.max_length + 2,
    )  # fmt: skip
    bert.is_decoder = True
    text = replace(
        config.text, bert_config=bert.to_dict(), n_frozen_layers=0, pad_token_id=0,
        bos_token_id=1, eos_token_id=2, cls_token_id=3, sentence_delimiter_id=4, special_token_ids=[0, 1, 2, 3],
    )  # fmt: skip
    return replace(config, text=text, decoder=DecoderConfig(layers=1, width=16, heads=1))


def random_model(size: ECGSize, *, seed: int, text_from: MELP | None = None) -> MELP:
    """A MELP whose ECG side is randomly initialised from ``seed`` (text side from ``text_from`` if given)."""
    if text_from is not None:
        config = replace(text_from.config, ecg=ECGEncoderConfig(size=size))
    else:
        config = _stub_text_config(MELPConfig.preset(size))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = MELP(config=config, tokenizer=None if text_from is None else text_from.tokenizer)
    if text_from is not None and text_from.has_text:
        text_state = {k: v for k, v in text_from.state_dict().items() if k.startswith(_TEXT_PREFIXES)}
        missing = model.load_state_dict(text_state, strict=False)
        if missing.unexpected_keys:
            raise ValueError(f"text weights do not fit the random model: {missing.unexpected_keys[:3]}")
    return model.eval()


def _weights_id(directory: Path) -> str:
    weights = (directory / WEIGHTS_FILE).resolve()
    stat = weights.stat()
    return hashlib.sha256(f"{weights}:{stat.st_size}:{stat.st_mtime_ns}".encode()).hexdigest()[:16]


def model_name(directory: Path) -> str:
    """How results name a model directory: its name, or ``RUN/final`` / ``RUN/best`` for a run's checkpoints."""
    resolved = directory.resolve()
    if resolved.name == "best" and resolved.parent.name == "checkpoints":
        return f"{resolved.parent.parent.name}/best"
    return f"{resolved.parent.name}/{resolved.name}" if resolved.name in ("final", "best") else resolved.name


def load_eval_model(
    spec: str, *, size: ECGSize | None = None, seed: int = 0, text_from: str | Path | None = None
) -> EvalModel:
    """``spec`` is a model or run directory (see :func:`resolve_model_dir`) or ``"random"`` (then ``size`` is required)."""
    if spec != RANDOM:
        directory = resolve_model_dir(spec)
        model = MELP.from_pretrained(directory)
        name, cache_id = model_name(directory), f"melp-{_weights_id(directory)}"
        return EvalModel(model, name, cache_id, model.has_text, model.config.fs)
    if size is None:
        raise SystemExit("--model random needs --size (micro, tiny, small, base or large)")
    if text_from is not None:
        text_from = resolve_model_dir(text_from)
    donor = None if text_from is None else MELP.from_pretrained(text_from)
    model = random_model(size, seed=seed, text_from=donor)
    text_id = "" if text_from is None else f"-text-{_weights_id(Path(text_from))}"
    fs = None if donor is None else donor.config.fs
    logger.info(
        "random-encoder baseline: size %s, seed %d%s", size, seed, f", text side from {text_from}" if donor else ""
    )
    has_text = donor is not None and donor.has_text
    return EvalModel(model, f"random-{size}", f"random-{size}-seed{seed}{text_id}", has_text, fs)
