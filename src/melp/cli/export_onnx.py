"""``melp export-onnx``: the ECG tower of a trained model as an ONNX file, checked against PyTorch.

Example::

    melp export-onnx --model runs/demo/run/final     # writes runs/demo/run/final/ecg_tower.onnx
    melp serve --model runs/demo/run/final           # uses it where ONNX Runtime is faster
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

COMMAND = "export-onnx"
HELP = "Export the ECG tower (encoder + beat/caption poolers) to ONNX and check it against PyTorch."

logger = logging.getLogger("melp.serve")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model",
        required=True,
        type=Path,
        metavar="DIR",
        help="a saved MELP model, or a run directory (its best checkpoint, else final)",
    )
    parser.add_argument("--out", type=Path, metavar="FILE", help="ONNX file to write (default DIR/ecg_tower.onnx)")
    parser.add_argument(
        "--exporter",
        choices=("torchscript", "dynamo"),
        default="torchscript",
        help="torch.onnx exporter: torchscript (fast) or dynamo (torch.export based, slower) (default torchscript)",
    )
    parser.add_argument(
        "--tolerance", type=float, default=1e-4, help="largest allowed |ONNX - PyTorch| on a test batch (default 1e-4)"
    )


def run(args: argparse.Namespace) -> int:
    from melp.models import MELP
    from melp.serve.config import ONNX_FILE
    from melp.serve.onnx_tower import export_ecg_tower, parity, weights_digest
    from melp.train.checkpoint import resolve_model_dir

    try:
        model_dir = resolve_model_dir(args.model)
    except FileNotFoundError as exc:
        logger.error("%s", exc)
        return 2
    out = args.out if args.out is not None else model_dir / ONNX_FILE
    try:
        model = MELP.from_pretrained(model_dir).eval()
        export_ecg_tower(model, out, weights_sha256=weights_digest(model_dir), exporter=args.exporter)
        worst = parity(model, out)
    except (OSError, ValueError, RuntimeError) as exc:
        logger.error("export failed: %s", exc)
        return 2
    if worst > args.tolerance:
        logger.error("ONNX and PyTorch differ by %.3g (> %.3g); %s is not usable", worst, args.tolerance, out)
        return 1
    logger.info("wrote %s; largest |ONNX - PyTorch| on a test batch: %.2e", out, worst)
    return 0
