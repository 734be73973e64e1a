"""``melp prepare``: a raw public ECG dataset → a memory-mapped store (issue 2, item 3; design.md "The store").

Examples::

    melp prepare ptbxl --root data/ptb-xl-1.0.3 --out stores/ptbxl --workers 4
    melp prepare mimic-iv-ecg --root data/mimic-iv-ecg-1.0 --out stores/mimic --fs 100 --workers 16
    melp prepare files --root exports/ --out stores/hospital --report-from statements --workers 2

``files`` takes a folder of a user's own ECG files in any mix of formats (GE MUSE, Philips, HL7
aECG, DICOM, EDF, WFDB, CSV...; see :mod:`melp.io`); every file that cannot be stored is reported
on one line (file, format detected, what is wrong) and the run goes on with the others.

Re-running the same command after an interruption resumes at the first unwritten shard.
"""

from __future__ import annotations

import argparse
import collections
import logging
import re
from pathlib import Path

COMMAND = "prepare"
HELP = "Turn a raw public ECG dataset (as downloaded) into a memory-mapped melp store."
DATASETS = ("mimic-iv-ecg", "ptbxl", "cpsc2018", "cinc2021", "code15", "files")

logger = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dataset", choices=DATASETS, metavar="DATASET", help=f"one of: {', '.join(DATASETS)}")
    parser.add_argument("--root", type=Path, required=True, help="the dataset's folder, as downloaded")
    parser.add_argument("--out", type=Path, required=True, help="store folder to write (an unfinished one is resumed)")
    parser.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    parser.add_argument("--fs", type=int, default=500, help="target sampling rate in Hz (default 500)")
    parser.add_argument("--seconds", type=float, default=10.0, help="target length in seconds (default 10)")
    parser.add_argument(
        "--split-csv", type=Path, help="MELP-style split file: take its records and labels (ptbxl, cpsc2018, cinc2021)"
    )
    parser.add_argument(
        "--dtype", choices=("float16", "float32"), default="float16", help="stored sample type (default float16)"
    )
    parser.add_argument(
        "--shard-size", type=int, default=4096, help="records per shard (memory and resume granularity)"
    )
    parser.add_argument("--limit", type=int, help="prepare only the first N records (for a trial run)")
    parser.add_argument(
        "--crop", choices=("start", "centre"), default="start", help="part of a longer record kept (default start)"
    )
    parser.add_argument(
        "--max-pad-seconds",
        type=float,
        default=1.0,
        help="longest zero-padding of a short record; shorter ones are skipped (default 1)",
    )
    parser.add_argument(
        "--unitless",
        choices=("keep", "skip"),
        default="keep",
        help="records without a voltage unit (NU): keep values or skip (default keep)",
    )
    parser.add_argument(
        "--max-gap-seconds", type=float, default=0.1, help="longest NaN/Inf gap that is interpolated (default 0.1)"
    )
    parser.add_argument(
        "--max-nan-fraction",
        type=float,
        default=0.01,
        help="largest share of NaN/Inf samples interpolated (default 0.01)",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    files = parser.add_argument_group("files (a folder of a user's own ECG files)")
    files.add_argument(
        "--report-from",
        choices=("none", "statements"),
        default="none",
        help="files: put the cart's interpretation statements in the report column (default none)",
    )
    files.add_argument("--input-fs", type=float, help="files: sampling rate of files that state none (CSV, .npy)")
    files.add_argument("--input-leads", help="files: lead names, in column order, of files without names (I,II,...)")
    files.add_argument("--input-units", help="files: unit of files that state none (default mV)")


def _summarise(manifest: dict) -> str:
    """One line per kind of skip reason (numbers in a reason, but not lead names such as V2, are replaced by N to group them)."""
    reasons = collections.Counter(
        re.sub(r"(?<![A-Za-z])\d+(\.\d+)?", "N", reason) for reason in manifest["skipped"].values()
    )
    return "\n".join(f"  {count:>8}  {reason}" for reason, count in reasons.most_common(10))


def run(args: argparse.Namespace) -> int:
    from melp.data.readers import get_reader
    from melp.data.signal import SignalPolicy
    from melp.data.store import build_store

    if not args.root.is_dir():
        raise SystemExit(f"--root {args.root} is not a folder")
    if args.workers < 1 or args.shard_size < 1:
        raise SystemExit("--workers and --shard-size must be at least 1")
    try:
        policy = SignalPolicy(
            fs=args.fs,
            seconds=args.seconds,
            crop=args.crop,
            max_pad_seconds=args.max_pad_seconds,
            unitless=args.unitless,
            max_gap_seconds=args.max_gap_seconds,
            max_nan_fraction=args.max_nan_fraction,
        )
    except ValueError as exc:
        raise SystemExit(f"melp prepare: {exc}") from exc
    reader = get_reader(args.dataset)
    logger.info("listing %s records under %s", args.dataset, args.root)
    try:
        if args.dataset == "files":
            from melp.data.readers import files

            hints = {"fs": args.input_fs, "leads": args.input_leads, "units": args.input_units}
            items = files.list_items(args.root, args.split_csv, report_from=args.report_from, hints=hints)
        else:
            items = reader.list_items(args.root, args.split_csv)
    except (FileNotFoundError, ValueError, KeyError) as exc:
        raise SystemExit(f"melp prepare {args.dataset}: {exc}") from exc
    if not items:
        raise SystemExit(f"melp prepare {args.dataset}: no records found under {args.root}")
    if args.limit is not None:
        items = items[: args.limit]
    options = {
        "dataset": args.dataset,
        "root": str(args.root.resolve()),
        "split_csv": str(args.split_csv.resolve()) if args.split_csv else None,
        "limit": args.limit,
        **(
            {"report_from": args.report_from, "input_fs": args.input_fs, "input_leads": args.input_leads}
            if args.dataset == "files"
            else {}
        ),
        "policy": {k: getattr(policy, k) for k in policy.__dataclass_fields__},
    }
    try:
        store = build_store(
            args.out,
            items,
            reader.processor(policy),
            fs=args.fs,
            seconds=args.seconds,
            source=reader.source,
            options=options,
            workers=args.workers,
            shard_size=args.shard_size,
            dtype=args.dtype,
            progress=not args.no_progress,
        )
    except (FileExistsError, ValueError) as exc:
        raise SystemExit(f"melp prepare {args.dataset}: {exc}") from exc
    m = store.manifest
    logger.info(
        "%s: read %d, kept %d, skipped %d records → %s",
        args.dataset,
        m["n_read"],
        m["n_kept"],
        m["n_skipped"],
        args.out,
    )
    if m["n_skipped"] and args.dataset == "files":
        for record_id, reason in m["skipped"].items():
            logger.warning("skipped %s: %s", record_id, reason)
    elif m["n_skipped"]:
        logger.info("skip reasons (all in %s):\n%s", args.out / "manifest.json", _summarise(m))
    if m["n_kept"] == 0:
        raise SystemExit(f"no record of {args.root} could be stored ({m['n_skipped']} skipped; reasons above)")
    return 0
