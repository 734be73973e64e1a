"""``melp demo``: the whole MELP pipeline (melp-spec.md §0–§7) on the built-in synthetic corpus.

Steps, each skipped when its output already exists so an interrupted demo resumes where it stopped:

1. synthesise train / val / test stores (different seeds; or use ``--train/--val/--test`` stores);
2. stage 1: WordPiece tokenizer + BERT masked-LM on the training reports (``melp pretrain-text``);
3. stage 2: MELP pretraining with a preset (``melp pretrain``); without ``--steps``, a preset with a
   stage-2 time budget first times a few steps, and a machine too slow for the preset's length in
   that budget trains fewer (:func:`fit_steps`; the report says how many and why);
4. evaluation on the test store, pretrained model and random-encoder baseline: zero-shot,
   linear probe at 1 / 10 / 100 %, retrieval, report generation;
5. ``report.md`` and a self-contained ``report.html`` (:mod:`melp.report`).

Every step runs the project's own subcommand in-process through :func:`melp.cli.main.main`, so
the demo exercises exactly what a user runs. Wall and CPU time per step are kept in ``OUT/demo.json``.
"""

from __future__ import annotations

import argparse
import json
import logging
import resource
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path

COMMAND = "demo"
HELP = "run the whole pipeline on the synthetic corpus (synth → pretrain → evaluate → report.html)"

logger = logging.getLogger(__name__)

PROBE_FRACTIONS = (0.01, 0.1, 1.0)
TIMING_STEPS = 20  # stage-2 steps timed to fit the preset's budget (DemoSize.stage2_budget_s)
TIMING_LOG_EVERY = 5
INTERRUPTED = 130  # exit status of a subcommand stopped by Ctrl-C (melp.cli.main)
RANDOM = "random encoder"
TRAINED = "MELP"


@dataclass(frozen=True)
class DemoSize:
    """Data size and training length of a preset (chosen to fit the 8-minute, 2-core budget).

    Attributes:
        steps: stage-2 optimizer steps: all of them on a machine fast enough for ``stage2_budget_s``.
        stage2_budget_s: without ``--steps``, the demo first times :data:`TIMING_STEPS` training steps
            and, where ``steps`` would take longer than this, trains fewer (at least ``min_steps``);
            ``None``: always ``steps``.
    """

    n_train: int
    n_eval: int
    text_steps: int
    steps: int
    generate: int
    contrastive_steps: int = 0
    overrides: tuple[str, ...] = ()
    stage2_budget_s: float | None = None
    min_steps: int = 100


#: ``tiny`` is the ``make demo`` default; ``micro`` is the smoke-test scale.
SIZES: dict[str, DemoSize] = {
    "tiny": DemoSize(
        n_train=3500,
        n_eval=500,
        text_steps=100,
        contrastive_steps=50,
        steps=1400,
        generate=50,
        overrides=("training.val_every=350",),
        stage2_budget_s=240.0,
    ),
    "micro": DemoSize(n_train=300, n_eval=60, text_steps=20, contrastive_steps=10, steps=30, generate=8),
}


