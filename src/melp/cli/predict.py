"""``melp predict``: a user's own ECG files in, findings out (issue 13, item 3; :mod:`melp.inference`).

Examples::

    melp predict exports/*.xml --model runs/melp/final
    melp predict strip.csv --fs 250 --model runs/melp/final --labels "atrial fibrillation, normal ecg"
    melp predict ecg.dcm --model runs/melp/final --leads I,II,V1 --figure --out results/ecg.json

Per file: the zero-shot finding scores (the ``--task`` label set, default CPSC 2018's nine
classes, or free-text ``--labels``), the generated report, the readings (format, rate, leads
found/missing, duration, problems) and, with ``--figure``, a PNG of the ECG on paper with the beat
queries' attention. A table goes to the terminal; ``--out x.json`` writes every result in full,
``--out x.csv`` one row per file. A file that cannot be read gets one line (file, format, what is
wrong) and the others go on; the exit status is 1 only when no file could be used.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import sys
from pathlib import Path
from typing import Any

COMMAND = "predict"
HELP = "Run a model on ECG files (MUSE, Philips, aECG, DICOM, EDF, WFDB, CSV...): findings, report, figure."

logger = logging.getLogger(__name__)


def add_input_arguments(parser: argparse.ArgumentParser) -> None:
    """Options shared with ``melp embed``: the files, how to read them, the model and the windows."""
    parser.add_argument("--model", type=Path, required=True, help="a saved MELP model directory (RUN/final)")
    parser.add_argument("--fs", type=float, help="sampling rate of files that state none (CSV, .npy)")
    parser.add_argument("--lead-names", help="lead names, in column order, of files without names (e.g. I,II,V1)")
    parser.add_argument("--units", help="unit of files that state none (default mV)")
    parser.add_argument("--index", type=int, help="exam of a CODE-15 HDF5 file")
    parser.add_argument(
        "--leads", help="evaluate on this lead subset only (e.g. I or I,II,V1); the others are masked as in training"
    )
    parser.add_argument(
        "--stride-seconds", type=float, help="distance between windows of long records (default: the window length)"
    )
    parser.add_argument(
        "--max-pad-seconds", type=float, default=2.0, help="zero-pad short records by at most this (default 2)"
    )
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("files", nargs="+", type=Path, metavar="FILE", help="ECG files (a folder: every file in it)")
    add_input_arguments(parser)
    parser.add_argument("--labels", help="free-text labels separated by commas (default: the --task label set)")
    parser.add_argument("--task", default="cpsc2018", help="label set of the default findings (default cpsc2018)")
    parser.add_argument("--prompts", type=Path, help="prompt-bank JSON replacing melp's own")
    parser.add_argument("--no-report", action="store_true", help="skip report generation (faster)")
    parser.add_argument("--figure", action="store_true", help="write FILE.png: the ECG on paper with beat attention")
    parser.add_argument("--figure-dir", type=Path, help="folder of the figures (default: beside --out, or .)")
    parser.add_argument("--out", type=Path, help="results file: .json (everything) or .csv (one row per file)")
    parser.add_argument("--top", type=int, default=3, help="findings shown per file in the table (default 3)")


def expand_files(paths: list[Path]) -> list[Path]:
    """Files as given; a folder gives its files (recursively, WFDB signal files replaced by their header)."""
    from melp.data.readers.files import record_files

    out: list[Path] = []
    for path in paths:
        out.extend(record_files(path) if path.is_dir() else [path])
    return out


def read_hints(args: argparse.Namespace) -> dict[str, Any]:
    return {"fs": args.fs, "leads": args.lead_names, "units": args.units, "index": args.index}


def build_predictor(args: argparse.Namespace, **config: Any) -> Any:
    """The :class:`~melp.inference.ECGPredictor` of the command line's model and window options."""
    from melp.inference import ECGPredictor, InferenceConfig, WindowPolicy, parse_leads

    parse_leads(args.leads)  # a bad lead name fails before the model loads
    windows = WindowPolicy(stride_seconds=args.stride_seconds, max_pad_seconds=args.max_pad_seconds)
    if not args.model.is_dir():
        raise FileNotFoundError(f"--model {args.model} is not a folder (expected a saved MELP model, e.g. RUN/final)")
    return ECGPredictor.from_pretrained(
        args.model, config=InferenceConfig(windows=windows, **config), device=args.device
    )


