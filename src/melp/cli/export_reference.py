"""``melp export-reference``: a melp model's ECG tower in the reference's naming (loads in the authors' code).

Example::

    melp export-reference runs/melp/final --out exported/MELP_Encoder

Writes ``config.json`` (``MELPEncoderConfig`` names, plus the resolved wav2vec2 fields and the
lead order) and ``model.safetensors`` with ``ecg_encoder.`` + ``ECGFMModel.state_dict()`` keys,
all 180 of the released layout for the paper's size; the pretraining-only tensors are written
freshly initialised. ``melp convert-reference`` reads it back to the identical model.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

COMMAND = "export-reference"
HELP = "Write a melp model's ECG tower in the reference's naming (HF-style config.json + model.safetensors)."

logger = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", type=Path, metavar="MODEL_DIR", help="melp model directory (from_pretrained)")
    parser.add_argument("--out", type=Path, required=True, help="output directory")


def run(args: argparse.Namespace) -> int:
    from melp.models import MELP
    from melp.models.reference import export_reference

    out = export_reference(MELP.from_pretrained(args.model), args.out)
    logger.info("wrote %s (config.json + model.safetensors, reference naming)", out)
    return 0