@dataclass
class DemoPlan:
    """Everything the demo does, resolved from the command line (written to ``OUT/demo.json``)."""

    out: Path
    preset: str
    config: Path
    fs: int
    seconds: float
    seed: int
    n_train: int
    n_val: int
    n_test: int
    text_steps: int
    contrastive_steps: int
    steps: int
    n_generate: int
    generate_max_length: int
    precision: str
    pairs_per_step: int
    task: str
    stores: dict[str, Path]
    synthesise: bool
    baseline: bool = True
    overrides: list[str] = field(default_factory=list)
    max_steps: int | None = None
    stage2_budget_s: float | None = None
    min_steps: int = 100
    seconds_per_step: float | None = None
    timings: dict[str, float] = field(default_factory=dict)
    cpu_times: dict[str, float] = field(default_factory=dict)

    @property
    def models(self) -> tuple[tuple[str, str], ...]:
        """(label, file tag) of every evaluated model: MELP, and the random encoder unless left out."""
        return ((TRAINED, "melp"), (RANDOM, "random")) if self.baseline else ((TRAINED, "melp"),)

    @property
    def text_model(self) -> Path:
        return self.out / "text_model"

    @property
    def run_dir(self) -> Path:
        return self.out / "run"

    @property
    def model_dir(self) -> Path:
        return self.run_dir / "final"

    @property
    def eval_model_dir(self) -> Path:
        """The model the evaluations read: the run's best validation checkpoint, else ``final``."""
        from melp.train.checkpoint import resolve_model_dir

        return resolve_model_dir(self.run_dir)

    @property
    def timing_file(self) -> Path:
        """Where the timed stage-2 steps' result is kept (``seconds_per_step``), so a rerun keeps its length."""
        return self.out / "stage2_timing.json"

    def length_text(self) -> str:
        """How the stage-2 length was chosen, for the report."""
        if self.seconds_per_step is None or self.stage2_budget_s is None or self.max_steps is None:
            return f"{self.steps} steps (fixed)"
        pace = f"this machine: {self.seconds_per_step:.2f} s a step, timed over {TIMING_STEPS} steps"
        if self.steps >= self.max_steps:
            return f"{self.steps} steps, the preset's full length ({pace}; budget {self.stage2_budget_s:g} s)"
        return (
            f"{self.steps} of the preset's {self.max_steps} steps, to fit stage 2 into {self.stage2_budget_s:g} s "
            f"({pace}; `--steps N` sets the length)"
        )

    @property
    def eval_dir(self) -> Path:
        return self.out / "eval"

    @property
    def generated_reports(self) -> Path:
        return self.eval_dir / "melp_generate_reports.jsonl"

    def save(self) -> None:
        data = asdict(self)
        data = {k: (str(v) if isinstance(v, Path) else v) for k, v in data.items()}
        data["stores"] = {k: str(v) for k, v in self.stores.items()}
        (self.out / "demo.json").write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, default=Path("runs/demo"), help="output directory (default runs/demo)")
    parser.add_argument(
        "--preset",
        choices=sorted(SIZES),
        default="tiny",
        help="model/training preset shipped in melp/configs/ (default tiny)",
    )
    parser.add_argument(
        "--n", type=int, default=None, help="synthetic training records (val and test get n/5 each unless --n-eval)"
    )
    parser.add_argument("--n-eval", type=int, default=None, help="synthetic validation and test records each")
    parser.add_argument(
        "--steps",
        type=int,
        default=None,
        help="stage-2 optimizer steps (default: the preset's, fewer where a timing of 20 steps says they would "
        "not fit the preset's stage-2 time budget on this machine)",
    )
    parser.add_argument("--text-steps", type=int, default=None, help="stage-1 masked-LM steps (default: the preset's)")
    parser.add_argument(
        "--contrastive-steps",
        type=int,
        default=None,
        help="stage-1 sentence-report contrastive steps after the masked-LM (default: the preset's; 0: none)",
    )
    parser.add_argument(
        "--fs", type=int, default=None, help="sampling rate of the synthetic stores (default: the preset's model.fs)"
    )
    parser.add_argument("--seconds", type=float, default=10.0, help="record length of the synthetic stores")
    parser.add_argument("--seed", type=int, default=0, help="seed of the train store (val/test use seed+1, seed+2)")
    parser.add_argument("--task", default="synthetic", help="label set of the evaluation (default synthetic)")
    for split in ("train", "val", "test"):
        parser.add_argument(
            f"--{split}", type=Path, default=None, help=f"use this existing {split} store instead of synthesising one"
        )
    parser.add_argument(
        "--no-baseline", action="store_true", help="evaluate MELP only, without the random-encoder baseline"
    )
    parser.add_argument("overrides", nargs="*", default=[], help="extra key=value overrides for `melp pretrain`")


