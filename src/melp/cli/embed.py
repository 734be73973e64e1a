"""``melp embed``: embeddings of ECG files or of a store, for a user's own downstream models (issue 13, item 3).

Examples::

    melp embed exports/ --model runs/melp/final --out emb.npy            # every file in the folder
    melp embed stores/hospital --model runs/melp/final --out emb.npy --kind probe
    melp embed strip.csv --fs 250 --model runs/melp/final --leads I --out emb.npy

Writes ``emb.npy`` ``(N, E)`` float32 (``--kind latent``: the L2-normalised zero-shot embedding,
``ecg_latent``; ``--kind probe``: the linear-probe embedding, ``probe_emb``), ``emb.ids.txt``
(one id per row: the file path, or the store's record id) and ``emb.json`` (the model's identity,
the kind, the windows' aggregation, the files that could not be used). Records longer than the
model's window are embedded window by window and averaged (:mod:`melp.inference`).
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import numpy as np

from melp.cli.predict import add_input_arguments, build_predictor, expand_files, read_hints

COMMAND = "embed"
HELP = "Embed ECG files or a store with a model: (N, E) .npy plus an ids file."

logger = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("inputs", nargs="+", type=Path, metavar="FILE|STORE", help="ECG files, folders or one store")
    add_input_arguments(parser)
    parser.add_argument("--out", type=Path, required=True, help="embeddings file (.npy); ids go to <out>.ids.txt")
    parser.add_argument(
        "--kind", choices=("latent", "probe"), default="latent", help="ecg_latent (default) or probe_emb"
    )


def _store_records(path: Path):  # type: ignore[no-untyped-def]
    """``(id, ECGRecord)`` for every record of a store (all 12 leads present, the store's rate)."""
    from melp.data import open_store
    from melp.io import ECGRecord

    store = open_store(path)
    ids = store.meta["id"].astype(str).tolist()
    for i, record_id in enumerate(ids):
        signal = np.asarray(store.signals[i], dtype=np.float32)
        yield (
            record_id,
            ECGRecord(
                path=f"{path}#{record_id}",
                format="store",
                signal=signal,
                fs=float(store.fs),
                leads_present=np.ones(12, bool),
            ),
        )


def run(args: argparse.Namespace) -> int:
    from melp.inference import AGGREGATION, InferenceError
    from melp.io import ECGReadError, read_ecg

    if args.out.suffix != ".npy":
        raise ValueError(f"--out must end in .npy, got {args.out}")
    stores = [p for p in args.inputs if (p / "manifest.json").is_file()]
    if stores and len(args.inputs) > 1:
        raise ValueError("give one store, or files and folders (not both)")
    predictor = build_predictor(args, generate=False)
    key = "ecg_latent" if args.kind == "latent" else "probe_emb"
    ids: list[str] = []
    rows: list[np.ndarray] = []
    failed: dict[str, str] = {}
    source = _store_records(stores[0]) if stores else ((str(p), p) for p in expand_files(args.inputs))
    for record_id, item in source:
        try:
            record = item if not isinstance(item, Path) else read_ecg(item, **read_hints(args))
        except ECGReadError as exc:
            logger.warning("skipped %s", exc)
            failed[record_id] = str(exc)
            continue
        try:
            emb = predictor.embed(record, leads=args.leads)
        except InferenceError as exc:
            logger.warning("skipped %s: %s: %s", record_id, record.format, exc)
            failed[record_id] = str(exc)
            continue
        ids.append(record_id)
        rows.append(getattr(emb, key))
    if not rows:
        raise SystemExit(f"no input could be embedded ({len(failed)} failed; reasons above)")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.save(args.out, np.stack(rows).astype(np.float32))
    args.out.with_suffix(".ids.txt").write_text("".join(f"{i}\n" for i in ids), encoding="utf-8")
    meta = {
        "model": predictor.model_info(),
        "kind": key,
        "n": len(ids),
        "leads": args.leads,
        "aggregation": AGGREGATION,
        "failed": failed,
    }
    args.out.with_suffix(".json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    logger.info("wrote %d embeddings %s to %s (ids in %s)", len(ids), (len(ids), rows[0].shape[0]), args.out,
                args.out.with_suffix(".ids.txt"))  # fmt: skip
    return 0
