"""``melp serve``: the web page and HTTP API on a trained model (docs/serve.md).

Example::

    melp serve --model runs/demo/run            # then open http://127.0.0.1:8000
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

COMMAND = "serve"
HELP = "Web page + HTTP API: drop an ECG file, see the reading, zero-shot findings, the report and its beats."

logger = logging.getLogger("melp.serve")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model",
        required=True,
        type=Path,
        metavar="DIR",
        help="a saved MELP model, or a run directory (its best checkpoint, else final)",
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1: this machine only)")
    parser.add_argument("--port", type=int, default=8000, help="TCP port (default 8000)")
    parser.add_argument("--max-upload-mb", type=float, default=20.0, help="largest upload in MiB (default 20)")
    parser.add_argument(
        "--backend",
        choices=("auto", "torch", "onnx"),
        default="auto",
        help="ECG tower runtime; auto: ONNX Runtime when an exported tower exists and is faster (default auto)",
    )
    parser.add_argument("--onnx", type=Path, metavar="FILE", help="exported tower (default DIR/ecg_tower.onnx)")
    parser.add_argument("--task", default="cpsc2018", help="default zero-shot label set (default cpsc2018)")
    parser.add_argument(
        "--max-report-tokens",
        type=int,
        help="longest generated report in tokens (default: the model's text.max_length, at most 64)",
    )
    parser.add_argument("--beams", type=int, default=3, help="beams of the report's beam search (default 3)")
    parser.add_argument(
        "--min-leads", type=int, default=8, help="refuse files with fewer standard leads, derived included (default 8)"
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch / ONNX Runtime threads per model call (default 1, see docs/serve.md)",
    )


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from melp.serve import PredictionService, ServeConfig, create_app

    try:
        config = ServeConfig(
            model_dir=args.model,
            host=args.host,
            port=args.port,
            max_upload_mb=args.max_upload_mb,
            backend=args.backend,
            onnx_path=args.onnx,
            task=args.task,
            threads=args.threads,
            min_leads=args.min_leads,
            max_report_tokens=args.max_report_tokens,
            num_beams=args.beams,
        )
        service = PredictionService.load(config)
        service.warm_up()
    except (FileNotFoundError, ValueError, KeyError) as exc:
        logger.error("%s", exc)
        return 2
    if not config.is_loopback:
        logger.warning(
            "listening on %s: anyone who can reach this machine can upload ECGs; there is no authentication", args.host
        )
    shown = "127.0.0.1" if config.host in ("0.0.0.0", "::") else config.host
    logger.info("open http://%s:%d in a browser (API docs at /docs); Ctrl-C stops", shown, config.port)
    uvicorn.run(create_app(service), host=config.host, port=config.port, log_level="warning")
    return 0
