"""Smoke test of ``melp demo`` at micro scale: every artefact exists and the report quotes the results JSON."""

from __future__ import annotations

import dataclasses
import json
import logging
import re
from pathlib import Path

import pytest

from melp.cli.demo import TIMING_STEPS, _fit_length, evaluations, fit_steps, make_plan
from melp.cli.main import build_parser, main
from melp.report import format_cell


def _plan(tmp_path: Path, *extra: str):
    args = build_parser().parse_args(["demo", "--out", str(tmp_path / "demo"), "--preset", "micro", *extra])
    return make_plan(args)


def test_plan_resolves_sizes_and_stores(tmp_path: Path) -> None:
    plan = _plan(tmp_path, "--n", "200", "--seconds", "5", "optim.lr=0.01")
    assert (plan.n_train, plan.n_val, plan.n_test) == (200, 40, 40)
    assert plan.stores["test"] == tmp_path / "demo" / "data" / "test"
    assert plan.fs == 100  # the preset's model.fs: the stores need no resampling
    assert plan.overrides == ["model.seconds=5", "optim.lr=0.01"]  # user overrides come last and win
    assert plan.config.name == "micro.yaml"
    stems = [stem for _, _, stem, _ in evaluations(plan)]
    assert (
        len(stems) == len(set(stems)) == 19
    )  # 2 models × (zero-shot + 2 × 3 probes + retrieval + grounding) + generation
    assert {"melp_zeroshot", "random_zeroshot", "melp_probe_0.01", "random_probe_1", "melp_logreg_0.1"} <= set(stems)
    assert "melp_generate" in stems
    assert (_plan(tmp_path).n_val, _plan(tmp_path, "--n-eval", "30").n_test) == (60, 30)  # the preset's, or given


def test_plan_rejects_partial_store_sets(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="all three"):
        _plan(tmp_path, "--train", str(tmp_path))


def test_stage2_length_fits_the_budget_in_multiples_of_50() -> None:
    assert fit_steps(budget_s=300, seconds_per_step=0.2, most=1400, least=100) == 1400  # 1500 fit
    assert fit_steps(budget_s=300, seconds_per_step=0.8, most=1400, least=100) == 350  # 375 fit
    assert fit_steps(budget_s=300, seconds_per_step=5.0, most=1400, least=100) == 100  # never below the least
    with pytest.raises(ValueError, match="positive"):
        fit_steps(budget_s=300, seconds_per_step=0.0, most=1400, least=100)


def test_tiny_plan_is_fitted_unless_steps_are_given(tmp_path: Path) -> None:
    args = build_parser().parse_args(["demo", "--out", str(tmp_path / "demo")])
    plan = make_plan(args)
    assert plan.stage2_budget_s is not None and plan.max_steps == plan.steps
    fixed = make_plan(build_parser().parse_args(["demo", "--out", str(tmp_path / "demo"), "--steps", "30"]))
    assert (fixed.steps, fixed.stage2_budget_s, fixed.max_steps) == (30, None, None)
    assert fixed.length_text() == "30 steps (fixed)"
    with pytest.raises(ValueError, match="--steps"):
        make_plan(build_parser().parse_args(["demo", "--out", str(tmp_path / "demo"), "--steps", "0"]))


@pytest.mark.slow
def test_micro_demo_end_to_end(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    out = tmp_path / "demo"
    sizes = ["--n", "100", "--seconds", "5", "--text-steps", "5", "--steps", "8"]
    argv = ["demo", "--out", str(out), "--preset", "micro", *sizes]
    assert main(argv) == 0
    plan = _plan(tmp_path, *sizes)
    for store in plan.stores.values():
        assert (store / "manifest.json").is_file()
    assert (plan.text_model / "config.json").is_file()
    assert (plan.model_dir / "config.json").is_file() and (plan.run_dir / "metrics.jsonl").is_file()
    md, html = (out / "report.md").read_text(), (out / "report.html").read_text()
    for evaluation, _, stem, _ in evaluations(plan):
        result = json.loads((plan.eval_dir / f"{stem}.json").read_text())
        cis = result.get("ci95") or {}
        for name, value in result["metrics"].items():
            if isinstance(value, int | float) and not isinstance(value, bool):
                cell = format_cell(value, cis.get(name))
                assert cell in md and cell in html, (evaluation, name, cell)
    assert len(re.findall(r'<img [^>]*src="data:image/png;base64,', html)) == 4  # curves, ROC, ECG paper, alignment
    assert "reference report" in html and "generated report" in md
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="melp.cli.demo"):
        assert main(argv) == 0  # a second run resumes: every step is found done
    skipped = [r.getMessage() for r in caplog.records if "already done" in r.getMessage()]
    assert len(skipped) == 3 + 2 + len(evaluations(plan))
    # the budget fit on this machine: the timed pace is kept, the scratch run is gone, the length is capped
    timed = dataclasses.replace(plan, stage2_budget_s=1e6, max_steps=8, min_steps=1)
    _fit_length(timed)
    pace = json.loads(timed.timing_file.read_text())
    assert pace["steps"] == TIMING_STEPS and pace["seconds_per_step"] == timed.seconds_per_step > 0
    assert timed.steps == 8 and "full length" in timed.length_text() and not (out / "stage2_timing").exists()
    short = dataclasses.replace(timed, stage2_budget_s=timed.seconds_per_step * 60, max_steps=1000, min_steps=1)
    _fit_length(short)  # the kept pace is reused, not timed again
    assert short.seconds_per_step == timed.seconds_per_step and short.steps == 50
    assert "of the preset's 1000 steps" in short.length_text()