def make_plan(args: argparse.Namespace) -> DemoPlan:
    """Resolve sizes, stores and paths from the parsed command line."""
    size = SIZES[args.preset]
    n_train = args.n if args.n is not None else size.n_train
    if n_train < 20:
        raise ValueError(f"--n must be at least 20 records (got {n_train})")
    n_eval = args.n_eval if args.n_eval is not None else max(10, n_train // 5) if args.n is not None else size.n_eval
    if n_eval < 10:
        raise ValueError(f"--n-eval must be at least 10 records (got {n_eval})")
    if args.contrastive_steps is not None and args.contrastive_steps < 0:
        raise ValueError(f"--contrastive-steps must be at least 0 (got {args.contrastive_steps})")
    given = {split: getattr(args, split) for split in ("train", "val", "test")}
    if any(given.values()) and not all(given.values()):
        raise ValueError("give all three of --train, --val and --test, or none of them to synthesise the stores")
    out = Path(args.out)
    stores = {k: Path(v) for k, v in given.items()} if all(given.values()) else {s: out / "data" / s for s in given}
    from melp.configs import preset_path
    from melp.train.config import load_pretrain_config

    if args.steps is not None and args.steps < 1:
        raise ValueError(f"--steps must be at least 1 (got {args.steps})")
    config = preset_path(args.preset)
    overrides = [f"model.seconds={args.seconds:g}", *size.overrides, *args.overrides]
    cfg = load_pretrain_config(config, overrides)  # checks the overrides before any work
    model = cfg.model
    fitted = args.steps is None and size.stage2_budget_s is not None
    return DemoPlan(
        out=out,
        preset=args.preset,
        config=config,
        fs=args.fs if args.fs is not None else model.fs,
        seconds=args.seconds,
        seed=args.seed,
        n_train=n_train,
        n_val=n_eval,
        n_test=n_eval,
        text_steps=args.text_steps if args.text_steps is not None else size.text_steps,
        contrastive_steps=args.contrastive_steps if args.contrastive_steps is not None else size.contrastive_steps,
        steps=args.steps if args.steps is not None else size.steps,
        n_generate=size.generate,
        generate_max_length=model.text.max_length,
        precision=cfg.training.precision,
        pairs_per_step=cfg.data.batch_size * cfg.training.grad_accum,
        task=args.task,
        stores=stores,
        synthesise=not all(given.values()),
        baseline=not args.no_baseline,
        overrides=overrides,
        max_steps=size.steps if fitted else None,
        stage2_budget_s=size.stage2_budget_s if fitted else None,
        min_steps=size.min_steps,
    )


def _melp(argv: list[str]) -> None:
    """Run one ``melp`` subcommand in-process; a non-zero exit status stops the demo."""
    from melp.cli.main import main

    logger.info("$ melp %s", " ".join(argv))
    status = main(argv)
    if status == INTERRUPTED:
        raise KeyboardInterrupt
    if status != 0:
        raise RuntimeError(f"`melp {' '.join(argv)}` exited with status {status}")


def _cpu_seconds() -> float:
    """CPU time (user + system) of this process and its finished children, all threads."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _step(plan: DemoPlan, name: str, done: bool, action: Callable[[], None]) -> None:
    """Run ``action`` unless ``done``; log and record its wall and CPU time."""
    if done:
        logger.info("[demo] %s: already done, skipped", name)
        return
    logger.info("[demo] %s ...", name)
    start, cpu = time.perf_counter(), _cpu_seconds()
    action()
    plan.timings[name] = round(time.perf_counter() - start, 1)
    plan.cpu_times[name] = round(_cpu_seconds() - cpu, 1)
    plan.save()
    logger.info("[demo] %s done in %.1f s (CPU %.1f s)", name, plan.timings[name], plan.cpu_times[name])


def _synthesise(plan: DemoPlan) -> None:
    sizes = {"train": plan.n_train, "val": plan.n_val, "test": plan.n_test}
    for offset, (split, n) in enumerate(sizes.items()):
        store = plan.stores[split]
        argv = ["synth", "--n", str(n), "--out", str(store), "--seed", str(plan.seed + offset)]
        argv += ["--fs", str(plan.fs), "--seconds", str(plan.seconds)]
        _step(plan, f"synthesise {split} ({n} records)", (store / "manifest.json").is_file(), partial(_melp, argv))


def _pretrain_text(plan: DemoPlan) -> None:
    argv = ["pretrain-text", "--train", str(plan.stores["train"]), "--out", str(plan.text_model)]
    argv += ["--max-steps", str(plan.text_steps), f"size={plan.preset}", f"contrastive_steps={plan.contrastive_steps}"]
    _step(plan, "stage 1: text pretraining", (plan.text_model / "tokenizer.json").is_file(), partial(_melp, argv))


def fit_steps(*, budget_s: float, seconds_per_step: float, most: int, least: int, multiple: int = 50) -> int:
    """The stage-2 length for a machine: ``most`` if it fits ``budget_s``, else the largest multiple of
    ``multiple`` that does, never below ``least``."""
    if not (seconds_per_step > 0 and budget_s > 0):
        raise ValueError(f"budget ({budget_s}) and seconds per step ({seconds_per_step}) must be positive")
    fit = int(budget_s / seconds_per_step) // multiple * multiple
    return max(least, min(most, fit))


def _time_steps(plan: DemoPlan) -> None:
    """Run :data:`TIMING_STEPS` stage-2 steps in a scratch run and keep their median pace (the first
    :data:`TIMING_LOG_EVERY` steps, which include the warm-up, are left out)."""
    import shutil

    scratch = plan.out / "stage2_timing"
    shutil.rmtree(scratch, ignore_errors=True)
    argv = ["pretrain", "--config", str(plan.config), "--train", str(plan.stores["train"])]
    argv += ["--text-model", str(plan.text_model), "--out", str(scratch), "--max-steps", str(TIMING_STEPS)]
    argv += [*plan.overrides, f"training.log_every={TIMING_LOG_EVERY}", "training.save_every=0"]
    _melp(argv)
    lines = (scratch / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
    paces = [r["pairs_per_s"] for r in map(json.loads, lines) if r.get("split") == "train" and "pairs_per_s" in r]
    if len(paces) < 2:
        raise RuntimeError(f"the timing run logged {len(paces)} paces in {scratch / 'metrics.jsonl'}, expected 2+")
    seconds = plan.pairs_per_step / statistics.median(paces[1:])
    plan.timing_file.write_text(json.dumps({"seconds_per_step": seconds, "steps": TIMING_STEPS}) + "\n")
    shutil.rmtree(scratch)


def _fit_length(plan: DemoPlan) -> None:
    """Shorten stage 2 where the preset's length would not fit its time budget on this machine."""
    if plan.stage2_budget_s is None or plan.max_steps is None:
        return
    _step(plan, "stage 2: timing steps", plan.timing_file.is_file(), partial(_time_steps, plan))
    plan.seconds_per_step = float(json.loads(plan.timing_file.read_text(encoding="utf-8"))["seconds_per_step"])
    plan.steps = fit_steps(
        budget_s=plan.stage2_budget_s, seconds_per_step=plan.seconds_per_step, most=plan.max_steps, least=plan.min_steps
    )
    plan.save()
    logger.info("[demo] stage-2 length: %s", plan.length_text())


def _pretrain(plan: DemoPlan) -> None:
    argv = ["pretrain", "--config", str(plan.config), "--train", str(plan.stores["train"])]
    argv += ["--val", str(plan.stores["val"]), "--text-model", str(plan.text_model), "--out", str(plan.run_dir)]
    argv += ["--max-steps", str(plan.steps), "--save-every", str(max(1, plan.steps // 4))]
    if (plan.run_dir / "checkpoints").is_dir() and any((plan.run_dir / "checkpoints").iterdir()):
        argv.append("--resume")
    argv += plan.overrides
    _step(plan, "stage 2: MELP pretraining", (plan.model_dir / "tokenizer.json").is_file(), partial(_melp, argv))


def _model_args(plan: DemoPlan, model: str) -> list[str]:
    if model == TRAINED:
        return ["--model", str(plan.run_dir)]
    return ["--model", "random", "--size", plan.preset, "--text-from", str(plan.run_dir)]


def _groundable(plan: DemoPlan) -> bool:
    """Whether the test store has beat-level ground truth and PVC/PAC records to ground.

    A store still to be synthesised will (at the demo's sizes); a tiny one may have no ectopic beat.
    """
    from melp.data import open_store

    store = plan.stores["test"]
    if not (store / "manifest.json").is_file():
        return plan.synthesise
    meta = open_store(store).meta
    return "beat_types" in meta.columns and any({"PVC", "PAC"} & set(labels) for labels in meta["labels"])


def evaluations(plan: DemoPlan) -> list[tuple[str, str, str, list[str]]]:
    """(evaluation, model label, results file stem, argv without ``--out``) of every evaluation run."""
    train, val, test = (str(plan.stores[s]) for s in ("train", "val", "test"))
    common = ["--cache-dir", str(plan.out / "cache")]
    # the embedding passes run in the preset's training precision (bf16 where it pays: about 2x faster)
    embedding = [*common, "--precision", plan.precision]
    runs: list[tuple[str, str, str, list[str]]] = []
    groundable = _groundable(plan)
    for model, tag in plan.models:
        scores = plan.eval_dir / f"{tag}_zeroshot_scores.csv"
        argv = [
            "zeroshot",
            *_model_args(plan, model),
            "--test",
            test,
            "--task",
            plan.task,
            "--save-scores",
            str(scores),
        ]
        runs.append(("zero-shot", model, f"{tag}_zeroshot", [*argv, *embedding]))
        for head, title, stem in (("adamw", "linear probe", "probe"), ("logreg", "logistic probe", "logreg")):
            for fraction in PROBE_FRACTIONS:
                argv = ["probe", *_model_args(plan, model), "--train", train, "--val", val, "--test", test]
                argv += ["--task", plan.task, "--fraction", str(fraction), "--head", head, *embedding]
                runs.append((f"{title} {fraction:.0%}", model, f"{tag}_{stem}_{fraction:g}", argv))
        runs.append(
            ("retrieval", model, f"{tag}_retrieve", ["retrieve", *_model_args(plan, model), "--test", test, *embedding])
        )
        if groundable:  # the synthetic corpus knows where each ectopic beat is
            argv = ["ground", *_model_args(plan, model), "--test", test, *common]
            runs.append(("beat-level grounding", model, f"{tag}_ground", argv))
    argv = ["generate", *_model_args(plan, TRAINED), "--test", test, "--limit", str(plan.n_generate)]
    argv += ["--max-length", str(plan.generate_max_length)]
    argv += ["--save-reports", str(plan.generated_reports), *common]
    runs.append(("report generation", TRAINED, "melp_generate", argv))
    return runs


def _evaluate(plan: DemoPlan) -> None:
    plan.eval_dir.mkdir(parents=True, exist_ok=True)
    for evaluation, model, stem, argv in evaluations(plan):
        out = plan.eval_dir / f"{stem}.json"
        _step(plan, f"evaluate: {evaluation}, {model}", out.is_file(), partial(_melp, [*argv, "--out", str(out)]))


def _headline(zero_shot: dict[str, Path]) -> str:
    """One sentence with the zero-shot macro AUROC of both models, quoted from their results JSON."""
    from melp.report import format_cell
    from melp.report.results import load_results

    cells = []
    for model, path in zero_shot.items():
        result = load_results(path)
        value = result["metrics"].get("macro_auroc")
        cells.append(f"{model} {format_cell(value, (result.get('ci95') or {}).get('macro_auroc'))}")
    return "Zero-shot macro AUROC on the test store: " + " vs ".join(cells) + " (95 % bootstrap CI)."


def _time_text(plan: DemoPlan, name: str) -> str:
    cpu = plan.cpu_times.get(name)
    return f"{plan.timings[name]:.1f} s" + (f" (CPU {cpu:.1f} s)" if cpu is not None else "")


def _precision_text(plan: DemoPlan) -> str:
    """The arithmetic stage 2 ran in on this machine (the rule of :func:`melp.train.precision.autocast`)."""
    import torch

    from melp.train.precision import bf16_autocast_available

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if plan.precision != "bf16":
        return "fp32"
    if bf16_autocast_available(device):
        return f"bf16 autocast ({'CUDA' if device.type == 'cuda' else 'this CPU has AMX'}), fp32 weights and losses"
    return "fp32 (the preset asks for bf16, which pays only on CUDA and on CPUs with AMX)"


def _report(plan: DemoPlan) -> None:
    from melp.report import ReportInputs, ResultEntry, build_report

    results = [ResultEntry(ev, model, plan.eval_dir / f"{stem}.json") for ev, model, stem, _ in evaluations(plan)]
    zero_shot = {model: plan.eval_dir / f"{tag}_zeroshot.json" for model, tag in plan.models}
    scores = {model: plan.eval_dir / f"{tag}_zeroshot_scores.csv" for model, tag in plan.models}
    settings = [
        ("stores", ", ".join(f"{k}: {v}" for k, v in plan.stores.items())),
        (
            "records (train / val / test)",
            f"{plan.n_train} / {plan.n_val} / {plan.n_test}" if plan.synthesise else "given stores",
        ),
        ("sampling rate, length", f"{plan.fs} Hz, {plan.seconds:g} s"),
        ("preset", f"{plan.preset} ({plan.config.name})"),
        (
            "stage-1 steps (masked-LM + sentence-report contrastive) / stage-2 steps",
            f"{plan.text_steps} + {plan.contrastive_steps} / {plan.steps}",
        ),
        ("stage-2 length", plan.length_text()),
        ("precision (stage 2, embeddings)", _precision_text(plan)),
        ("generated reports (beam search)", str(plan.n_generate)),
        ("pretrain overrides", " ".join(plan.overrides)),
        (
            "model evaluated",
            f"{plan.eval_model_dir.relative_to(plan.out)} (the best validation checkpoint, else final)",
        ),
        *((f"time: {name}", _time_text(plan, name)) for name in plan.timings),
        ("time: all steps", f"{sum(plan.timings.values()):.1f} s wall, {sum(plan.cpu_times.values()):.1f} s CPU"),
    ]
    intro = [
        "MELP pretrains an ECG encoder against free-text reports at three scales: token level (captioning), "
        "beat level (beat queries aligned with report sentences) and rhythm level (CLIP-style contrast). "
        "This report comes from `melp demo`: a synthetic 12-lead corpus with exact ground truth, both "
        "pretraining stages and the evaluation protocol, all on CPU.",
        _headline(zero_shot),
        "Linear probes are reported twice: the paper's protocol (a linear head trained with AdamW, early "
        "stopping on validation) and a converged logistic regression on standardised embeddings whose "
        "regularisation is chosen on validation, so an under-trained head cannot decide the comparison. "
        "Beat-level grounding measures how much of each PVC/PAC sentence's attention over time falls on "
        "the ectopic beats (1 = uniform). The CPU preset departs from the paper in six stated ways "
        "(docs/performance.md says why): stage 1 ends with a short sentence-report contrastive phase, "
        "which gives the from-scratch text encoder the sentence space the paper's MedCPT start has; "
        "stage 2 keeps that text encoder locked; the global text state is the mean of the word tokens' "
        "states instead of an appended [CLS]; there is no random lead masking; the ECG tower has no "
        "dropout; and its convolutions have kernel 4 instead of 2, so that at 100 Hz a frame sees 460 ms "
        "instead of 160 ms. The three losses are the paper's.",
    ]
    build_report(
        ReportInputs(
            out_dir=plan.out,
            intro=intro,
            settings=settings,
            results=results,
            per_class=zero_shot,
            metrics=plan.run_dir / "metrics.jsonl",
            scores=scores,
            model_dir=plan.eval_model_dir,
            test_store=plan.stores["test"],
            generated=plan.generated_reports,
        )
    )


def run(args: argparse.Namespace) -> int:
    import torch

    plan = make_plan(args)
    plan.out.mkdir(parents=True, exist_ok=True)
    previous = plan.out / "demo.json"
    if previous.is_file():
        saved = json.loads(previous.read_text(encoding="utf-8"))
        plan.timings, plan.cpu_times = saved.get("timings", {}), saved.get("cpu_times", {})
    logger.info("[demo] writing to %s (preset %s, torch threads %d)", plan.out, plan.preset, torch.get_num_threads())
    if plan.synthesise:
        _synthesise(plan)
    _pretrain_text(plan)
    _fit_length(plan)
    _pretrain(plan)
    _evaluate(plan)
    _step(plan, "report", False, partial(_report, plan))
    logger.info("[demo] done: open %s", (plan.out / "report.html").resolve())
    logger.info(
        "[demo] to try the model on your own ECG files in a browser: .venv/bin/melp serve --model %s, "
        "then open http://127.0.0.1:8000/",
        plan.eval_model_dir,
    )
    return 0
