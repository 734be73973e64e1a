"""``melp eval-suite``: the whole evaluation protocol for a model and the random-encoder baseline, one table.

For every dataset given (``--test``, with optional ``--train``/``--val`` of the same length and
order): zero-shot; linear probes at 1/10/100 % when training and validation records are given (the paper's
AdamW head and the converged logistic-regression probe);
retrieval and report generation when the test records have reports; beat-level grounding when the
test store has beat ground truth and PVC/PAC records (a synthetic store). Each runs for the pretrained
model and for a random ECG encoder of the same size (seeded) that shares the model's text side.
Writes ``OUT_DIR/results.json`` (``{"results": [...], "config": {...}}``), ``OUT_DIR/results.md``
(the full table, and the model-vs-baseline comparison) and the zero-shot scores CSVs.

Example::

    melp eval-suite --model runs/melp/final --train stores/ptbxl:train --val stores/ptbxl:val \\
        --test stores/ptbxl:test --task ptbxl_super --out-dir runs/melp/eval
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from melp.eval.options import SIZES, leads_from

COMMAND = "eval-suite"
HELP = "Run zero-shot, linear probes on 1, 10 and 100 percent of the labels, retrieval, generation and (synthetic stores) beat-level grounding for a model and the random-encoder baseline."

logger = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="pretrained model directory (RUN_DIR/final)")
    parser.add_argument("--size", choices=SIZES, help="size of the random-encoder baseline (default: the model's)")
    parser.add_argument("--model-seed", type=int, default=0, help="seed of the random encoder (default 0)")
    parser.add_argument("--no-baseline", action="store_true", help="skip the random-encoder baseline")
    parser.add_argument(
        "--test", nargs="+", required=True, metavar="STORE[:SPLIT]", help="test records, one per dataset"
    )
    parser.add_argument(
        "--train", nargs="*", default=[], metavar="STORE[:SPLIT]", help="training records per dataset (enables probes)"
    )
    parser.add_argument(
        "--val",
        nargs="*",
        default=[],
        metavar="STORE[:SPLIT]",
        help="validation records per dataset (default: a TRAIN:val split of each --train store)",
    )
    parser.add_argument("--task", nargs="*", default=[], help="label set per dataset (default: from each store)")
    parser.add_argument(
        "--fractions", type=float, nargs="+", default=[0.01, 0.1, 1.0], help="probe fractions (default 0.01 0.1 1.0)"
    )
    parser.add_argument("--prompts", type=Path, help="prompt JSON (default: melp's bank)")
    parser.add_argument(
        "--generate-limit", type=int, default=200, help="records per dataset for report generation (default 200)"
    )
    parser.add_argument(
        "--method", choices=("beam", "greedy", "top_k", "top_p"), default="beam", help="decoding (default beam)"
    )
    parser.add_argument("--no-generate", action="store_true", help="skip report generation")
    parser.add_argument("--out-dir", type=Path, required=True, help="output directory")
    parser.add_argument("--seed", type=int, default=0, help="seed of bootstrap, subsets and splits (default 0)")
    parser.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples (default 1000)")
    parser.add_argument("--batch-size", type=int, default=64, help="records per forward pass (default 64)")
    parser.add_argument(
        "--keep-unlabelled",
        action="store_true",
        help="keep records without any label of the task (default: left out, as in the MELP split files)",
    )
    parser.add_argument(
        "--split-scheme",
        choices=("auto", "strat_fold", "patient"),
        default="auto",
        help="how STORE:SPLIT references are split",
    )
    parser.add_argument("--cache-dir", type=Path, help="embedding cache (default OUT_DIR/cache)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.add_argument(
        "--leads",
        help="evaluate on a lead subset (e.g. I or I,II,V1); the other leads are masked as in pretraining",
    )


def _has_reports(ref: str, settings: object) -> bool:
    from melp.eval.runs import select

    sel = select(ref, settings)  # type: ignore[arg-type]
    return bool(sel.store.meta["report"].fillna("").astype(str).str.strip().iloc[sel.indices].ne("").any())


def _has_grounding(ref: str, settings: object) -> bool:
    """Whether the records have PVC/PAC sentences with beats of that type (:func:`melp.eval.grounding.grounding_targets`)."""
    from melp.eval.grounding import grounding_targets
    from melp.eval.runs import select

    sel = select(ref, settings)  # type: ignore[arg-type]
    return bool(grounding_targets(sel.store.meta, sel.indices, fs=float(sel.store.fs)))


def run(args: argparse.Namespace) -> int:
    from melp.eval.options import carve_validation
    from melp.eval.probe import PROBE_HEADS, ProbeConfig
    from melp.eval.random_baseline import load_eval_model
    from melp.eval.results import comparison_table, markdown_table, write_results, write_scores_csv
    from melp.eval.runs import Settings, run_generation, run_grounding, run_probe, run_retrieval, run_zeroshot

    n = len(args.test)
    for name, values in (("--train", args.train), ("--val", args.val), ("--task", args.task)):
        if values and len(values) != n:
            raise SystemExit(f"{name} needs one value per --test store ({n}), got {len(values)}")
    if args.val and not args.train:
        raise SystemExit("--val needs --train (linear probes)")
    if args.train:
        pairs = [carve_validation(t, v) for t, v in zip(args.train, args.val or [None] * n)]
        args.train, args.val = [t for t, _ in pairs], [v for _, v in pairs]
    settings = Settings(
        batch_size=args.batch_size, n_bootstrap=args.bootstrap, seed=args.seed, split_scheme=args.split_scheme,
        cache_dir=args.cache_dir or args.out_dir / "cache", progress=not args.no_progress, leads=leads_from(args),
        keep_unlabelled=args.keep_unlabelled,
    )  # fmt: skip
    models = [load_eval_model(args.model)]
    if not args.no_baseline:
        size = args.size or models[0].model.config.ecg.size
        models.append(load_eval_model("random", size=size, seed=args.model_seed, text_from=args.model))
    args.out_dir.mkdir(parents=True, exist_ok=True)
    results: list[dict[str, object]] = []
    skipped: list[dict[str, str]] = []
    for k, test in enumerate(args.test):
        task = args.task[k] if args.task else None
        reports = _has_reports(test, settings)
        grounding = reports and _has_grounding(test, settings)
        for em in models:
            logger.info("dataset %s, model %s", test, em.name)
            if em.has_text:
                result, scores = run_zeroshot(em, test, task_name=task, prompts=args.prompts, settings=settings)
                results.append(result)
                csv = args.out_dir / f"{em.name.replace('/', '-')}_{k}_zeroshot_scores.csv"
                write_scores_csv(
                    csv, ids=scores.ids, labels=scores.labels, classes=scores.classes, scores=scores.scores
                )
            else:
                for protocol in ("zeroshot", "retrieval", "generation"):
                    skipped.append({"model": em.name, "dataset": test, "protocol": protocol, "reason": NO_TEXT})
                logger.warning("%s on %s: zero-shot, retrieval and generation skipped: %s", em.name, test, NO_TEXT)
            if args.train:
                probe = ProbeConfig(seed=args.seed)
                for head in PROBE_HEADS:  # the paper's protocol, then the converged logistic probe
                    runs = run_probe(em, train=args.train[k], val=args.val[k], test=test, task_name=task,
                                     fractions=list(args.fractions), probe=probe, settings=settings, head=head)  # fmt: skip
                    results += [r for r, _ in runs]
            if reports and em.has_text:
                results.append(run_retrieval(em, test, settings=settings))
                if not args.no_generate:
                    gen, _ = run_generation(
                        em, test, method=args.method, max_length=None, limit=args.generate_limit, settings=settings
                    )
                    results.append(gen)
            if grounding:
                results.append(run_grounding(em, test, settings=settings))
            write_results(args.out_dir / "results.json", results, config={**vars_config(args), "skipped": skipped})
    table = args.out_dir / "results.md"
    table.write_text(
        "## Model vs random-encoder baseline\n\n"
        + comparison_table(results)
        + "\n## All metrics\n\n"
        + markdown_table(results)
        + _skipped_section(skipped),
        encoding="utf-8",
    )
    logger.info("results:\n%s", comparison_table(results))
    logger.info("wrote %s and %s", args.out_dir / "results.json", table)
    return 0


NO_TEXT = "the model has no text tower (ECG-only, e.g. the converted released encoder)"


def _skipped_section(skipped: list[dict[str, str]]) -> str:
    """Markdown list of the protocols skipped, with the reason, or nothing."""
    if not skipped:
        return ""
    lines = [f"- {s['protocol']} of {s['model']} on {s['dataset']}: {s['reason']}" for s in skipped]
    return "\n## Skipped\n\n" + "\n".join(lines) + "\n"


def vars_config(args: argparse.Namespace) -> dict[str, object]:
    """The command's options, JSON-ready."""
    return {
        k: (str(v) if isinstance(v, Path) else [str(x) for x in v] if isinstance(v, list) else v)
        for k, v in vars(args).items()
        if not k.startswith("_")
    }