def _row(path: Path, pred: Any, top: int) -> dict[str, Any]:
    r = pred.readings
    found = len(r["leads_found"]) - len(r.get("leads_masked", []) or [])
    return {
        "file": str(path),
        "format": r["format"],
        "fs": r["fs"],
        "duration_s": r["duration_s"],
        "leads": f"{max(found, 0)}/12",
        "missing": ",".join(r["leads_masked"] or r["leads_missing"]),
        "windows": r["windows"]["n_windows"],
        "findings": "; ".join(f"{label} {score:+.3f}" for label, score in pred.top_findings(top))
        or pred.findings.get("reason", ""),
        "report": pred.report.get("text", "") if pred.report.get("available") else "",
    }


def _table(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return ""
    columns = list(rows[0])
    width = {c: min(60, max(len(c), *(len(str(r[c])) for r in rows))) for c in columns}
    lines = ["  ".join(c.ljust(width[c]) for c in columns)]
    for r in rows:
        lines.append("  ".join(str(r[c])[: width[c]].ljust(width[c]) for c in columns))
    return "\n".join(lines) + "\n"


def _figure(pred: Any, path: Path, out_dir: Path, used: set[Path]) -> Path:
    """Draw ``pred`` to ``out_dir/<stem>.png`` (``<stem>-2.png``... when two inputs share a stem)."""
    from melp.report.alignment import ecg_paper_figure
    from melp.viz.ecg_paper import plot_ecg

    out_dir.mkdir(parents=True, exist_ok=True)
    target, n = out_dir / f"{path.stem}.png", 1
    while target in used:
        n += 1
        target = out_dir / f"{path.stem}-{n}.png"
    used.add(target)
    if pred.alignment is not None:
        fig = ecg_paper_figure(pred.alignment)
    else:
        w = pred.embedding.windows
        n = round(pred.model["seconds"] * w.fs)
        fig = plot_ecg(w.signal_mv[:, :n], w.fs, title=f"{path.name} ({pred.attention.get('reason', '')})")
    fig.savefig(target, dpi=110)
    return target


def run(args: argparse.Namespace) -> int:
    from melp.inference import InferenceError
    from melp.io import ECGReadError, read_ecg

    if args.out is not None and args.out.suffix.lower() not in (".json", ".csv"):
        raise ValueError(f"--out must end in .json or .csv, got {args.out}")
    if args.top < 0:
        raise ValueError("--top must be >= 0")
    labels = tuple(s.strip() for s in args.labels.split(",") if s.strip()) if args.labels else None
    if args.labels is not None and not labels:
        raise ValueError("--labels is empty; give labels separated by commas")
    files = expand_files(args.files)
    predictor = build_predictor(
        args,
        task=args.task,
        labels=labels,
        prompts=str(args.prompts) if args.prompts else None,
        generate=not args.no_report,
    )
    figure_dir = args.figure_dir or (args.out.parent if args.out is not None else Path("."))
    results, rows, failed = [], [], 0
    figures: set[Path] = set()
    for path in files:
        try:
            record = read_ecg(path, **read_hints(args))
            pred = predictor.predict(record, leads=args.leads)
        except ECGReadError as exc:
            logger.warning("skipped %s", exc)
            failed += 1
            continue
        except InferenceError as exc:
            logger.warning("skipped %s: %s: %s", path, record.format, exc)
            failed += 1
            continue
        result = pred.to_dict()
        if args.figure:
            result["figure"] = str(_figure(pred, path, figure_dir, figures))
        results.append(result)
        rows.append(_row(path, pred, args.top))
    sys.stdout.write(_table(rows))
    if args.out is not None and results:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        if args.out.suffix.lower() == ".json":
            args.out.write_text(json.dumps({"results": results}, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        else:
            _write_csv(args.out, results)
        logger.info("wrote %d result(s) to %s", len(results), args.out)
    if failed:
        logger.warning("%d of %d file(s) could not be used (reasons above)", failed, len(files))
    return 0 if results else 1


def _write_csv(path: Path, results: list[dict[str, Any]]) -> None:
    """One row per file: readings, the report, and one column per label score."""
    labels = list(dict.fromkeys(label for r in results for label in r["findings"].get("labels", [])))
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["file", "format", "fs", "duration_s", "leads_missing", "leads_masked", "report", *labels])
        for r in results:
            rd, scores = r["readings"], dict(zip(r["findings"].get("labels", []), r["findings"].get("scores", [])))
            writer.writerow(
                [
                    rd["path"],
                    rd["format"],
                    rd["fs"],
                    rd["duration_s"],
                    ",".join(rd["leads_missing"]),
                    ",".join(rd["leads_masked"]),
                    r["report"].get("text", ""),
                    *[scores.get(label, "") for label in labels],
                ]
            )
