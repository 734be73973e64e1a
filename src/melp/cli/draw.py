"""``melp draw``: records from one or more stores side by side on ECG paper (e.g. synthetic beside real)."""

from __future__ import annotations

import argparse
import logging
import textwrap
from collections.abc import Hashable, Mapping
from typing import Any

COMMAND = "draw"
HELP = "Draw K random records of each store on ECG paper, stores side by side (e.g. synthetic beside real)."

logger = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--store", action="append", required=True, help="store directory (repeat for columns)")
    parser.add_argument("--n", type=int, default=3, help="records per store (rows)")
    parser.add_argument("--out", required=True, help="output image (.png, .pdf, .svg)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random choice of records")
    parser.add_argument("--layout", choices=("4x3", "12x1"), default="4x3", help="paper layout")


def _title(store_name: str, row: Mapping[Hashable, Any]) -> str:
    labels = row.get("labels")
    codes = " ".join(map(str, labels)) if isinstance(labels, list | tuple) else ""
    head = f"{store_name} · {row['id']} · {codes}"
    report = str(row.get("report") or "")
    return head + ("\n" + textwrap.shorten(report, width=110, placeholder=" …") if report else "")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    import numpy as np
    from matplotlib.figure import Figure

    from melp.data import open_store
    from melp.viz import plot_ecg

    if args.n < 1:
        raise SystemExit(f"melp draw: --n must be at least 1, got {args.n}")
    stores = [open_store(path) for path in args.store]
    rows_mm = 132.0 if args.layout == "4x3" else 276.0
    fig = Figure(figsize=(10.6 * len(stores), rows_mm / 25.4 * args.n), dpi=110, layout="constrained")
    axes = fig.subplots(args.n, len(stores), squeeze=False)
    rng = np.random.default_rng(args.seed)
    for col, store in enumerate(stores):
        if len(store) == 0:
            raise SystemExit(f"melp draw: store {store.path} is empty")
        picks = np.sort(rng.choice(len(store), size=min(args.n, len(store)), replace=False))
        for row, index in enumerate(picks):
            signal = np.asarray(store.signals[int(index)], dtype=np.float32)
            meta = store.meta.iloc[int(index)].to_dict()
            plot_ecg(signal, store.fs, ax=axes[row, col], layout=args.layout, lead_names=store.leads,
                     title=_title(Path(store.path).name, meta))  # fmt: skip
        for row in range(len(picks), args.n):
            axes[row, col].set_axis_off()
    fig.savefig(args.out)
    logger.info("drew %d store(s) × %d record(s) into %s", len(stores), args.n, args.out)
    return 0
