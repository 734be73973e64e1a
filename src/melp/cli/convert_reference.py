"""``melp convert-reference``: the authors' released MELP encoder (or a reference checkpoint) → a melp model.

Example::

    huggingface-cli download fuyingw/MELP_Encoder --local-dir MELP_Encoder   # where there is network
    melp convert-reference MELP_Encoder --out models/melp-released
    melp probe --model models/melp-released --train stores/ptbxl:train --test stores/ptbxl:test --out probe.json

SRC is an HF-style directory (``config.json`` + ``model.safetensors``), a bare ``.safetensors``
(its ``config.json`` beside it if any, else the shapes decide) or a Lightning ``.ckpt`` (read with
``torch.load(weights_only=True)`` only). The output is an ECG-only melp model directory that records
the reference's lead order and scaling; every melp command feeds it correctly from any store.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

COMMAND = "convert-reference"
HELP = "Convert the authors' released MELP encoder (fuyingw/MELP_Encoder) or a reference checkpoint to a melp model."

logger = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("src", type=Path, metavar="SRC", help="HF-style directory, .safetensors or Lightning .ckpt")
    parser.add_argument("--out", type=Path, required=True, help="output melp model directory")
    parser.add_argument(
        "--dtype", choices=("float32", "bfloat16"), default="float32", help="weights' dtype (default float32)"
    )


def run(args: argparse.Namespace) -> int:
    import torch

    from melp.models import MELP

    model = MELP.from_reference(args.src, dtype=getattr(torch, args.dtype))
    model.save_pretrained(args.out)
    n = sum(p.numel() for p in model.parameters())
    logger.info(
        "wrote %s: ECG-only model, %.2f M parameters (%s), %d beat queries, leads in %s, %s scaling, %d Hz",
        args.out, n / 1e6, args.dtype, model.config.n_beat_queries, ",".join(model.config.lead_order),
        model.config.normalization, model.config.fs,
    )  # fmt: skip
    return 0
