"""Command-line options shared by the evaluation subcommands (``melp zeroshot|probe|finetune|retrieve|generate|eval-suite``).

Kept here, next to the protocols, so every subcommand spells its options the same way.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

from melp.eval.bootstrap import DEFAULT_RESAMPLES

logger = logging.getLogger(__name__)

SIZES = ("micro", "tiny", "small", "base", "large")


def add_model_args(parser: argparse.ArgumentParser, *, required: bool = True) -> None:
    """``--model DIR | random``, ``--size``, ``--text-from``, ``--model-seed``."""
    parser.add_argument(
        "--model",
        required=required,
        help="a model directory, a run directory (its best validation checkpoint, else final/) or 'random'",
    )
    parser.add_argument("--size", choices=SIZES, help="encoder size of --model random")
    parser.add_argument(
        "--text-from", type=Path, help="with --model random: take the text side from this model directory"
    )
    parser.add_argument("--model-seed", type=int, default=0, help="seed of the random encoder (default 0)")


def add_supervised_args(parser: argparse.ArgumentParser, *, fractions: list[float], fractions_help: str) -> None:
    """``--train``, ``--val``, ``--test`` and ``--fractions`` of the supervised protocols (probe, finetune)."""
    parser.add_argument("--train", required=True, metavar="STORE[:SPLIT]", help="training records")
    parser.add_argument(
        "--val",
        metavar="STORE[:SPLIT]",
        help="validation records (early stopping); default: a seeded patient-wise TRAIN:val split of --train",
    )
    parser.add_argument("--test", required=True, metavar="STORE[:SPLIT]", help="test records (reported)")
    parser.add_argument("--fractions", "--fraction", type=float, nargs="+", default=fractions, help=fractions_help)


def carve_validation(train: str, val: str | None) -> tuple[str, str]:
    """``(train, val)``; without ``val``, split a whole training store into its ``:train`` and ``:val`` parts.

    The split is :func:`melp.data.tasks.split_indices` (PTB-XL ``strat_fold`` where present, else
    seeded and patient-wise), so no patient is in both.
    """
    from melp.data.tasks import split_store_ref

    if val:
        return train, val
    if split_store_ref(train)[1]:
        raise SystemExit(f"--train {train} names a split already; give --val explicitly")
    logger.info("no --val given: training on %s:train, early stopping on %s:val", train, train)
    return f"{train}:train", f"{train}:val"


def check_fractions(fractions: list[float]) -> None:
    """Exit with a clear message unless every training fraction lies in (0, 1]."""
    if any(not 0.0 < f <= 1.0 for f in fractions):
        raise SystemExit(f"--fractions must lie in (0, 1], got {fractions}")


def add_common_args(parser: argparse.ArgumentParser, *, task: bool = True, precision: bool = False) -> None:
    """Output, statistics and batching options; ``precision``: also ``--precision`` of the embedding passes."""
    if task:
        parser.add_argument(
            "--task",
            help="label set (ptbxl_super, ptbxl_sub, ptbxl_form, ptbxl_rhythm, cpsc2018, csn, synthetic); default: from the store",
        )
    parser.add_argument("--out", type=Path, help="results JSON (a markdown table is written beside it as .md)")
    parser.add_argument("--seed", type=int, default=0, help="seed of bootstrap, subsets and splits (default 0)")
    parser.add_argument(
        "--bootstrap",
        type=int,
        default=DEFAULT_RESAMPLES,
        help=f"bootstrap resamples for the 95 %% CIs (default {DEFAULT_RESAMPLES}; 0 disables)",
    )
    parser.add_argument("--batch-size", type=int, default=64, help="records per forward pass (default 64)")
    parser.add_argument(
        "--split-scheme",
        choices=("auto", "strat_fold", "patient"),
        default="auto",
        help="how STORE:SPLIT references are split (default auto: PTB-XL strat_fold, else patient-wise)",
    )
    parser.add_argument(
        "--cache-dir", type=Path, help="embedding cache (default $MELP_CACHE/embeddings or ~/.cache/melp/embeddings)"
    )
    parser.add_argument("--no-cache", action="store_true", help="do not cache embeddings")
    parser.add_argument(
        "--keep-unlabelled",
        action="store_true",
        help="keep records without any label of the task (default: left out, as in the MELP split files)",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    if precision:
        parser.add_argument(
            "--precision",
            choices=("fp32", "bf16"),
            default="fp32",
            help="arithmetic of the embedding forward passes (default fp32); bf16 autocasts on CUDA and on CPUs "
            "with AMX (about 2x faster there; embeddings agree to ~1e-3), and is fp32 elsewhere",
        )
    parser.add_argument(
        "--leads",
        help="evaluate on a lead subset (e.g. I or I,II,V1); the other leads are masked as in pretraining",
    )


def settings_from(args: argparse.Namespace) -> Any:
    """:class:`melp.eval.runs.Settings` of the parsed options."""
    from melp.eval.embed import default_cache_dir
    from melp.eval.runs import Settings

    if args.batch_size < 1 or args.bootstrap < 0:
        raise SystemExit("--batch-size must be ≥ 1 and --bootstrap ≥ 0")
    cache = None if args.no_cache else (args.cache_dir or default_cache_dir())
    return Settings(
        batch_size=args.batch_size, n_bootstrap=args.bootstrap, seed=args.seed,
        split_scheme=args.split_scheme, cache_dir=cache, progress=not args.no_progress, leads=leads_from(args),
        keep_unlabelled=args.keep_unlabelled, precision=getattr(args, "precision", "fp32"),
    )  # fmt: skip


def leads_from(args: argparse.Namespace) -> tuple[str, ...] | None:
    """``--leads`` as standard lead names (``ValueError`` naming an unknown one), None for all 12."""
    from melp.inference import parse_leads

    return parse_leads(getattr(args, "leads", None))


def model_from(args: argparse.Namespace) -> Any:
    """The :class:`melp.eval.random_baseline.EvalModel` of ``--model``."""
    from melp.eval.random_baseline import load_eval_model

    return load_eval_model(args.model, size=args.size, seed=args.model_seed, text_from=args.text_from)


def write_outputs(args: argparse.Namespace, results: list[dict[str, Any]], scores: list[Any] | None = None) -> None:
    """Write ``--out`` (one object, or ``{"results": [...]}`` for several), its table, and ``--save-scores``."""
    from melp.eval.results import markdown_table, write_results, write_scores_csv

    table = markdown_table(results)
    logger.info("results:\n%s", table)
    if args.out is not None:
        written = write_results(args.out, results[0] if len(results) == 1 else results)
        logger.info("wrote %s and %s", args.out, written)
    save = getattr(args, "save_scores", None)
    if save is not None and scores:
        for k, s in enumerate(scores):
            path = Path(save) if len(scores) == 1 else Path(save).with_name(f"{Path(save).stem}_{k}{Path(save).suffix}")
            write_scores_csv(path, ids=s.ids, labels=s.labels, classes=s.classes, scores=s.scores)
            logger.info("wrote scores to %s", path)
