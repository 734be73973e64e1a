"""The paper's loss ablation on the built-in corpus: rhythm only, + token, + beat, all three (issue 14 item 5).

Each variant is one ``melp demo`` run on the same synthetic stores, with the same seed, preset and
number of stage-2 steps; only the loss weights differ (MELP: 1·CLIP + 2·caption + 0.2·local):

* ``rhythm``: CLIP only (``loss.caption_weight=0 loss.local_weight=0``);
* ``rhythm+token``: CLIP + captioning;
* ``rhythm+beat``: CLIP + beat↔sentence local alignment;
* ``all``: the three, as MELP trains (this run also evaluates the random-encoder baseline);
* ``all, cosine α``: the three with ``loss.local_alpha=cosine``, the fix for the saturating first
  softmax of the local loss (docs/losses.md), to compare beat-level grounding with the paper's form.

Every evaluation of the demo runs for each variant (zero-shot, both linear probes at 1/10/100 %,
retrieval, beat-level grounding where the store has it); the table gives each headline metric with
its 95 % bootstrap CI, and ``benchmarks/results/bench_ablation.json`` keeps every number.

    python -m benchmarks.bench_ablation                       # the demo's budget per variant
    python -m benchmarks.bench_ablation --steps 300 --n 2000  # shorter
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from benchmarks.common import machine_info, write_result

VARIANTS: dict[str, tuple[str, ...]] = {
    "rhythm": ("loss.caption_weight=0", "loss.local_weight=0"),
    "rhythm+token": ("loss.local_weight=0",),
    "rhythm+beat": ("loss.caption_weight=0",),
    "all": (),
    "all, cosine α": ("loss.local_alpha=cosine",),
}


#: the headline metrics of each evaluation (results file stem without the model tag → metric names)
HEADLINE = {
    "zeroshot": ("macro_auroc",),
    "probe": ("macro_auroc",),
    "logreg": ("macro_auroc",),
    "retrieve": ("ecg2text_R@10",),
    "generate": ("clinical_micro_f1",),
    "ground": ("cosine/mass_ratio", "cosine/hit_rate", "best_query/mass_ratio"),
}


def headline(eval_dir: Path) -> dict[str, dict[str, Any]]:
    """``{evaluation: {metric: value, metric_ci95: [lo, hi]}}`` from a demo's results JSONs."""
    rows: dict[str, dict[str, Any]] = {}
    for path in sorted(eval_dir.glob("*.json")):
        result = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(result, dict) or "metrics" not in result:
            continue
        evaluation = path.stem.split("_")[1]  # melp_probe_0.1 → probe
        metrics, cis = result["metrics"], result.get("ci95") or {}
        names = [k for k in HEADLINE.get(evaluation, ()) if k in metrics]
        rows[path.stem] = {**{k: metrics[k] for k in names}, **{f"{k}_ci95": cis[k] for k in names if k in cis}}
    return rows


def markdown(results: dict[str, dict[str, dict[str, Any]]]) -> str:
    """One row per variant (and the random encoder), one column per evaluation metric."""
    columns: list[tuple[str, str]] = []
    for rows in results.values():
        for stem, metrics in rows.items():
            columns += [(stem, k) for k in metrics if not k.endswith("_ci95") and (stem, k) not in columns]
    lines = ["| variant | " + " | ".join(f"{stem} {k}" for stem, k in columns) + " |"]
    lines.append("|" + " --- |" * (len(columns) + 1))
    for variant, rows in results.items():
        cells = []
        for stem, k in columns:
            value = rows.get(stem, {}).get(k)
            ci = rows.get(stem, {}).get(f"{k}_ci95")
            text = "–" if value is None else f"{value:.3f}"
            cells.append(text + (f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else ""))
        lines.append(f"| {variant} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("runs/ablation"), help="working directory")
    parser.add_argument("--preset", default="tiny", help="demo preset (default tiny)")
    parser.add_argument("--n", type=int, default=None, help="training records (default: the preset's)")
    parser.add_argument("--n-eval", type=int, default=None, help="validation and test records (default: the preset's)")
    parser.add_argument(
        "--steps", type=int, default=None, help="stage-2 steps per variant (default: the preset's full length)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="micro preset, a few steps (checks the wiring)")
    args = parser.parse_args()
    if args.quick:
        args.preset, args.n, args.n_eval, args.steps = "micro", args.n or 60, args.n_eval or 20, args.steps or 4

    from melp.cli.demo import SIZES
    from melp.cli.main import main as melp

    # every variant gets the same stage-2 length: the preset's full length, never one fitted per run
    args.steps = args.steps or SIZES[args.preset].steps
    sizes = [*(["--n", str(args.n)] if args.n else []), *(["--n-eval", str(args.n_eval)] if args.n_eval else [])]
    steps = ["--steps", str(args.steps)]
    data = args.out / "all" / "data"
    results: dict[str, dict[str, dict[str, Any]]] = {}
    timings: dict[str, float] = {}
    order = ["all", *(v for v in VARIANTS if v != "all")]  # "all" first: it synthesises the shared stores
    for variant in order:
        overrides = VARIANTS[variant]
        folder = args.out / variant.replace(", ", "-").replace(" ", "_").replace("α", "alpha")
        argv = ["demo", "--out", str(folder), "--preset", args.preset, "--seed", str(args.seed)]
        argv += [*sizes, *steps]
        if variant != "all":
            argv += ["--train", str(data / "train"), "--val", str(data / "val"), "--test", str(data / "test")]
            argv += ["--no-baseline"]
        start = time.perf_counter()
        if melp([*argv, *overrides]) != 0:
            raise SystemExit(f"variant {variant}: `melp {' '.join(argv)}` failed")
        timings[variant] = round(time.perf_counter() - start, 1)
        rows = headline(folder / "eval")
        results[variant] = {k.removeprefix("melp_"): v for k, v in rows.items() if k.startswith("melp_")}
        if variant == "all":
            results["random encoder"] = {
                k.removeprefix("random_"): v for k, v in rows.items() if k.startswith("random_")
            }
    ordered = {name: results[name] for name in (*VARIANTS, "random encoder") if name in results}
    table = markdown(ordered)
    print(table)
    write_result(
        "bench_ablation",
        {
            "machine": machine_info(),
            "protocol": {
                "preset": args.preset,
                "n": args.n,
                "n_eval": args.n_eval,
                "steps": args.steps,
                "seed": args.seed,
                "variants": {k: list(v) for k, v in VARIANTS.items()},
            },
            "wall_seconds": timings,
            "results": ordered,
            "table": table,
        },
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
