"""The MELP model: ECG encoder, heads, causal text encoder, caption decoder, generation (spec §1–2)."""

from melp.models.config import DecoderConfig, ECGEncoderConfig, MELPConfig, TextEncoderConfig
from melp.models.ecg_encoder import ECGEncoder, build_ecg_encoder
from melp.models.generation import GenerationConfig
from melp.models.melp import MELP
from melp.models.tokenizer import load_tokenizer, train_wordpiece_tokenizer

__all__ = [
    "MELP",
    "DecoderConfig",
    "ECGEncoder",
    "ECGEncoderConfig",
    "GenerationConfig",
    "MELPConfig",
    "TextEncoderConfig",
    "build_ecg_encoder",
    "load_tokenizer",
    "train_wordpiece_tokenizer",
]
